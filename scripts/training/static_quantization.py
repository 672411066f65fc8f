"""The activation half of the int8-static scheme (quantize.py has the weights): every
convolution's input and output rounded to uint8, in PyTorch and in the ONNX graph alike.

PyTorch: each Conv2d gets an `input_range` buffer and the module whose output the exported Conv
computes (its BatchNorm, which the exporter folds in, or the conv itself) an `output_range`
buffer, each [scale, zero point], and hooks that fake-quantise through them. They are buffers,
so model.pt carries them and load_checkpoint rebuilds the same function; the exporter writes
each fake-quantisation as a QuantizeLinear/DequantizeLinear pair.

ONNX: onnxruntime fuses DequantizeLinear(x) + DequantizeLinear(int8 W) + DequantizeLinear(int32
bias) -> Conv -> QuantizeLinear into one QLinearConv, so each conv bias is stored as int32 on
the grid (input scale x weight scale) too, and PyTorch rounds it to the same grid.
"""
import warnings

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper

# The ranges are meant to become constants of the exported graph: the tracer's warning that they will is noise.
warnings.filterwarnings("ignore", message="Converting a tensor to a Python", category=torch.jit.TracerWarning)


def conv_outputs(model: torch.nn.Module) -> list[tuple[str, torch.nn.Conv2d, torch.nn.Module]]:
    """(name, conv, module whose output is the exported Conv's output) for every Conv2d in a
    Sequential: its BatchNorm2d when one follows, else the conv."""
    found = []
    for prefix, sequence in model.named_modules():
        if not isinstance(sequence, torch.nn.Sequential):
            continue
        layers = list(sequence)
        for i, conv in enumerate(layers):
            if isinstance(conv, torch.nn.Conv2d):
                after = layers[i + 1] if i + 1 < len(layers) else None
                found.append((f"{prefix}.{i}".lstrip("."), conv, after if isinstance(after, torch.nn.BatchNorm2d) else conv))
    return found


def _fake_quantize(x: torch.Tensor, qrange: torch.Tensor) -> torch.Tensor:
    """x rounded to the uint8 grid [scale, zero point]; a zero scale (not calibrated) passes x through."""
    scale, zero = float(qrange[0]), int(qrange[1])
    return x if scale == 0 else torch.fake_quantize_per_tensor_affine(x, scale, zero, 0, 255)


def _hook_activations(model: torch.nn.Module, fn) -> list:
    """Call fn(range buffer, activation) on every convolution's input and output as the model
    runs; what fn returns (unless None) replaces the activation. Returns the hooks' handles."""
    def before(module, args):
        x = fn(module.input_range, args[0])
        return None if x is None else (x, *args[1:])

    def after(module, args, y):
        return fn(module.output_range, y)

    handles = []
    for _, conv, out in conv_outputs(model):
        handles += [conv.register_forward_pre_hook(before), out.register_forward_hook(after)]
    return handles


def install_activation_quantizers(model: torch.nn.Module) -> None:
    """Register the range buffers (uncalibrated: scale 0) and the fake-quantising hooks. Called
    before calibrating, and before loading a state dict that holds calibrated ranges."""
    for _, conv, out in conv_outputs(model):
        conv.register_buffer("input_range", torch.zeros(2))
        out.register_buffer("output_range", torch.zeros(2))
    _hook_activations(model, lambda qrange, x: _fake_quantize(x, qrange))


def uint8_range(low: float, high: float) -> tuple[float, int]:
    """[scale, zero point] mapping [low, high] (widened to include 0, so that 0 is exact) onto 0..255.

    >>> uint8_range(-1.0, 3.0)
    (0.01568627450980392, 64)
    """
    low, high = min(low, 0.0), max(high, 0.0)
    scale = (high - low) / 255 if high > low else 1.0
    return scale, int(np.clip(round(-low / scale), 0, 255))


@torch.no_grad()
def calibrate(model: torch.nn.Module, images: torch.Tensor, batch: int = 256) -> None:
    """Set every range buffer from the min and max its fp32 activation takes over `images`
    (each layer's input seen with the layers before it still unquantised)."""
    seen: dict[int, list[float]] = {}

    def observe(buffer: torch.Tensor, x: torch.Tensor) -> None:
        low, high = seen.setdefault(id(buffer), [float("inf"), float("-inf")])
        seen[id(buffer)] = [min(low, x.min().item()), max(high, x.max().item())]

    handles = _hook_activations(model, observe)
    model.eval()
    for chunk in images.split(batch):
        model(chunk)
    for handle in handles:
        handle.remove()
    for _, conv, out in conv_outputs(model):
        for buffer in (conv.input_range, out.output_range):
            buffer.copy_(torch.tensor(uint8_range(*seen[id(buffer)]), dtype=torch.float32))


@torch.no_grad()
def round_biases(model: torch.nn.Module, weight_scales: dict[str, np.ndarray]) -> None:
    """Round each conv's bias to its int32 grid: input scale x per-channel weight scale (from
    `weight_scales`, by the conv's module name)."""
    for name, conv, out in conv_outputs(model):
        bias = out.bias  # the folded norm's, or the conv's own when no norm follows
        if bias is None or name not in weight_scales:
            continue
        grid = torch.from_numpy(weight_scales[name]).double() * float(conv.input_range[0])
        bias.copy_((torch.round(bias.double() / grid) * grid).float())


def _constant(graph: onnx.GraphProto, name: str) -> np.ndarray:
    for init in graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for node in graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            return numpy_helper.to_array(node.attribute[0].t)
    raise KeyError(f"{name} is not a constant of the graph")


def _drop_identities(graph: onnx.GraphProto) -> None:
    """Read every Identity's input in place of its output (the exporter shares a weight between
    the two views of a flip-averaged graph through Identity nodes, which would hide the
    DequantizeLinear in front of a Conv)."""
    outputs = {o.name for o in graph.output}
    alias = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity" and n.output[0] not in outputs}
    kept = [n for n in graph.node if not (n.op_type == "Identity" and n.output[0] in alias)]
    for node in kept:
        node.input[:] = [alias.get(name, name) for name in node.input]
    del graph.node[:]
    graph.node.extend(kept)


def quantize_conv_biases(model: onnx.ModelProto) -> onnx.ModelProto:
    """Store the bias of every Conv whose input and weight come from DequantizeLinear as int32
    with a DequantizeLinear of scale (input scale x weight scale), completing the QDQ group
    onnxruntime turns into a QLinearConv."""
    graph = model.graph
    _drop_identities(graph)
    producer = {n.output[0]: n for n in graph.node}
    initializers = {init.name: init for init in graph.initializer}
    added_nodes, added_inits = [], {}
    for node in graph.node:
        if node.op_type != "Conv" or len(node.input) < 3 or node.input[2] not in initializers:
            continue
        x_dq, w_dq = producer.get(node.input[0]), producer.get(node.input[1])
        if not (x_dq and w_dq and x_dq.op_type == w_dq.op_type == "DequantizeLinear"):
            continue
        scale = (float(_constant(graph, x_dq.input[1])) * _constant(graph, w_dq.input[1]).astype(np.float64)).astype(np.float32)
        bias = numpy_helper.to_array(initializers[node.input[2]])
        name = f"{node.input[2]}.int32.{node.input[0]}"
        if name not in added_inits:
            added_inits[name] = [
                numpy_helper.from_array(np.round(bias / scale).astype(np.int32), f"{name}.q"),
                numpy_helper.from_array(scale, f"{name}.scale"),
                numpy_helper.from_array(np.zeros(scale.shape, np.int32), f"{name}.zero"),
            ]
            added_nodes.append(helper.make_node("DequantizeLinear", [f"{name}.q", f"{name}.scale", f"{name}.zero"], [name],
                                                axis=0, name=f"dequantize {name}"))
        node.input[2] = name
    nodes = added_nodes + list(graph.node)
    used = {name for node in nodes for name in node.input}
    inits = [init for init in graph.initializer if init.name in used] + [i for group in added_inits.values() for i in group]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(inits)
    return model
