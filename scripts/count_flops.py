"""Floating-point operations per image of ONNX models (2 per multiply-add of Conv, Gemm and
MatMul, the layers that dominate a CNN), printed as JSON {path: flops}. The benchmark divides
them by measured latency to report each engine's effective GFLOP/s.

    /usr/bin/python3 scripts/count_flops.py models/lenet/1/model.onnx [more.onnx ...]
"""
import json
import sys

import numpy as np
import onnx
from onnx import shape_inference


def flops_per_image(path):
    model = onnx.load(path, load_external_data=False)
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    batch.ClearField("dim_param")
    batch.dim_value = 1
    model = shape_inference.infer_shapes(model)
    shapes = {t.name: list(t.dims) for t in model.graph.initializer}
    for info in [*model.graph.value_info, *model.graph.input, *model.graph.output]:
        shapes[info.name] = [d.dim_value for d in info.type.tensor_type.shape.dim]
    total = 0
    for node in model.graph.node:
        out = shapes.get(node.output[0])
        if not out:
            continue
        if node.op_type == "Conv":
            total += 2 * int(np.prod(out)) * int(np.prod(shapes[node.input[1]][1:]))
        elif node.op_type in ("Gemm", "MatMul", "MatMulNBits"):
            a = shapes.get(node.input[0])
            transposed = node.op_type == "Gemm" and any(at.name == "transA" and at.i for at in node.attribute)
            k = a[0] if transposed else a[-1]
            total += 2 * int(np.prod(out)) * k
    return total


print(json.dumps({path: flops_per_image(path) for path in sys.argv[1:]}))
