#!/usr/bin/python3
"""PyTorch's outputs for a model folder, as JSON, for the tests to hold the served model against.

    /usr/bin/python3 scripts/torch_reference.py models/lenet/1 --pixels digits.u8   # raw uint8 images
    /usr/bin/python3 scripts/torch_reference.py models/lenet/1 --random 8 --seed 1  # fixed random inputs

--flip-average answers as a request with flip_average=true: the mean over each image and its
mirror (a graph with the average inside does that anyway); --translate-average as one with
translate_average=true too (airbench94's six views). --pixels reads uint8 images [N, H, W] (grayscale models) or [N, H, W, 3] (RGB models) at the
model's input size, and normalises them as training did. Prints
{"inputs"?: [[...]], "embedding": [[...]], "logits": [[...]]} to stdout; random inputs are
included so that the consumer can feed the same floats to ONNX.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training.architectures import FlipAveraged, TranslateAveraged  # noqa: E402
from training.datasets import normalise  # noqa: E402
from training.export import load_checkpoint  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--pixels", type=Path, metavar="FILE", help="raw uint8 images at the model's input size")
    source.add_argument("--random", type=int, metavar="N", help="N standard-normal inputs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--flip-average", action="store_true", help="average each image's outputs with its mirror's")
    p.add_argument("--translate-average", action="store_true", help="airbench94's mirror and one-pixel-shift views, weighted as the Worker does")
    args = p.parse_args()

    torch.set_num_threads(1)
    model, manifest = load_checkpoint(args.model_dir)
    if args.translate_average:
        model = TranslateAveraged(model)
    elif args.flip_average and not isinstance(model, FlipAveraged):
        model = FlipAveraged(model)
    spec = manifest["input"]
    out = {}
    if args.random is not None:
        gen = torch.Generator().manual_seed(args.seed)
        x = torch.randn(args.random, spec["channels"], spec["height"], spec["width"], generator=gen)
        out["inputs"] = x.flatten(1).tolist()
    else:
        pixels = np.fromfile(args.pixels, dtype=np.uint8)
        x = normalise(pixels.reshape(-1, spec["height"], spec["width"], spec["channels"]), spec["mean"], spec["std"])
    with torch.no_grad():
        embedding, logits = model(x)
    out["embedding"] = embedding.tolist()
    out["logits"] = logits.tolist()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
