"""Read a user's ONNX image classifier and rewrite it into the graph cnn-edge serves.

Every served graph has one input, a float32 NCHW image batch already scaled and standardised as
its manifest says, and two outputs: `embedding` (what the head reads) and `logits` (what the
head writes). A model brought from elsewhere rarely looks like that, so its own interface is
kept inside the graph behind a small adapter and the serving path stays the one every model
takes:

    image (float32, NCHW, RGB) -> [Gather BGR] -> [Round, Clip, Cast uint8] -> [Transpose NHWC] -> the model's input
    the head's input (after Flatten / global pooling)  -> Identity -> embedding
    the head's output (before any final Softmax)        -> Identity -> logits

The head is the last Gemm, or MatMul (+ Add), before the output; its weights become head.bin so
that the Worker can fine-tune it. Whatever cannot be served is refused with ImportRefused and a
message saying why and what to pass instead.
"""
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SERVED_INPUT = "image"
PASS_THROUGH = {"Identity", "Dropout"}  # nodes between the head and the output that change nothing
SUPPORTED_INPUT_TYPES = {TensorProto.FLOAT: "float32", TensorProto.UINT8: "uint8"}


class ImportRefused(Exception):
    """The graph cannot be served as an image classifier; the message says why."""


@dataclass
class GraphFacts:
    """What the graph says about itself, before any override."""
    input_name: str
    dtype: str
    shape: list  # ints, or strings for symbolic dims
    layout: str | None  # "NCHW" / "NHWC" when the shape tells, else None
    output_name: str
    classes: int | None
    output_kind: str  # "logits", "probabilities" (final Softmax) or "log-probabilities" (final LogSoftmax)
    opset: int
    operators: list = field(default_factory=list)


def _dims(value_info) -> list:
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in value_info.type.tensor_type.shape.dim]


def _producers(graph) -> dict:
    return {out: node for node in graph.node for out in node.output}


def _graph_inputs(graph) -> list:
    initializers = {init.name for init in graph.initializer}
    return [value for value in graph.input if value.name not in initializers]


def _default_opset(model) -> int:
    return next((entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), 0)


def _final_tensor(graph, output_name: str) -> tuple[str, str]:
    """The tensor before any final Softmax/LogSoftmax (through pass-through nodes), and the output's kind."""
    producers = _producers(graph)
    name = output_name
    while name in producers and producers[name].op_type in PASS_THROUGH:
        name = producers[name].input[0]
    node = producers.get(name)
    if node is not None and node.op_type in ("Softmax", "LogSoftmax"):
        return node.input[0], "probabilities" if node.op_type == "Softmax" else "log-probabilities"
    return name, "logits"


def inspect(model: onnx.ModelProto, output: str | None = None) -> GraphFacts:
    """The graph's input, output and operators, or ImportRefused when it is not one image in, one score vector out."""
    graph = model.graph
    inputs = _graph_inputs(graph)
    if len(inputs) != 1:
        raise ImportRefused(f"the graph has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); cnn-edge feeds one image tensor")
    image = inputs[0]
    elem = image.type.tensor_type.elem_type
    if elem not in SUPPORTED_INPUT_TYPES:
        raise ImportRefused(f"input '{image.name}' is {TensorProto.DataType.Name(elem).lower()}; cnn-edge feeds float32 or uint8 images")
    shape = _dims(image)
    if len(shape) != 4:
        raise ImportRefused(f"input '{image.name}' has shape {shape}; an image batch has 4 dimensions (NCHW or NHWC)")
    channels_first, channels_last = shape[1] in (1, 3), shape[3] in (1, 3)
    layout = "NCHW" if channels_first and not channels_last else "NHWC" if channels_last and not channels_first else None
    names = [o.name for o in graph.output]
    if output is None:
        if len(names) != 1:
            raise ImportRefused(f"the graph has {len(names)} outputs ({', '.join(names)}); name the class scores with --output")
        output = names[0]
    elif output not in names:
        raise ImportRefused(f"--output '{output}' is not an output of the graph ({', '.join(names)})")
    out_info = next(o for o in graph.output if o.name == output)
    out_shape = _dims(out_info)
    if len(out_shape) != 2:
        raise ImportRefused(f"output '{output}' has shape {out_shape}; cnn-edge reads class scores of shape [batch, classes]")
    _, kind = _final_tensor(graph, output)
    return GraphFacts(
        input_name=image.name, dtype=SUPPORTED_INPUT_TYPES[elem], shape=shape, layout=layout, output_name=output,
        classes=out_shape[1] if isinstance(out_shape[1], int) and out_shape[1] > 0 else None, output_kind=kind,
        opset=_default_opset(model), operators=sorted({node.op_type for node in graph.node}),
    )


def _constant(graph, name: str) -> np.ndarray | None:
    for init in graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    node = _producers(graph).get(name)
    if node is not None and node.op_type == "Constant":
        return numpy_helper.to_array(node.attribute[0].t)
    return None


def find_head(graph, logits: str) -> tuple[str, str, np.ndarray, np.ndarray]:
    """The head's input tensor, its weight's tensor name, its weight [classes, embedding] and bias [classes]."""
    producers = _producers(graph)
    node = producers.get(logits)
    refuse = ImportRefused(
        f"no linear head found before '{logits}' (it is made by {node.op_type if node else 'no node'}); fine-tuning needs "
        "the last layer to be a Gemm or MatMul (+ Add) with constant weights")
    if node is None:
        raise refuse
    if node.op_type == "Gemm":
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        weight = _constant(graph, node.input[1])
        bias = _constant(graph, node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if weight is None or attrs.get("transA", 0):
            raise refuse
        weight = weight * attrs.get("alpha", 1.0)
        weight = weight if attrs.get("transB", 0) else weight.T
        bias = np.zeros(weight.shape[0], np.float32) if bias is None else np.broadcast_to(bias * attrs.get("beta", 1.0), (weight.shape[0],))
        return node.input[0], node.input[1], weight.astype(np.float32), bias.astype(np.float32)
    bias = None
    if node.op_type == "Add":
        matmul = next((producers.get(i) for i in node.input if producers.get(i) is not None and producers[i].op_type == "MatMul"), None)
        other = next((i for i in node.input if matmul is None or i != matmul.output[0]), None)
        bias = _constant(graph, other) if other else None
        if matmul is None or bias is None:
            raise refuse
        node = matmul
    if node.op_type != "MatMul":
        raise refuse
    weight = _constant(graph, node.input[1])
    if weight is None or weight.ndim != 2:
        raise refuse
    bias = np.zeros(weight.shape[1], np.float32) if bias is None else bias.reshape(-1)
    return node.input[0], node.input[1], weight.T.astype(np.float32), bias.astype(np.float32)


def _prune(graph, keep: set) -> None:
    """Remove nodes none of whose outputs is needed for the graph outputs."""
    needed = set(keep)
    kept = []
    for node in reversed(graph.node):
        if any(out in needed for out in node.output):
            kept.append(node)
            needed.update(i for i in node.input if i)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    used = {i for node in graph.node for i in node.input}
    initializers = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(initializers)


def adapt(model: onnx.ModelProto, facts: GraphFacts, *, layout: str, channel_order: str, height: int, width: int,
          fixed_batch: int | None) -> tuple[onnx.ModelProto, dict]:
    """The served graph (one float32 NCHW RGB input, outputs embedding and logits) and the head's weights."""
    graph = model.graph
    logits_tensor, _ = _final_tensor(graph, facts.output_name)
    embedding_tensor, head_weight, weight, bias = find_head(graph, logits_tensor)
    if facts.classes is not None and weight.shape[0] != facts.classes:
        raise ImportRefused(f"the head has {weight.shape[0]} outputs, the graph's output {facts.classes}")
    channels = facts.shape[1] if layout == "NCHW" else facts.shape[3]
    if channels not in (1, 3):
        raise ImportRefused(f"the input has {channels} channels in {layout}; cnn-edge feeds 1 (grayscale) or 3 (colour)")
    steps = []
    batch = fixed_batch if fixed_batch is not None else "batch"
    nodes = []
    if channel_order == "bgr" or facts.dtype == "uint8" or layout == "NHWC":
        if facts.opset < 11:
            raise ImportRefused(f"the graph is opset {facts.opset}; adapting its input needs opset 11 or later")
        current = SERVED_INPUT

        def step(op, inputs, description, **attrs):
            nonlocal current
            out = f"cnn_edge_adapter_{len(nodes)}"
            nodes.append(helper.make_node(op, inputs, [out], **attrs))
            steps.append(description)
            current = out

        constants = []
        if channel_order == "bgr":
            constants.append(numpy_helper.from_array(np.array([2, 1, 0], np.int64), "cnn_edge_bgr"))
            step("Gather", [current, "cnn_edge_bgr"], "RGB to BGR (Gather on the channel axis)", axis=1)
        if facts.dtype == "uint8":
            constants += [numpy_helper.from_array(np.array(0, np.float32), "cnn_edge_0"), numpy_helper.from_array(np.array(255, np.float32), "cnn_edge_255")]
            step("Round", [current], "round to whole levels")
            step("Clip", [current, "cnn_edge_0", "cnn_edge_255"], "clip to 0..255")
            step("Cast", [current], "cast to uint8", to=TensorProto.UINT8)
        if layout == "NHWC":
            step("Transpose", [current], "NCHW to NHWC (Transpose)", perm=[0, 2, 3, 1])
        nodes[-1].output[0] = facts.input_name  # the last step feeds the model's own input
        graph.initializer.extend(constants)
        for node in reversed(nodes):
            graph.node.insert(0, node)
        input_name = SERVED_INPUT
    else:
        input_name = facts.input_name
    original_input = next(i for i in graph.input if i.name == facts.input_name)
    graph.input.remove(original_input)
    graph.input.insert(0, helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [batch, channels, height, width]))
    classes, embedding_size = weight.shape
    graph.node.extend([
        helper.make_node("Identity", [embedding_tensor], ["embedding"]),
        helper.make_node("Identity", [logits_tensor], ["logits"]),
    ])
    del graph.output[:]
    graph.output.extend([
        helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [batch, embedding_size]),
        helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, classes]),
    ])
    del graph.value_info[:]  # shapes inferred for the old input may not hold for the new one
    _prune(graph, {"embedding", "logits"})
    onnx.checker.check_model(model)
    return model, {
        "inputName": input_name,
        "channels": channels,
        "embeddingSize": int(embedding_size),
        "classes": int(classes),
        "weight": weight,
        "bias": bias,
        "headWeight": head_weight,
        "adapter": steps,
        "removed": [] if facts.output_kind == "logits" else [f"final {'Softmax' if facts.output_kind == 'probabilities' else 'LogSoftmax'} (logits are served; the Worker applies softmax)"],
    }
