#!/usr/bin/python3
"""Write head.bin (trained head and replay exemplars, see training/head.py) for model folders
exported before it existed; new exports write it themselves.

    /usr/bin/python3 scripts/export_head.py models/lenet/1 models/resnet-edge/1 ...
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training.export import load_checkpoint, model_folders_cli  # noqa: E402
from training.head import write_head  # noqa: E402


def main():
    for model_dir in model_folders_cli(__doc__):
        model, _ = load_checkpoint(model_dir)
        head = write_head(model, model_dir)["head"]
        print(f"{model_dir}: {head['file']} {head['bytes']} bytes, {head['classes']} classes x {head['embeddingSize']}, "
              f"{head['exemplarsPerClass']} exemplars per class")


if __name__ == "__main__":
    main()
