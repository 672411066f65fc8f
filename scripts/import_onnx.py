#!/usr/bin/python3
"""Rewrite a user's ONNX classifier into cnn-edge's served graph (training/onnx_import.py) and
print what it found as one JSON line. `npm run models:add` (scripts/add-model.ts) runs it;
on a graph it cannot serve it prints {"refused": "..."} and exits 2.

    /usr/bin/python3 scripts/import_onnx.py in.onnx --out model.onnx --head-weights head.f32 [--layout NHWC] ...
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training.onnx_import import ImportRefused, adapt, inspect  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path)
    p.add_argument("--out", type=Path, help="where to write the served graph (without it, only inspect)")
    p.add_argument("--head-weights", type=Path, help="where to write the head: float32 weight [classes, embedding] then bias")
    p.add_argument("--output", help="the graph output holding the class scores, when it has several")
    p.add_argument("--layout", choices=["NCHW", "NHWC"])
    p.add_argument("--channel-order", choices=["rgb", "bgr"], default="rgb")
    p.add_argument("--height", type=int)
    p.add_argument("--width", type=int)
    p.add_argument("--quantize", choices=["int8"], help="store Conv and Linear weights as int8 (the head stays fp32, for fine-tuning)")
    args = p.parse_args()
    try:
        try:
            model = onnx.load(str(args.model))
        except Exception as err:  # protobuf's DecodeError and friends: not an ONNX file
            raise ImportRefused(f"{args.model} is not an ONNX model ({type(err).__name__}: {err})") from None
        facts = inspect(model, args.output)
        report = {"graph": facts.__dict__}
        if args.out:
            layout = args.layout or facts.layout
            if layout is None:
                raise ImportRefused(f"input shape {facts.shape} does not tell NCHW from NHWC; pass --layout")
            h_axis, w_axis = (2, 3) if layout == "NCHW" else (1, 2)
            height = args.height or facts.shape[h_axis]
            width = args.width or facts.shape[w_axis]
            for name, graph_dim, given in (("height", facts.shape[h_axis], args.height), ("width", facts.shape[w_axis], args.width)):
                if not isinstance(graph_dim, int) and given is None:
                    raise ImportRefused(f"the input's {name} is not fixed in the graph ({graph_dim}); pass --{name}")
                if isinstance(graph_dim, int) and given is not None and given != graph_dim:
                    raise ImportRefused(f"--{name} {given} does not match the graph's {graph_dim}")
            batch = facts.shape[0]
            if isinstance(batch, int) and batch > 1:
                raise ImportRefused(f"the input has a fixed batch of {batch}; cnn-edge runs one image or a dynamic batch")
            fixed_batch = 1 if batch == 1 else None
            served, head = adapt(model, facts, layout=layout, channel_order=args.channel_order, height=height, width=width, fixed_batch=fixed_batch)
            weight, bias, head_weight = head.pop("weight"), head.pop("bias"), head.pop("headWeight")
            fp32_bytes = served.ByteSize()
            if args.quantize:
                from training.quantize import quantize_graph
                served = quantize_graph(served, args.quantize, keep=frozenset({head_weight}))
                onnx.checker.check_model(served)
                head["quantization"] = {"scheme": args.quantize, "fp32Bytes": fp32_bytes}
            onnx.save(served, str(args.out))
            if args.head_weights:
                args.head_weights.write_bytes(weight.astype("<f4").tobytes() + bias.astype("<f4").tobytes())
            report["served"] = {**head, "layout": layout, "height": height, "width": width, "fixedBatch": fixed_batch,
                                "weightNorm": float(np.linalg.norm(weight))}
        print(json.dumps(report))
    except ImportRefused as refused:
        print(json.dumps({"refused": str(refused)}))
        sys.exit(2)


if __name__ == "__main__":
    main()
