/**
 * The served-graph rewrite on small graphs written here byte by byte, each run before and after
 * in onnxruntime-node: the head's weights as Gemm's alpha, beta and transB or MatMul + Add give
 * them, the NHWC and uint8 adapters, a final Softmax taken off, and the graphs it refuses.
 * (The torchvision exports in test/integration/bring-your-own.test.ts cover real networks.)
 */
import * as ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import { OnnxFormatError, readModel } from "./model";
import { MessageWriter, fields } from "./protobuf";
import { ImportRefusedError, inspectGraph, servedGraph } from "./served-graph";

const FLOAT = 1;
const UINT8 = 2;

const valueInfo = (name: string, elemType: number, dims: (number | string)[]) => {
  const shape = new MessageWriter();
  for (const dim of dims) shape.bytes(1, typeof dim === "number" ? new MessageWriter().int(1, dim).finish() : new MessageWriter().string(2, dim).finish());
  const tensor = new MessageWriter().int(1, elemType).bytes(2, shape.finish()).finish();
  return new MessageWriter().string(1, name).bytes(2, new MessageWriter().bytes(1, tensor).finish()).finish();
};
const tensor = (name: string, dims: number[], values: Float32Array) => {
  const w = new MessageWriter();
  for (const dim of dims) w.int(1, dim);
  return w.int(2, FLOAT).string(8, name).bytes(9, new Uint8Array(values.buffer)).finish();
};
type Attribute = { name: string; f?: number; i?: number; ints?: number[] };
const node = (op: string, inputs: string[], outputs: string[], attributes: Attribute[] = []) => {
  const w = new MessageWriter();
  for (const input of inputs) w.string(1, input);
  for (const output of outputs) w.string(2, output);
  w.string(4, op);
  for (const a of attributes) {
    const attr = new MessageWriter().string(1, a.name);
    if (a.f !== undefined) attr.float(2, a.f).int(20, 1);
    if (a.i !== undefined) attr.int(3, a.i).int(20, 2);
    if (a.ints) {
      for (const value of a.ints) attr.int(8, value);
      attr.int(20, 7);
    }
    w.bytes(5, attr.finish());
  }
  return w.finish();
};
function model(nodes: Uint8Array[], inits: Uint8Array[], inputs: Uint8Array[], outputs: Uint8Array[], opset = 17): Uint8Array<ArrayBuffer> {
  const graph = new MessageWriter();
  for (const n of nodes) graph.bytes(1, n);
  graph.string(2, "test");
  for (const t of inits) graph.bytes(5, t);
  for (const i of inputs) graph.bytes(11, i);
  for (const o of outputs) graph.bytes(12, o);
  return new MessageWriter().int(1, 8).bytes(7, graph.finish()).bytes(8, new MessageWriter().string(1, "").int(2, opset).finish()).finish();
}

const weights = Float32Array.from({ length: 12 * 4 }, (_, i) => Math.sin(i + 1)); // [12, 4] or [4, 12]
const bias = Float32Array.from([0.5, -1, 2, 0.25]);

/** A classifier of a [n, 3, 2, 2] image (or [n, 2, 2, 3] in NHWC): Flatten, then the head. */
function classifier(head: "gemm" | "gemm-transposed" | "matmul-add", options: { nhwc?: boolean; softmax?: boolean; uint8?: boolean } = {}) {
  const nodes = [];
  let x = "x";
  if (options.uint8) {
    nodes.push(node("Cast", ["x"], ["xf"], [{ name: "to", i: FLOAT }]));
    x = "xf";
  }
  nodes.push(node("Flatten", [x], ["flat"]));
  const scores = options.softmax ? "scores" : "y";
  if (head === "gemm") nodes.push(node("Gemm", ["flat", "W", "B"], [scores], [{ name: "transB", i: 1 }, { name: "alpha", f: 2 }, { name: "beta", f: 0.5 }]));
  if (head === "gemm-transposed") nodes.push(node("Gemm", ["flat", "W", "B"], [scores]));
  if (head === "matmul-add") nodes.push(node("MatMul", ["flat", "W"], ["mm"]), node("Add", ["mm", "B"], [scores]));
  if (options.softmax) nodes.push(node("Softmax", ["scores"], ["y"], [{ name: "axis", i: 1 }]));
  const inits = [tensor("W", head === "gemm" ? [4, 12] : [12, 4], weights), tensor("B", [4], bias)];
  const input = valueInfo("x", options.uint8 ? UINT8 : FLOAT, options.nhwc ? ["n", 2, 2, 3] : ["n", 3, 2, 2]);
  return model(nodes, inits, [input], [valueInfo("y", FLOAT, ["n", 4])]);
}

const image = Float32Array.from({ length: 12 }, (_, i) => i * 20); // whole levels, so uint8 can carry them
const run = async (bytes: Uint8Array, feeds: Record<string, ort.Tensor>) => {
  const session = await ort.InferenceSession.create(bytes);
  const out = await session.run(feeds);
  await session.release();
  return Object.fromEntries(Object.entries(out).map(([name, value]) => [name, [...(value.data as Float32Array)]]));
};
const close = (a: number[], b: number[]) => a.every((value, i) => Math.abs(value - b[i]!) < 1e-4);

describe("servedGraph", () => {
  it.each(["gemm", "gemm-transposed", "matmul-add"] as const)("%s: the head's weights as [classes, embedding], and logits equal the original's", async (head) => {
    const original = classifier(head);
    const served = servedGraph(readModel(original));
    expect([served.classes, served.embeddingSize, served.inputName, served.adapter]).toEqual([4, 12, "x", []]);
    const expected = await run(original, { x: new ort.Tensor("float32", image, [1, 3, 2, 2]) });
    const out = await run(served.bytes, { x: new ort.Tensor("float32", image, [1, 3, 2, 2]) });
    expect(close(out.logits!, expected.y!)).toBe(true);
    expect(out.embedding).toEqual([...image]);
    // W·e + b from the extracted head reproduces the graph.
    const mine = Array.from({ length: 4 }, (_, c) => served.bias[c]! + image.reduce((sum, e, j) => sum + served.weight[c * 12 + j]! * e, 0));
    expect(close(mine, expected.y!)).toBe(true);
  });

  it("NHWC with a final Softmax: a Transpose in front, the logits before the Softmax out", async () => {
    const original = classifier("gemm", { nhwc: true, softmax: true });
    const served = servedGraph(readModel(original));
    expect(served.adapter).toEqual(["NCHW to NHWC (Transpose)"]);
    expect(served.facts.outputKind).toBe("probabilities");
    const hwc = Float32Array.from({ length: 12 }, (_, i) => image[(i % 3) * 4 + Math.floor(i / 3)]!);
    const probabilities = (await run(original, { x: new ort.Tensor("float32", hwc, [1, 2, 2, 3]) })).y!;
    const logits = (await run(served.bytes, { image: new ort.Tensor("float32", image, [1, 3, 2, 2]) })).logits!;
    const exp = logits.map((value) => Math.exp(value - Math.max(...logits)));
    expect(close(exp.map((value) => value / exp.reduce((a, b) => a + b)), probabilities)).toBe(true);
  });

  it("uint8 input: rounded, clipped and cast in front", async () => {
    const original = classifier("gemm", { uint8: true });
    const served = servedGraph(readModel(original));
    expect(served.adapter).toEqual(["round to whole levels", "clip to 0..255", "cast to uint8"]);
    const expected = (await run(original, { x: new ort.Tensor("uint8", Uint8Array.from(image), [1, 3, 2, 2]) })).y!;
    const offGrid = image.map((level) => level + 0.3); // rounds back to the same levels
    expect(close((await run(served.bytes, { image: new ort.Tensor("float32", offGrid, [1, 3, 2, 2]) })).logits!, expected)).toBe(true);
  });

  it("refuses what it cannot feed or fine-tune, saying why", () => {
    const refusal = (bytes: Uint8Array, options = {}) => {
      try {
        servedGraph(readModel(bytes), options);
      } catch (error) {
        expect(error).toBeInstanceOf(ImportRefusedError);
        return (error as Error).message;
      }
      throw new Error("not refused");
    };
    const flat = (input: Uint8Array, opset = 17) => model([node("Flatten", ["x"], ["flat"]), node("Gemm", ["flat", "W", "B"], ["y"], [{ name: "transB", i: 1 }])], [tensor("W", [4, 12], weights), tensor("B", [4], bias)], [input], [valueInfo("y", FLOAT, ["n", 4])], opset);
    expect(refusal(flat(valueInfo("x", FLOAT, ["n", 12])))).toMatch(/an image batch has 4 dimensions/);
    expect(refusal(flat(valueInfo("x", 7, ["n", 3, 2, 2])))).toMatch(/is int64; cnn-edge feeds float32 or uint8/);
    expect(refusal(flat(valueInfo("x", FLOAT, ["n", 3, "h", "w"])))).toMatch(/height is not fixed in the graph \(h\); pass height/);
    expect(refusal(flat(valueInfo("x", FLOAT, ["n", 3, 2, 3])))).toMatch(/does not tell NCHW from NHWC/);
    expect(refusal(flat(valueInfo("x", FLOAT, ["n", 2, 2, 3]), 9), { layout: "NHWC" })).toMatch(/opset 9; adapting its input needs opset 11/);
    expect(refusal(classifier("gemm"), { output: "scores" })).toMatch(/output 'scores' is not an output of the graph/);
  });

  it("reads dims and opset as the graph states them", () => {
    const facts = inspectGraph(readModel(classifier("gemm", { nhwc: true })));
    expect(facts).toMatchObject({ inputName: "x", dtype: "float32", shape: ["n", 2, 2, 3], layout: "NHWC", classes: 4, opset: 17, operators: ["Flatten", "Gemm"] });
  });
});

describe("readModel", () => {
  it("refuses bytes that are no ONNX model, truncated ones included", () => {
    const bytes = classifier("gemm");
    for (const bad of [new TextEncoder().encode("not a model at all"), bytes.subarray(0, bytes.length - 40), new Uint8Array([0x3a, 0x05, 0x01])]) {
      expect(() => readModel(bad)).toThrow(OnnxFormatError);
    }
  });

  it("meets corrupted bytes with its own refusals only, never another error (which would be a 500)", () => {
    const original = classifier("gemm", { nhwc: true, softmax: true });
    let seed = 17;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const outcomes = { served: 0, refused: 0 };
    for (let trial = 0; trial < 3000; trial++) {
      const bytes = original.slice(0, trial % 3 === 0 ? Math.floor(random() * original.length) : original.length);
      for (let flips = 1 + Math.floor(random() * 4); flips > 0 && bytes.length; flips--) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
      try {
        servedGraph(readModel(bytes));
        outcomes.served++;
      } catch (error) {
        if (!(error instanceof OnnxFormatError || error instanceof ImportRefusedError)) throw new Error(`trial ${trial}: ${(error as Error).stack}`);
        outcomes.refused++;
      }
    }
    expect(outcomes.refused).toBeGreaterThan(1000); // the corruption reached the parser
  });

  it("writes and reads back negative and large varints", () => {
    const written = new MessageWriter().int(1, -3).int(2, 2 ** 40 + 5).finish();
    expect(fields(written).map((f) => f.int)).toEqual([-3, 2 ** 40 + 5]);
  });
});
