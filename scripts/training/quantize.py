"""Quantisation of a trained model, in PyTorch and in its ONNX graph alike.

Three schemes:
    int8         every Conv and Linear weight as int8, symmetric, per output channel, with a
                 DequantizeLinear in front of its consumer: a quarter of the fp32 bytes.
    int4         as int8, except Linear weights of LINEAR_INT4_MIN elements or more (VGGish's two
                 4096-wide layers, 95 % of its weights), which become 4-bit, symmetric, in blocks
                 of INT4_BLOCK along the input, run by onnxruntime's MatMulNBits.
    int8-static  as int8, and every convolution's input and output quantised to uint8 too, with
                 ranges calibrated on CALIBRATION_IMAGES training images and the bias as int32:
                 the QDQ form that onnxruntime fuses into QLinearConv, which computes in integers.
                 That is what makes it faster, not only smaller: in onnxruntime-web the
                 int8-static resnet-edge ran 1.4-2.8x faster than fp32 (npm run bench; README,
                 Benchmarks). The activations' rounding costs some accuracy; the
                 manifest records it.

The torch side rounds the weights to their grid (so PyTorch and the served graph compute the
same function, and the accuracy measured in PyTorch is the served model's); the ONNX side stores
the integers. Batch norms are folded into their convs first, as the ONNX exporter would.

Memory, which is what decides what a 128 MB Worker isolate can serve: onnxruntime keeps the
weights as integers and dequantises each one when its node runs (it does not constant-fold
DequantizeLinear, and its WASM build's MatMulNBits expands the whole weight to fp32 per run).
So a 4-bit layer is split into column chunks of INT4_CHUNK outputs, each dequantised in turn
into the same few MB, instead of one 64 MB fp32 copy of a 4096x4096 weight per run.
"""
import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper

from .static_quantization import calibrate, install_activation_quantizers, quantize_conv_biases, round_biases

MIN_ELEMENTS = 256           # smaller tensors (biases, tiny convs) stay fp32: no size to win
LINEAR_INT4_MIN = 1 << 20    # Linear weights this large go to 4 bits in the int4 scheme
INT4_BLOCK = 32              # inputs per 4-bit scale
INT4_CHUNK = 512             # outputs per MatMulNBits node (a 4096-input chunk expands to 8 MB)
CALIBRATION_IMAGES = 1024  # training images (validation excluded) whose activations set the uint8 ranges
METHODS = {
    "int8": "weight-only int8, symmetric, per output channel (DequantizeLinear)",
    "int4": f"weight-only: Linear layers of >= {LINEAR_INT4_MIN:,} weights 4-bit symmetric in blocks of {INT4_BLOCK} "
            f"(MatMulNBits, {INT4_CHUNK}-output chunks), every other Conv/Linear int8 per output channel (DequantizeLinear)",
    "int8-static": "static int8: Conv/Linear weights int8 symmetric per output channel, every convolution's input and "
                   f"output uint8 per tensor (ranges: min/max over {CALIBRATION_IMAGES:,} training images), conv biases int32; "
                   "QDQ, run as QLinearConv",
}
SCHEMES = tuple(METHODS)


def bits_for(kind: str, elements: int, scheme: str) -> int | None:
    """Bits a weight gets under a scheme: 4, 8, or None (kept fp32)."""
    if elements < MIN_ELEMENTS:
        return None
    return 4 if scheme == "int4" and kind == "linear" and elements >= LINEAR_INT4_MIN else 8


def quantize_int8(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per output channel (axis 0): the largest magnitude maps to 127. Returns (int8, scales)."""
    peak = np.abs(weight.reshape(weight.shape[0], -1)).max(axis=1)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    shape = (-1,) + (1,) * (weight.ndim - 1)
    return np.clip(np.round(weight / scale.reshape(shape)), -127, 127).astype(np.int8), scale


def quantize_int4(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[N, K] in blocks of INT4_BLOCK along K: the largest magnitude of a block maps to 7.
    Returns (int8 values in -7..7, shape [N, K / INT4_BLOCK, INT4_BLOCK]; scales [N, K / INT4_BLOCK])."""
    n, k = weight.shape
    blocks = weight.reshape(n, k // INT4_BLOCK, INT4_BLOCK)
    peak = np.abs(blocks).max(axis=2)
    scale = np.where(peak > 0, peak / 7.0, 1.0).astype(np.float32)
    return np.clip(np.round(blocks / scale[..., None]), -7, 7).astype(np.int8), scale


def dequantize(q: np.ndarray, scale: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The fp32 weight that onnxruntime computes from (q, scale): q * scale, in float32."""
    broadcast = scale.reshape(scale.shape + (1,) * (q.ndim - scale.ndim))
    return (q.astype(np.float32) * broadcast).reshape(shape)


@torch.no_grad()
def fold_batch_norms(model: torch.nn.Module) -> None:
    """Fold each BatchNorm2d into the Conv2d before it, leaving the norm a per-channel bias
    (mean 0, variance 1 - eps, scale 1). The ONNX exporter folds norms into convs too, so the
    weights rounded here are the weights the exported graph holds."""
    for sequence in (m for m in model.modules() if isinstance(m, torch.nn.Sequential)):
        layers = list(sequence)
        for conv, norm in zip(layers, layers[1:]):
            if not (isinstance(conv, torch.nn.Conv2d) and isinstance(norm, torch.nn.BatchNorm2d)):
                continue
            scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
            conv.weight.mul_(scale.view(-1, 1, 1, 1))
            bias = norm.bias - norm.running_mean * scale
            if conv.bias is not None:
                bias += conv.bias * scale
                conv.bias.zero_()
            norm.bias.copy_(bias)
            norm.weight.fill_(1.0)
            norm.running_mean.zero_()
            norm.running_var.fill_(1.0 - norm.eps)


def _pack_nibbles(q: np.ndarray) -> np.ndarray:
    """Values -7..7 stored offset by 8, two to a byte, the even index in the low nibble (MatMulNBits' layout)."""
    u = (q.astype(np.int16) + 8).astype(np.uint8)
    return u[..., 0::2] | (u[..., 1::2] << 4)


def _unpack_nibbles(packed: np.ndarray) -> np.ndarray:
    out = np.empty(packed.shape[:-1] + (packed.shape[-1] * 2,), dtype=np.int8)
    out[..., 0::2] = (packed & 0x0F).astype(np.int8) - 8
    out[..., 1::2] = (packed >> 4).astype(np.int8) - 8
    return out


@torch.no_grad()
def quantize_model(model: torch.nn.Module, scheme: str, calibration: torch.Tensor | None = None) -> tuple[dict, list[dict]]:
    """Fold batch norms and round every quantised weight in place; for int8-static, also
    calibrate the activation ranges on `calibration` (normalised training images) and round the
    conv biases. Returns the compact state dict to save (integers and scales instead of fp32
    weights: see load_quantized_state) and a per-layer summary for the manifest."""
    fold_batch_norms(model)
    compact, weight_scales, layers = {}, {}, []
    for name, module in model.named_modules():
        kind = "conv" if isinstance(module, torch.nn.Conv2d) else "linear" if isinstance(module, torch.nn.Linear) else None
        bits = kind and bits_for(kind, module.weight.numel(), scheme)
        if not bits:
            continue
        weight = module.weight.numpy()
        q, scale = quantize_int4(weight) if bits == 4 else quantize_int8(weight)
        module.weight.copy_(torch.from_numpy(dequantize(q, scale, weight.shape)))
        compact[f"{name}.weight:int{bits}"] = torch.from_numpy(_pack_nibbles(q) if bits == 4 else q)
        compact[f"{name}.weight:scale"] = torch.from_numpy(scale)
        weight_scales[name] = scale
        layers.append({"layer": name, "kind": kind, "bits": bits, "shape": list(weight.shape)})
    if scheme == "int8-static":
        if calibration is None:
            raise ValueError("int8-static needs calibration images")
        install_activation_quantizers(model)
        calibrate(model, calibration)
        round_biases(model, weight_scales)
    quantized = {key.partition(":")[0] for key in compact}
    state = {name: tensor.clone() for name, tensor in model.state_dict().items() if name not in quantized}
    return {**state, **compact}, layers


def load_quantized_state(state: dict, model: torch.nn.Module) -> dict:
    """The fp32 state dict of a quantised model from its compact form (quantize_model): each
    weight is rebuilt exactly as the ONNX graph's dequantisation computes it."""
    shapes = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    full = {}
    for key, tensor in state.items():
        if key.endswith(":scale"):
            continue
        name, _, kind = key.partition(":")
        if not kind:
            full[name] = tensor
            continue
        q = tensor.numpy()
        if kind == "int4":
            q = _unpack_nibbles(q)
        full[name] = torch.from_numpy(dequantize(q, state[f"{name}:scale"].numpy(), shapes[name]))
    return full


def _is_linear(node: onnx.NodeProto) -> bool:
    """torch exports Linear as Gemm(x, W, b) with transB=1 and unit alpha/beta."""
    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    return node.op_type == "Gemm" and attributes.get("transB") == 1 and attributes.get("transA", 0) == 0 \
        and attributes.get("alpha", 1.0) == 1.0 and attributes.get("beta", 1.0) == 1.0


def _int4_initializers(weight_name: str, weight: np.ndarray) -> tuple[list, list[tuple[str, str, int]]]:
    """W [N, K] as 4-bit chunks of INT4_CHUNK outputs: their initializers, and per chunk the
    names of its packed weight and scales and its output count."""
    q, scale = quantize_int4(weight)
    packed = _pack_nibbles(q)
    initializers, chunks = [], []
    for start in range(0, weight.shape[0], INT4_CHUNK):
        rows = slice(start, min(start + INT4_CHUNK, weight.shape[0]))
        prefix = f"{weight_name}.int4.{start}"
        initializers += [numpy_helper.from_array(packed[rows], f"{prefix}.packed"),
                         numpy_helper.from_array(scale[rows].reshape(-1), f"{prefix}.scale")]
        chunks.append((f"{prefix}.packed", f"{prefix}.scale", rows.stop - rows.start))
    return initializers, chunks


def _int4_linear(node: onnx.NodeProto, chunks: list[tuple[str, str, int]], k: int) -> list:
    """Gemm(x, W, b) as the Concat of one MatMulNBits per chunk of W, plus b."""
    x, bias, name = node.input[0], node.input[2], node.output[0]
    nodes, outputs = [], []
    for i, (packed, scale, n) in enumerate(chunks):
        outputs.append(f"{name}.int4.{i}")
        nodes.append(helper.make_node("MatMulNBits", [x, packed, scale], [outputs[-1]], domain="com.microsoft",
                                      K=k, N=n, bits=4, block_size=INT4_BLOCK, name=outputs[-1]))
    nodes.append(helper.make_node("Concat", outputs, [f"{name}.int4.concat"], axis=-1, name=f"{name}.int4.concat"))
    nodes.append(helper.make_node("Add", [f"{name}.int4.concat", bias], [name], name=f"{name}.int4.bias"))
    return nodes


def quantize_graph(graph: onnx.ModelProto, scheme: str, keep: frozenset = frozenset()) -> onnx.ModelProto:
    """Store the Conv and Linear (Gemm) weights of an exported graph as the scheme says: int8
    with a DequantizeLinear, or 4-bit MatMulNBits chunks replacing each Gemm that reads them
    (a flip-averaged graph runs every layer twice, on shared weights). Weights named in `keep`
    stay fp32."""
    consumers: dict[str, tuple[str, list]] = {}
    for node in graph.graph.node:
        kind = "conv" if node.op_type == "Conv" else "linear" if _is_linear(node) else None
        if kind and node.input[1] not in keep:
            consumers.setdefault(node.input[1], (kind, []))[1].append(node)

    kept, added_nodes, replaced = [], [], {}
    for init in graph.graph.initializer:
        array = numpy_helper.to_array(init)
        kind, nodes = consumers.get(init.name, (None, []))
        bits = kind and bits_for(kind, array.size, scheme)
        if bits == 4:
            new_inits, chunks = _int4_initializers(init.name, array)
            kept += new_inits
            for node in nodes:
                replaced[node.output[0]] = _int4_linear(node, chunks, array.shape[1])
        elif bits == 8:
            q, scale = quantize_int8(array)
            kept += [numpy_helper.from_array(q, f"{init.name}.int8"),
                     numpy_helper.from_array(scale, f"{init.name}.scale"),
                     numpy_helper.from_array(np.zeros_like(scale, dtype=np.int8), f"{init.name}.zero")]
            added_nodes.append(helper.make_node(
                "DequantizeLinear", [f"{init.name}.int8", f"{init.name}.scale", f"{init.name}.zero"], [init.name],
                axis=0, name=f"dequantize {init.name}"))
        else:
            kept.append(init)
    nodes = list(added_nodes)
    for node in graph.graph.node:
        nodes += replaced.get(node.output[0], [node])
    used = {name for node in nodes for name in node.input}
    del graph.graph.initializer[:]
    graph.graph.initializer.extend(init for init in kept if init.name in used)
    del graph.graph.node[:]
    graph.graph.node.extend(nodes)
    if replaced:
        graph.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return quantize_conv_biases(graph) if scheme == "int8-static" else graph
