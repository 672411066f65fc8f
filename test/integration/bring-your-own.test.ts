/**
 * Bring your own model: ONNX classifiers exported in this run from torchvision's MobileNetV2 and
 * ResNet-18 (random weights: parity, not accuracy, is the point), and the variants other
 * exporters leave (NHWC with a final Softmax, a fixed batch of 1, uint8 input; opsets 13 and 17),
 * added with `npm run models:add`'s addModel, served by the built Worker in workerd, classified
 * over HTTP against onnxruntime-node running the file as the user exported it, and fine-tuned.
 * Graphs it cannot serve are refused with a message, and leave the repository as it was.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ModelRefusedError, addModel } from "../../scripts/add-model.ts";
import { toModelInput } from "../../workers/images/preprocess";
import type { ModelManifest } from "../../workers/models/manifest";
import { IMPORTED_CASES, IMPORTED_MODELS_DIR, IMPORT_DIR, buildImportedWorker, importedRepository, labelsFile, restoreCatalog } from "../support/imported-models";
import { PYTHON } from "../support/paths";
import { startWorker, type RunningWorker } from "../support/worker";

let worker: RunningWorker;
let added: Awaited<ReturnType<typeof importedRepository>>;

/** A 320x240 photo-like PNG: the shorter side is resized up to 256, then cropped to 224. */
async function photo(seed: number): Promise<Buffer> {
  const width = 320, height = 240;
  const data = Buffer.alloc(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (Math.sin(i * 0.001 * seed) * 100 + (i % 251) * 0.5 + seed * 13) & 0xff;
  return sharp(data, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

const manifestOf = (id: string) => JSON.parse(readFileSync(join(added.get(id)!.dir, "manifest.json"), "utf8")) as ModelManifest;
const softmax = (logits: number[]) => {
  const max = Math.max(...logits);
  const exp = logits.map((value) => Math.exp(value - max));
  const sum = exp.reduce((a, b) => a + b);
  return exp.map((value) => value / sum);
};

/** The Worker's input tensor for an image, computed in Node with the Worker's preprocessing. */
async function inputTensor(id: string, png: Buffer): Promise<Float32Array> {
  const { data, info } = await sharp(png).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return toModelInput({ width: info.width, height: info.height, data }, manifestOf(id).input);
}

/** onnxruntime-node's outputs of a file on one input. */
async function runFile(path: string, name: string, tensor: ort.Tensor): Promise<Record<string, number[]>> {
  const session = await ort.InferenceSession.create(path);
  const out = await session.run({ [name]: tensor });
  await session.release();
  return Object.fromEntries(Object.entries(out).map(([key, value]) => [key, [...(value.data as Float32Array)]]));
}

/** The served graph (model.onnx in the model's folder) in onnxruntime-node: what a quantised import is held to. */
async function asServed(id: string, png: Buffer): Promise<number[]> {
  const { input, artifact } = manifestOf(id);
  const tensor = new ort.Tensor("float32", await inputTensor(id, png), [1, input.channels, input.height, input.width]);
  return (await runFile(join(added.get(id)!.dir, "model.onnx"), artifact.inputName, tensor)).logits!;
}

/** The user's own file run by onnxruntime-node on the Worker's input tensor, fed as the file wants it. */
async function asExported(id: string, png: Buffer): Promise<number[]> {
  const manifest = manifestOf(id);
  const chw = await inputTensor(id, png);
  const { graphInput } = manifest.imported!;
  const { channels, height, width } = manifest.input;
  let values: Float32Array | Uint8Array = chw;
  let dims = [1, channels, height, width];
  if (graphInput.layout === "NHWC") {
    const hwc = new Float32Array(chw.length);
    for (let c = 0; c < channels; c++) for (let p = 0; p < height * width; p++) hwc[p * channels + c] = chw[c * height * width + p]!;
    values = hwc;
    dims = [1, height, width, channels];
  }
  if (graphInput.dtype === "uint8") values = Uint8Array.from(values, (level) => Math.round(level));
  const out = await runFile(added.get(id)!.onnx, graphInput.name, new ort.Tensor(graphInput.dtype, values, dims));
  return out[manifest.imported!.graphOutput.name]!;
}

const relativeDifference = (a: number[], reference: number[]) =>
  Math.max(...a.map((value, i) => Math.abs(value - reference[i]!))) / Math.max(1, ...reference.map(Math.abs));

beforeAll(async () => {
  added = await importedRepository();
  worker = await startWorker({ build: { dir: buildImportedWorker(), env: "" }, modelsDir: IMPORTED_MODELS_DIR });
}, 600_000);

afterAll(async () => {
  await worker?.dispose();
  restoreCatalog();
});

describe("models:add", () => {
  it("reads each graph's interface and writes what the manifest needs to feed it", () => {
    const facts = Object.fromEntries(IMPORTED_CASES.map(({ id }) => {
      const { input, imported, serving, head, artifact } = manifestOf(id);
      return [id, { layout: imported!.graphInput.layout, dtype: imported!.graphInput.dtype, kind: imported!.graphOutput.kind, fixedBatch: input.fixedBatch, runBatch: serving.runBatch, opset: artifact.opset, exemplars: head!.exemplarsPerClass, resize: `${input.resize} ${input.shorterSide}` }];
    }));
    console.table(facts);
    expect(facts["mobilenet-v2"]).toMatchObject({ layout: "NCHW", dtype: "float32", kind: "logits", opset: 17, exemplars: 0, resize: "shorter-side 256" });
    expect(facts["resnet18-int8"]).toMatchObject({ layout: "NCHW", opset: 13 });
    expect(facts["mnv2-nhwc-softmax"]).toMatchObject({ layout: "NHWC", kind: "probabilities", exemplars: 3 });
    expect(facts["mnv2-batch1"]).toMatchObject({ fixedBatch: 1, runBatch: 1 });
    expect(facts["mnv2-uint8"]).toMatchObject({ dtype: "uint8" });
    expect(manifestOf("mnv2-uint8").input).toMatchObject({ scale: 1, mean: [0, 0, 0], std: [1, 1, 1] });
  });

  it.each([
    ["a file that is not ONNX", "not-onnx", (path: string) => writeFileSync(path, "this is not a protobuf of a model"), /is not an ONNX model/],
    ["two image inputs", "two-inputs", (path: string) => graph(path, "two-inputs"), /has 2 inputs/],
    ["an operator onnxruntime-web lacks", "custom-op", (path: string) => graph(path, "custom-op"), /onnxruntime-web \(the Worker's runtime\) cannot load it/],
    ["a fixed batch of 4", "batch-4", (path: string) => graph(path, "batch-4"), /fixed batch of 4/],
    ["no linear head", "no-head", (path: string) => graph(path, "no-head"), /no linear head found/],
  ])("refuses %s with a message, writing nothing", async (_, id, write, message) => {
    const path = join(IMPORT_DIR, `${id}.onnx`);
    write(path);
    const before = readdirSync(IMPORTED_MODELS_DIR).sort();
    const error = await addModel(path, { id, labels: labelsFile(10), modelsDir: IMPORTED_MODELS_DIR }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ModelRefusedError);
    expect((error as Error).message).toMatch(message);
    expect(readdirSync(IMPORTED_MODELS_DIR).sort()).toEqual(before);
  });

  it("refuses labels that do not match the classes", async () => {
    const error = await addModel(added.get("resnet18-int8")!.onnx, { id: "resnet18-wrong", labels: labelsFile(10), modelsDir: IMPORTED_MODELS_DIR }).catch((caught: unknown) => caught);
    expect((error as Error).message).toBe(`the model scores 1000 classes, ${labelsFile(10)} names 10`);
  });
});

describe("an imported model in the Worker", () => {
  it("is listed with the project's own", async () => {
    const body = (await (await worker.fetch("/v1/models")).json()) as { models: { id: string; servable: boolean; input: { width: number } }[] };
    for (const { id } of IMPORTED_CASES) expect(body.models.find((model) => model.id === id)).toMatchObject({ servable: true, input: { width: 224 } });
  });

  it.each(IMPORTED_CASES.map(({ id }) => id))("%s: logits over HTTP equal onnxruntime-node's on the exported file (its int8 graph, when quantised) within 1e-4", async (id) => {
    const png = await photo(id.length);
    const res = await worker.fetch(`/classify?model=${id}&include=logits`, { method: "POST", headers: { "content-type": "image/png" }, body: new Uint8Array(png) });
    expect(res.status, await res.clone().text()).toBe(200);
    const body = (await res.json()) as { results: { logits: number[]; predictions: { label: string }[] }[]; timing: { inferenceMs: number } };
    const served = body.results[0]!.logits;
    const quantised = manifestOf(id).quantization !== undefined;
    const exported = await asExported(id, png);
    const reference = quantised ? await asServed(id, png) : exported;
    // A graph that ends in Softmax answers probabilities: the Worker serves the logits before it.
    const ours = manifestOf(id).imported!.graphOutput.kind === "probabilities" ? softmax(served) : served;
    const difference = relativeDifference(ours, reference);
    const fromFp32 = quantised ? `; int8 vs the fp32 file ${relativeDifference(ours, exported).toExponential(2)}` : "";
    const peak = Math.max(...reference.map(Math.abs));
    console.log(`${id}: max |Worker - onnxruntime-node| ${difference.toExponential(2)} (relative to max(1, ${peak.toFixed(2)}))${fromFp32}, Worker model run ${body.timing.inferenceMs.toFixed(1)} ms`);
    expect(peak).toBeLessThan(1e3); // calibrated batch norms: logits of a sane size, so the tolerance means something
    expect(ours).toHaveLength(reference.length);
    expect(difference).toBeLessThan(1e-4);
  });

  it("fine-tunes a copy of an imported model with a new class, and answers with it", async () => {
    const json = (body: unknown): RequestInit => ({ method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    const created = await worker.fetch("/v1/classifiers", json({ id: "my-mobilenet", backbone: "mnv2-nhwc-softmax", init: "pretrained" }));
    expect(created.status, await created.clone().text()).toBe(201);
    expect(await created.json()).toMatchObject({ version: 1, labels: expect.arrayContaining(["cat", "truck"]), baseExemplars: 30 });
    const examples = await Promise.all([1, 2, 3, 4].map(async (seed) => ({ image: (await photo(100 + seed)).toString("base64"), label: "test-card" })));
    const taught = await worker.fetch("/finetune?classifier=my-mobilenet", json({ examples }));
    expect(taught.status, await taught.clone().text()).toBe(200);
    const body = (await taught.json()) as { classifier: { version: number }; labels: string[]; metrics: { newClasses: string[] } };
    expect(body.classifier.version).toBe(2);
    expect(body.metrics.newClasses).toEqual(["test-card"]);
    expect(body.labels).toHaveLength(11);
    const answer = await worker.fetch("/classify?classifier=my-mobilenet", { method: "POST", headers: { "content-type": "image/png" }, body: new Uint8Array(await photo(101)) });
    expect(answer.status).toBe(200);
    expect(((await answer.json()) as { results: { predictions: { label: string }[] }[] }).results[0]!.predictions[0]!.label).toBe("test-card");
  });

  it("starts an empty classifier on an ImageNet-sized backbone", async () => {
    const json = { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ id: "on-resnet18", backbone: "resnet18-int8", init: "empty" }) };
    const created = await worker.fetch("/v1/classifiers", json);
    expect(created.status, await created.clone().text()).toBe(201);
    const examples = await Promise.all(["left", "left", "right", "right"].map(async (label, i) => ({ image: (await photo(label === "left" ? 1 + i : 50 + i)).toString("base64"), label })));
    const taught = await worker.fetch("/finetune?classifier=on-resnet18", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ examples }) });
    expect(taught.status, await taught.clone().text()).toBe(200);
    expect(((await taught.json()) as { labels: string[] }).labels).toEqual(["left", "right"]);
  });
});

/** Graphs a user might bring that cannot be served, written with onnx's helper. */
function graph(path: string, kind: string): void {
  execFileSync(PYTHON, ["-c", `
import sys, numpy as np, onnx
from onnx import TensorProto as T, helper as h, numpy_helper as nh
kind, path = sys.argv[1], sys.argv[2]
W = nh.from_array(np.zeros((10, 12), np.float32), "W")
x = h.make_tensor_value_info("x", T.FLOAT, [4 if kind == "batch-4" else "n", 3, 2, 2])
y = h.make_tensor_value_info("y", T.FLOAT, ["n", 10])
nodes = [h.make_node("Flatten", ["x"], ["flat"])]
inputs = [x]
if kind == "two-inputs":
    inputs.append(h.make_tensor_value_info("x2", T.FLOAT, ["n", 3, 2, 2]))
if kind == "custom-op":
    nodes.append(h.make_node("Mystery", ["flat"], ["flat2"], domain="com.example"))
else:
    nodes.append(h.make_node("Identity", ["flat"], ["flat2"]))
if kind == "no-head":
    nodes.append(h.make_node("Slice", ["flat2", "s", "e", "a"], ["y"]))
    inits = [nh.from_array(np.array([0]), "s"), nh.from_array(np.array([10]), "e"), nh.from_array(np.array([1]), "a")]
else:
    nodes.append(h.make_node("Gemm", ["flat2", "W"], ["y"], transB=1))
    inits = [W]
opsets = [h.make_opsetid("", 17)] + ([h.make_opsetid("com.example", 1)] if kind == "custom-op" else [])
onnx.save(h.make_model(h.make_graph(nodes, "g", inputs, [y], inits), opset_imports=opsets), path)
`, kind, path]);
}
