#!/usr/bin/python3
"""Validation accuracy of CIFAR-10 model folders with translate_average=true, into their manifests.

    npm run models:translate-accuracy -- models/resnet-edge/3 models/resnet-edge-int8-static/3

translate_average=true (workers/classify/translate-average.ts) answers airbench94's six-view
average: the image and its mirror, and the image shifted one pixel up-left and down-right with
their mirrors. This scores each folder's own PyTorch model (quantised weights and activations
as load_checkpoint rebuilds them, as for its other accuracies) on the same validation slice as
`validationAccuracy` (flip-averaged) and writes `metrics.translateValidationAccuracy`. A graph
that averages the mirror inside itself (the first exports) cannot run the shifted views alone
and is skipped.
"""
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training.architectures import FlipAveraged  # noqa: E402
from training.cifar import translate_accuracy, validation_tensors  # noqa: E402
from training.export import load_checkpoint, model_folders_cli  # noqa: E402


def main():
    for model_dir in model_folders_cli(__doc__):
        model, manifest = load_checkpoint(model_dir)
        if manifest["dataset"] != "CIFAR-10" or isinstance(model, FlipAveraged):
            print(f"{model_dir}: skipped (not CIFAR-10, or its graph averages the mirror inside)")
            continue
        started = time.perf_counter()
        x, y = validation_tensors(manifest["input"]["mean"], manifest["input"]["std"])
        with torch.no_grad():
            accuracy = translate_accuracy(model, x, y)
        flip = manifest["metrics"]["validationAccuracy"]
        manifest["metrics"]["translateValidationAccuracy"] = round(accuracy, 5)
        (model_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        print(f"{model_dir}: translate-averaged {100 * accuracy:.2f} % against flip-averaged {100 * flip:.2f} % "
              f"({100 * (accuracy - flip):+.2f} points) on {len(y)} validation images, {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
