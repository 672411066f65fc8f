/**
 * Rewrite a user's ONNX image classifier into the graph cnn-edge serves: one float32 NCHW RGB
 * input, already scaled and standardised as the manifest says, and two outputs, `embedding`
 * (what the head reads) and `logits` (what the head writes). The model's own interface stays
 * inside the graph behind a small adapter:
 *
 *   image (float32, NCHW, RGB) -> [Gather BGR] -> [Round, Clip, Cast uint8] -> [Transpose NHWC] -> the model's input
 *   the head's input (after Flatten / global pooling)  -> Identity -> embedding
 *   the head's output (before any final Softmax)        -> Identity -> logits
 *
 * The head is the last Gemm, or MatMul (+ Add), before the output; its weights are returned so
 * that a copy can be fine-tuned. What cannot be served is refused with ImportRefusedError.
 */
import { MessageWriter, first, type Field } from "./protobuf";
import { DataType, attributeNumber, dataTypeName, floatValues, readTensor, type OnnxModel, type OnnxNode } from "./model";

/** The graph cannot be served as an image classifier; the message says why and what to pass instead. */
export class ImportRefusedError extends Error {
  override name = "ImportRefusedError";
}

/** The served graph's input name when an adapter sits in front of the model's own. */
export const SERVED_INPUT = "image";
/** Nodes between the head and the output that change nothing. */
const PASS_THROUGH = new Set(["Identity", "Dropout"]);

/** What the graph says about itself, before any override. */
export interface GraphFacts {
  inputName: string;
  dtype: "float32" | "uint8";
  shape: (number | string)[];
  /** "NCHW" / "NHWC" when the shape tells, else undefined. */
  layout?: "NCHW" | "NHWC";
  outputName: string;
  classes?: number;
  outputKind: "logits" | "probabilities" | "log-probabilities";
  opset: number;
  operators: string[];
}

export interface ServeOptions {
  layout?: "NCHW" | "NHWC";
  channelOrder?: "rgb" | "bgr";
  height?: number;
  width?: number;
  /** The graph output holding the class scores, when it has several. */
  output?: string;
}

/** The served graph and what a manifest records of it. */
export interface ServedGraph {
  bytes: Uint8Array<ArrayBuffer>;
  facts: GraphFacts;
  inputName: string;
  channels: 1 | 3;
  layout: "NCHW" | "NHWC";
  height: number;
  width: number;
  /** 1 where the graph's batch is fixed at one image. */
  fixedBatch?: 1;
  classes: number;
  embeddingSize: number;
  /** Weights the served graph holds (elements of its initializers). */
  parameters: number;
  /** The initializer holding the head's weight (kept fp32 when the rest is quantised). */
  headWeight: string;
  /** The head, row-major [classes, embeddingSize], and its bias. */
  weight: Float32Array;
  bias: Float32Array;
  adapter: string[];
  removed: string[];
}

const graphInputs = (model: OnnxModel) => model.inputs.filter((input) => !model.initializers.has(input.name));
const producers = (model: OnnxModel) => new Map(model.nodes.flatMap((node) => node.outputs.map((out) => [out, node] as const)));

/** The tensor before any final Softmax/LogSoftmax (through pass-through nodes), and the output's kind. */
function finalTensor(model: OnnxModel, outputName: string): [string, GraphFacts["outputKind"]] {
  const made = producers(model);
  let name = outputName;
  while (made.has(name) && PASS_THROUGH.has(made.get(name)!.opType)) name = made.get(name)!.inputs[0]!;
  const node = made.get(name);
  if (node?.opType === "Softmax") return [node.inputs[0]!, "probabilities"];
  if (node?.opType === "LogSoftmax") return [node.inputs[0]!, "log-probabilities"];
  return [name, "logits"];
}

/**
 * The graph's input, output and operators.
 *
 * @throws ImportRefusedError when it is not one image in, one score vector out
 * @example
 * inspectGraph(readModel(bytes)).layout; // "NCHW"
 */
export function inspectGraph(model: OnnxModel, output?: string): GraphFacts {
  const inputs = graphInputs(model);
  if (inputs.length !== 1) {
    throw new ImportRefusedError(`the graph has ${inputs.length} inputs (${inputs.map((i) => i.name).join(", ")}); cnn-edge feeds one image tensor`);
  }
  const image = inputs[0]!;
  if (image.elemType !== DataType.FLOAT && image.elemType !== DataType.UINT8) {
    throw new ImportRefusedError(`input '${image.name}' is ${dataTypeName(image.elemType)}; cnn-edge feeds float32 or uint8 images`);
  }
  const shape = image.dims ?? [];
  if (shape.length !== 4) throw new ImportRefusedError(`input '${image.name}' has shape [${shape.join(", ")}]; an image batch has 4 dimensions (NCHW or NHWC)`);
  const channelsFirst = shape[1] === 1 || shape[1] === 3;
  const channelsLast = shape[3] === 1 || shape[3] === 3;
  const layout = channelsFirst && !channelsLast ? "NCHW" : channelsLast && !channelsFirst ? "NHWC" : undefined;
  const names = model.outputs.map((o) => o.name);
  if (output === undefined) {
    if (names.length !== 1) throw new ImportRefusedError(`the graph has ${names.length} outputs (${names.join(", ")}); name the class scores with output`);
    output = names[0]!;
  } else if (!names.includes(output)) {
    throw new ImportRefusedError(`output '${output}' is not an output of the graph (${names.join(", ")})`);
  }
  const outShape = model.outputs.find((o) => o.name === output)!.dims ?? [];
  if (outShape.length !== 2) throw new ImportRefusedError(`output '${output}' has shape [${outShape.join(", ")}]; cnn-edge reads class scores of shape [batch, classes]`);
  const classes = outShape[1];
  return {
    inputName: image.name,
    dtype: image.elemType === DataType.UINT8 ? "uint8" : "float32",
    shape,
    layout,
    outputName: output,
    classes: typeof classes === "number" && classes > 0 ? classes : undefined,
    outputKind: finalTensor(model, output)[1],
    opset: model.opset,
    operators: [...new Set(model.nodes.map((node) => node.opType))].sort(),
  };
}

/** A constant tensor's float values and dims: an initializer or a Constant node's value. */
function constant(model: OnnxModel, name: string): { values: Float32Array; dims: number[] } | undefined {
  let tensor = model.initializers.get(name);
  if (!tensor) {
    const node = producers(model).get(name);
    const value = node?.opType === "Constant" ? node.attributes.find((a) => a.name === "value") : undefined;
    const t = value && first(value.fields, 5);
    if (t) tensor = readTensor(t);
  }
  const values = tensor && floatValues(tensor);
  return values && tensor ? { values, dims: tensor.dims } : undefined;
}

/** [rows, cols] row-major transposed. */
function transpose(values: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = values[r * cols + c]!;
  return out;
}

/** The head's input tensor, its weight [classes, embedding] and bias [classes]. */
function findHead(model: OnnxModel, logits: string): { embedding: string; headWeight: string; weight: Float32Array; bias: Float32Array; classes: number; embeddingSize: number } {
  const made = producers(model);
  let node: OnnxNode | undefined = made.get(logits);
  const refuse = () =>
    new ImportRefusedError(
      `no linear head found before '${logits}' (it is made by ${node ? node.opType : "no node"}); fine-tuning needs the last layer to be a Gemm or MatMul (+ Add) with constant float weights`,
    );
  if (!node) throw refuse();
  if (node.opType === "Gemm") {
    const weight = constant(model, node.inputs[1]!);
    if (!weight || weight.dims.length !== 2 || attributeNumber(node, "transA", 0)) throw refuse();
    const alpha = attributeNumber(node, "alpha", 1);
    const beta = attributeNumber(node, "beta", 1);
    const [rows, cols] = weight.dims as [number, number];
    const w = attributeNumber(node, "transB", 0) ? weight.values : transpose(weight.values, rows, cols);
    const classes = attributeNumber(node, "transB", 0) ? rows : cols;
    const embeddingSize = w.length / classes;
    for (let i = 0; i < w.length; i++) w[i]! *= alpha;
    const bias = new Float32Array(classes);
    const c = node.inputs[2] ? constant(model, node.inputs[2]) : undefined;
    if (node.inputs[2] && !c) throw refuse();
    if (c) for (let i = 0; i < classes; i++) bias[i] = c.values[c.values.length === 1 ? 0 : i]! * beta;
    return { embedding: node.inputs[0]!, headWeight: node.inputs[1]!, weight: w, bias, classes, embeddingSize };
  }
  let bias: Float32Array | undefined;
  if (node.opType === "Add") {
    const matmul = node.inputs.map((i) => made.get(i)).find((n) => n?.opType === "MatMul");
    const other = node.inputs.find((i) => !matmul || i !== matmul.outputs[0]);
    bias = other ? constant(model, other)?.values : undefined;
    if (!matmul || !bias) throw refuse();
    node = matmul;
  }
  if (node.opType !== "MatMul") throw refuse();
  const weight = constant(model, node.inputs[1]!);
  if (!weight || weight.dims.length !== 2) throw refuse();
  const [embeddingSize, classes] = weight.dims as [number, number];
  if (bias && bias.length !== classes) throw refuse();
  return { embedding: node.inputs[0]!, headWeight: node.inputs[1]!, weight: transpose(weight.values, embeddingSize, classes), bias: bias ?? new Float32Array(classes), classes, embeddingSize };
}

const nodeBytes = (op: string, inputs: string[], outputs: string[], attrs: (w: MessageWriter) => void = () => undefined) => {
  const w = new MessageWriter();
  for (const input of inputs) w.string(1, input);
  for (const out of outputs) w.string(2, out);
  w.string(3, `cnn_edge_${outputs[0]}`).string(4, op);
  attrs(w);
  return w.finish();
};
const intAttribute = (name: string, value: number) => new MessageWriter().string(1, name).int(3, value).int(20, 2).finish();
const intsAttribute = (name: string, values: number[]) => {
  const w = new MessageWriter().string(1, name);
  for (const value of values) w.int(8, value);
  return w.int(20, 7).finish();
};
function tensorBytes(name: string, dataType: number, dims: number[], raw: Uint8Array): Uint8Array {
  const w = new MessageWriter();
  for (const dim of dims) w.int(1, dim);
  return w.int(2, dataType).string(8, name).bytes(9, raw).finish();
}
function valueInfoBytes(name: string, dims: (number | string)[]): Uint8Array {
  const shape = new MessageWriter();
  for (const dim of dims) shape.bytes(1, typeof dim === "number" ? new MessageWriter().int(1, dim).finish() : new MessageWriter().string(2, dim).finish());
  const tensorType = new MessageWriter().int(1, DataType.FLOAT).bytes(2, shape.finish()).finish();
  return new MessageWriter().string(1, name).bytes(2, new MessageWriter().bytes(1, tensorType).finish()).finish();
}

/** The nodes needed for `keep`, in order; all of them where a subgraph may read tensors unseen. */
function neededNodes(model: OnnxModel, keep: string[]): Set<OnnxNode> {
  if (model.nodes.some((node) => node.hasSubgraph)) return new Set(model.nodes);
  const needed = new Set(keep);
  const kept = new Set<OnnxNode>();
  for (const node of [...model.nodes].reverse()) {
    if (node.outputs.some((out) => needed.has(out))) {
      kept.add(node);
      for (const input of node.inputs) if (input) needed.add(input);
    }
  }
  return kept;
}

/**
 * The served graph: one float32 NCHW RGB input (adapted to the model's own), outputs
 * `embedding` and `logits`, and the head's weights.
 *
 * @throws ImportRefusedError when the graph cannot be served, with why
 * @example
 * const served = servedGraph(readModel(bytes), { channelOrder: "rgb" });
 * served.embeddingSize; // 1280 for MobileNetV2
 */
export function servedGraph(model: OnnxModel, options: ServeOptions = {}): ServedGraph {
  const facts = inspectGraph(model, options.output);
  const layout = options.layout ?? facts.layout;
  if (!layout) throw new ImportRefusedError(`input shape [${facts.shape.join(", ")}] does not tell NCHW from NHWC; pass layout`);
  const [hAxis, wAxis, cAxis] = layout === "NCHW" ? [2, 3, 1] : [1, 2, 3];
  const sizes = { height: [facts.shape[hAxis], options.height], width: [facts.shape[wAxis], options.width] } as const;
  for (const [name, [graphDim, given]] of Object.entries(sizes)) {
    if (typeof graphDim !== "number" && given === undefined) throw new ImportRefusedError(`the input's ${name} is not fixed in the graph (${graphDim}); pass ${name}`);
    if (typeof graphDim === "number" && given !== undefined && given !== graphDim) throw new ImportRefusedError(`${name} ${given} does not match the graph's ${graphDim}`);
  }
  const height = (options.height ?? facts.shape[hAxis]) as number;
  const width = (options.width ?? facts.shape[wAxis]) as number;
  const batch = facts.shape[0];
  if (typeof batch === "number" && batch > 1) throw new ImportRefusedError(`the input has a fixed batch of ${batch}; cnn-edge runs one image or a dynamic batch`);
  const channels = facts.shape[cAxis];
  if (channels !== 1 && channels !== 3) throw new ImportRefusedError(`the input has ${channels} channels in ${layout}; cnn-edge feeds 1 (grayscale) or 3 (colour)`);
  const [logits] = finalTensor(model, facts.outputName);
  const head = findHead(model, logits);
  if (facts.classes !== undefined && head.classes !== facts.classes) throw new ImportRefusedError(`the head has ${head.classes} outputs, the graph's output ${facts.classes}`);
  const channelOrder = options.channelOrder ?? "rgb";

  // The adapter: steps from the served input to the model's own, and the constants they read.
  const steps: { op: string; inputs: string[]; description: string; attrs?: (w: MessageWriter) => void }[] = [];
  const constants: Uint8Array[] = [];
  if ((channelOrder === "bgr" || facts.dtype === "uint8" || layout === "NHWC") && facts.opset < 11) {
    throw new ImportRefusedError(`the graph is opset ${facts.opset}; adapting its input needs opset 11 or later`);
  }
  if (channelOrder === "bgr") {
    constants.push(tensorBytes("cnn_edge_bgr", DataType.INT64, [3], new Uint8Array(new BigInt64Array([2n, 1n, 0n]).buffer)));
    steps.push({ op: "Gather", inputs: ["cnn_edge_bgr"], description: "RGB to BGR (Gather on the channel axis)", attrs: (w) => w.bytes(5, intAttribute("axis", 1)) });
  }
  if (facts.dtype === "uint8") {
    constants.push(tensorBytes("cnn_edge_0", DataType.FLOAT, [], new Uint8Array(new Float32Array([0]).buffer)));
    constants.push(tensorBytes("cnn_edge_255", DataType.FLOAT, [], new Uint8Array(new Float32Array([255]).buffer)));
    steps.push({ op: "Round", inputs: [], description: "round to whole levels" });
    steps.push({ op: "Clip", inputs: ["cnn_edge_0", "cnn_edge_255"], description: "clip to 0..255" });
    steps.push({ op: "Cast", inputs: [], description: "cast to uint8", attrs: (w) => w.bytes(5, intAttribute("to", DataType.UINT8)) });
  }
  if (layout === "NHWC") steps.push({ op: "Transpose", inputs: [], description: "NCHW to NHWC (Transpose)", attrs: (w) => w.bytes(5, intsAttribute("perm", [0, 2, 3, 1])) });
  // Each step reads the one before; the last feeds the model's own input.
  const adapter = steps.map((s, i) =>
    nodeBytes(s.op, [i === 0 ? SERVED_INPUT : `cnn_edge_adapter_${i - 1}`, ...s.inputs], [i === steps.length - 1 ? facts.inputName : `cnn_edge_adapter_${i}`], s.attrs),
  );
  const inputName = adapter.length ? SERVED_INPUT : facts.inputName;
  const batchDim: number | string = batch === 1 ? 1 : "batch";

  const taken = new Set([...model.nodes.flatMap((node) => node.outputs), ...model.inputs.map((input) => input.name), ...model.initializers.keys()]);
  for (const [name, tensor] of [["embedding", head.embedding], ["logits", logits]] as const) {
    if (tensor !== name && taken.has(name)) throw new ImportRefusedError(`the graph already has a tensor named '${name}' that is not the head's ${name === "logits" ? "output" : "input"}; rename it before adding the model`);
  }
  const keep = neededNodes(model, [head.embedding, logits]);
  const used = new Set([...keep].flatMap((node) => node.inputs));
  const graph = new MessageWriter();
  for (const bytes of adapter) graph.bytes(1, bytes);
  for (const node of model.nodes) if (keep.has(node)) graph.raw(node.raw);
  for (const [name, tensor] of [["embedding", head.embedding], ["logits", logits]] as const) {
    if (tensor !== name) graph.bytes(1, nodeBytes("Identity", [tensor], [name]));
  }
  for (const field of model.graphFields) {
    switch (field.number) {
      case 1: case 11: case 12: case 13: break; // nodes, inputs and outputs are written here; shapes inferred for the old input may not hold
      case 5: {
        if (used.has(readTensor(field).name)) graph.raw(field);
        break;
      }
      default: graph.raw(field as Field);
    }
  }
  for (const bytes of constants) graph.bytes(5, bytes);
  graph.bytes(11, valueInfoBytes(inputName, [batchDim, channels, height, width]));
  for (const input of model.inputs) if (model.initializers.has(input.name) && used.has(input.name)) graph.raw(input.raw);
  graph.bytes(12, valueInfoBytes("embedding", [batchDim, head.embeddingSize]));
  graph.bytes(12, valueInfoBytes("logits", [batchDim, head.classes]));

  const out = new MessageWriter();
  for (const field of model.modelFields) {
    if (field.number === 7) out.bytes(7, graph.finish());
    else out.raw(field);
  }
  return {
    bytes: out.finish(),
    facts,
    inputName,
    channels,
    layout,
    height,
    width,
    ...(batch === 1 ? { fixedBatch: 1 as const } : {}),
    classes: head.classes,
    embeddingSize: head.embeddingSize,
    parameters: [...model.initializers.values()].filter((t) => used.has(t.name)).reduce((sum, t) => sum + t.dims.reduce((a, b) => a * b, 1), 0),
    headWeight: head.headWeight,
    weight: head.weight,
    bias: head.bias,
    adapter: steps.map((s) => s.description),
    removed: facts.outputKind === "logits" ? [] : [`final ${facts.outputKind === "probabilities" ? "Softmax" : "LogSoftmax"} (logits are served; the Worker applies softmax)`],
  };
}
