#!/usr/bin/python3
"""Make a quantised variant of a trained model folder: models/<id>/<v> -> models/<id>-<scheme>/<v>.

    /usr/bin/python3 scripts/quantize_model.py models/resnet-edge/1                 # int8
    /usr/bin/python3 scripts/quantize_model.py models/vggish/1 --scheme int4         # 4-bit FC layers
    /usr/bin/python3 scripts/quantize_model.py models/resnet-edge/1 --scheme int8-static  # integer convs

Schemes (scripts/training/quantize.py): int8 stores every Conv/Linear weight as int8 per output
channel, a quarter of the fp32 bytes; int4 also stores the large Linear layers in 4 bits;
int8-static also rounds every convolution's input and output to uint8 (ranges calibrated on
training images), so that onnxruntime runs the convolutions in integers: faster, not only smaller. The
variant's manifest records the scheme, its accuracy on the same validation slice and the change
from fp32; its model.pt holds the integers, from which PyTorch rebuilds exactly the weights the
ONNX graph computes with (int8-static: up to rounding ties). onnxruntime dequantises each
weight-only weight as its node runs, so those variants also need about a quarter (or an eighth)
of the memory to serve.
"""
import argparse
import json
from collections import Counter
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training.cifar import calibration_tensors, mirror_accuracies, validation_tensors  # noqa: E402
from training.export import load_checkpoint, write_model_folder  # noqa: E402
from training.quantize import CALIBRATION_IMAGES, METHODS, SCHEMES, quantize_graph, quantize_model  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path)
    p.add_argument("--scheme", choices=SCHEMES, default="int8")
    p.add_argument("--out", type=Path, help="default: models/<id>-<scheme>/<version>")
    p.add_argument("--smoke", action="store_true", help="score on 250 validation images instead of 5,000")
    args = p.parse_args()
    torch.set_num_threads(2)

    model, source = load_checkpoint(args.model_dir)
    if source["dataset"] != "CIFAR-10":
        raise SystemExit("quantize_model.py scores variants on the CIFAR-10 validation slice; other data sets are not wired up")
    x_val, y_val = validation_tensors(source["input"]["mean"], source["input"]["std"], every=20 if args.smoke else 1)
    fp32 = mirror_accuracies(model, x_val, y_val)
    calibration = calibration_tensors(source["input"]["mean"], source["input"]["std"], CALIBRATION_IMAGES) if args.scheme == "int8-static" else None
    state, layers = quantize_model(model, args.scheme, calibration)
    quantized = mirror_accuracies(model, x_val, y_val)
    fp32_acc, quantized_acc = fp32["flipAveraged"], quantized["flipAveraged"]

    out = args.out or args.model_dir.parent.parent / f"{source['id']}-{args.scheme}" / args.model_dir.name
    manifest = {k: v for k, v in source.items() if k not in ("parameters", "artifact", "serving", "exportedAt")}
    manifest.update(
        id=f"{source['id']}-{args.scheme}",
        name=f"{source['name']}, {args.scheme} weights",
        metrics={
            **source["metrics"],
            "validationAccuracy": round(quantized_acc, 5),
            "fp32ValidationAccuracy": round(fp32_acc, 5),
            "deltaToFp32": round(quantized_acc - fp32_acc, 5),
            **({"singlePassValidationAccuracy": round(quantized["singlePass"], 5),
                "fp32SinglePassValidationAccuracy": round(fp32["singlePass"], 5)} if "singlePass" in quantized else {}),
        },
        quantization={
            "scheme": args.scheme,
            "method": METHODS[args.scheme],
            "layers": dict(sorted(Counter(f"int{layer['bits']}" for layer in layers).items())),
            "from": f"{source['id']} v{source['version']}",
            "fp32Bytes": source["artifact"]["bytes"],
        },
    )
    full = write_model_folder(model, out, manifest, rewrite=lambda graph: quantize_graph(graph, args.scheme), state=state)
    print(json.dumps({"out": str(out), "bytes": full["artifact"]["bytes"], "sha256": full["artifact"]["sha256"]}))
    print(f"final: {args.scheme} validation accuracy {100 * quantized_acc:.2f}% (fp32 {100 * fp32_acc:.2f}%, "
          f"delta {100 * (quantized_acc - fp32_acc):+.2f} points), {full['artifact']['bytes'] / 1e6:.2f} MB "
          f"(fp32 {source['artifact']['bytes'] / 1e6:.2f} MB)", flush=True)


if __name__ == "__main__":
    main()
