/**
 * Bring your own model: ONNX classifiers exported in this run from torchvision's MobileNetV2 and
 * ResNet-18 (random weights: parity, not accuracy, is the point), and the variants other
 * exporters leave (NHWC with a final Softmax, a fixed batch of 1, uint8 input; opsets 13 and 17),
 * added with `npm run models:add`'s addModel and registered through POST /v1/models, served by
 * the built Worker in workerd, classified over HTTP against onnxruntime-node running the file as
 * the user exported it, fine-tuned, and (the registered ones) deleted. Graphs it cannot serve are
 * refused with a message, and leave the repository, or the registry, as it was.
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
    expect((error as Error).message).toBe("the model scores 1000 classes, the labels name 10");
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

/** POST /v1/models with the file at `path` and these settings. */
function register(path: string, fields: Record<string, string>, bytes?: Uint8Array): Promise<Response> {
  const form = new FormData();
  form.append("model", new Blob([new Uint8Array(bytes ?? readFileSync(path))]), path.split("/").at(-1)!);
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  return worker.fetch("/v1/models", { method: "POST", body: form });
}

const labelsText = (classes: number) => readFileSync(labelsFile(classes), "utf8");
const registeredIds = async () => ((await (await worker.fetch("/v1/models")).json()) as { models: { id: string; version: number }[] }).models.map((m) => `${m.id}@${m.version}`).sort();
const API_CASES = IMPORTED_CASES.filter((c) => !c.add?.quantize); // int8 is the command's (Python); the fp32 ResNet-18 is over the upload limit

describe("registered through the API (POST /v1/models)", () => {
  it.each(API_CASES.map(({ id }) => id))("%s: the Worker writes the manifest the command wrote, and its logits equal onnxruntime-node's on the exported file within 1e-4", async (id) => {
    const c = IMPORTED_CASES.find((other) => other.id === id)!;
    const started = performance.now();
    const res = await register(added.get(id)!.onnx, { id: `${id}-api`, labels: labelsText(c.classes), preset: "imagenet" });
    expect(res.status, await res.clone().text()).toBe(201);
    const body = (await res.json()) as { version: number; source: string; manifest: ModelManifest };
    const registerMs = performance.now() - started;
    expect(res.headers.get("location")).toBe(`/v1/models/${id}-api?version=1`);
    expect(body).toMatchObject({ version: 1, source: "registered" });
    // One pipeline both ways: the same served graph, input, head and (measured in the Worker's own runtime) memory.
    const command = manifestOf(id);
    expect(body.manifest.input).toEqual(command.input);
    expect(body.manifest.imported).toMatchObject({ ...command.imported, from: `${id}.onnx` });
    expect(body.manifest.artifact.sha256).toBe(command.artifact.sha256);
    expect(body.manifest.serving).toMatchObject({ runBatch: command.serving.runBatch, servable: true });
    expect(Math.abs(body.manifest.serving.memoryBytes - command.serving.memoryBytes)).toBeLessThanOrEqual(2 * 65536); // WASM pages
    const png = await photo(id.length + 7);
    const answer = await worker.fetch(`/v1/models/${id}-api/classify?include=logits`, { method: "POST", headers: { "content-type": "image/png" }, body: new Uint8Array(png) });
    expect(answer.status, await answer.clone().text()).toBe(200);
    const served = ((await answer.json()) as { results: { logits: number[] }[] }).results[0]!.logits;
    const ours = command.imported!.graphOutput.kind === "probabilities" ? softmax(served) : served;
    const difference = relativeDifference(ours, await asExported(id, png));
    console.log(`${id}-api: registered in ${registerMs.toFixed(0)} ms (serving ${(body.manifest.serving.memoryBytes / 2 ** 20).toFixed(1)} MiB at batch ${body.manifest.serving.runBatch}, measured in the Worker), max |Worker - onnxruntime-node| ${difference.toExponential(2)}`);
    expect(difference).toBeLessThan(1e-4);
    // And it is a backbone: an empty classifier on it learns two new classes.
    const json = (payload: unknown): RequestInit => ({ method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(payload) });
    expect((await worker.fetch("/v1/classifiers", json({ id: `${id}-api-head`, backbone: `${id}-api`, init: "empty" }))).status).toBe(201);
    const examples = await Promise.all([["bars", 5], ["noise", 77]].map(async ([label, seed]) => ({ image: (await photo(seed as number)).toString("base64"), label })));
    const taught = await worker.fetch(`/finetune?classifier=${id}-api-head`, json({ examples }));
    expect(taught.status, await taught.clone().text()).toBe(200);
    expect(((await taught.json()) as { labels: string[] }).labels).toEqual(["bars", "noise"]);
  });

  it("keeps every version: the latest by default, ?version= pins one", async () => {
    const path = added.get("mnv2-batch1")!.onnx;
    const second = await register(path, { id: "mnv2-batch1-api", labels: labelsText(10), preset: "imagenet", mirrorable: "true" });
    expect(second.status, await second.clone().text()).toBe(201);
    expect(((await second.json()) as { version: number }).version).toBe(2);
    const listed = ((await (await worker.fetch("/v1/models")).json()) as { models: { id: string; version: number; versions?: number[] }[] }).models;
    expect(listed.filter((model) => model.id === "mnv2-batch1-api")).toMatchObject([{ version: 2, versions: [2, 1] }]);
    const manifest = async (query: string) => (await (await worker.fetch(`/v1/models/mnv2-batch1-api${query}`)).json()) as ModelManifest;
    expect((await manifest("")).version).toBe(2);
    expect((await manifest("?version=1")).input.mirrorable).toBe(false);
    expect((await manifest("?version=2")).input.mirrorable).toBe(true);
    const classify = (query: string) => worker.fetch(`/v1/models/mnv2-batch1-api/classify${query}`, { method: "POST", headers: { "content-type": "image/png" }, body: new Uint8Array(readFileSync(join(IMPORT_DIR, "photo-3.png"))) });
    writeFileSync(join(IMPORT_DIR, "photo-3.png"), await photo(3));
    const v1 = (await (await classify("?version=1")).json()) as { model: { version: number }; timing: { flipAverage: boolean } };
    const latest = (await (await classify("")).json()) as { model: { version: number }; timing: { flipAverage: boolean } };
    expect([v1.model.version, v1.timing.flipAverage, latest.model.version, latest.timing.flipAverage]).toEqual([1, false, 2, true]);
    const missing = await worker.fetch("/v1/models/mnv2-batch1-api?version=9");
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ type: "urn:cnn-edge:problem:unknown-model-version", versions: [2, 1] });
  });

  it("fine-tunes a classifier on a registered model; the pretrained copy says it has no exemplars", async () => {
    const json = (body: unknown): RequestInit => ({ method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    const copied = await worker.fetch("/v1/classifiers", json({ id: "api-copy", backbone: "mnv2-nhwc-softmax-api", init: "pretrained" }));
    expect(copied.status, await copied.clone().text()).toBe(201);
    expect(await copied.json()).toMatchObject({ backbone: { id: "mnv2-nhwc-softmax-api", version: 1 }, labels: expect.arrayContaining(["cat"]), baseExemplars: 0 });
    const empty = await worker.fetch("/v1/classifiers", json({ id: "api-empty", backbone: "mnv2-uint8-api", init: "empty" }));
    expect(empty.status, await empty.clone().text()).toBe(201);
    const examples = await Promise.all(["stripes", "stripes", "waves", "waves"].map(async (label, i) => ({ image: (await photo(label === "stripes" ? 1 + i : 60 + i)).toString("base64"), label })));
    const taught = await worker.fetch("/finetune?classifier=api-empty", json({ examples }));
    expect(taught.status, await taught.clone().text()).toBe(200);
    expect(((await taught.json()) as { labels: string[] }).labels).toEqual(["stripes", "waves"]);
    const answer = await worker.fetch("/classify?classifier=api-empty", { method: "POST", headers: { "content-type": "image/png" }, body: new Uint8Array(await photo(2)) });
    expect(answer.status).toBe(200);
    expect(((await answer.json()) as { results: { predictions: { label: string }[] }[] }).results[0]!.predictions[0]!.label).toBe("stripes");
  });

  it.each([
    ["a file that is not ONNX", "not-onnx", (path: string) => writeFileSync(path, "this is not a protobuf of a model"), 422, /is not an ONNX model/],
    ["a truncated file", "truncated", (path: string) => writeFileSync(path, readFileSync(added.get("mobilenet-v2")!.onnx).subarray(0, 5_000_000)), 422, /is not an ONNX model/],
    ["two image inputs", "two-inputs", (path: string) => graph(path, "two-inputs"), 422, /has 2 inputs/],
    ["an operator onnxruntime-web lacks", "custom-op", (path: string) => graph(path, "custom-op"), 422, /onnxruntime-web \(the Worker's runtime\) refused it: creating the session/],
    ["a fixed batch of 4", "batch-4", (path: string) => graph(path, "batch-4"), 422, /fixed batch of 4/],
    ["no linear head", "no-head", (path: string) => graph(path, "no-head"), 422, /no linear head found/],
    ["a model over the memory budget at batch 1", "huge-activation", (path: string) => graph(path, "huge-activation"), 422, /a model may use 96\.0 MiB/],
    ["a file over the upload limit", "too-large", (path: string) => writeFileSync(path, new Uint8Array(32 * 1024 * 1024 + 1)), 413, /the API takes up to 33554432/],
    ["a built-in model's id", "lenet", (path: string) => graph(path, "good"), 409, /already a built-in model's id/],
    ["an existing classifier's id", "api-empty", (path: string) => graph(path, "good"), 409, /already a classifier's id/],
  ])("refuses %s with a problem, leaving the registry as it was", async (_, id, write, status, detail) => {
    const path = join(IMPORT_DIR, `api-${id}.onnx`);
    write(path);
    const before = await registeredIds();
    const res = await register(path, { id, labels: labelsText(10), preset: "imagenet" });
    expect(res.status).toBe(status);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    expect(((await res.json()) as { detail: string }).detail).toMatch(detail);
    expect(await registeredIds()).toEqual(before);
  });

  it("refuses settings it cannot use before reading the graph", async () => {
    const path = join(IMPORT_DIR, "api-good.onnx");
    graph(path, "good");
    const cases: [Record<string, string>, string][] = [
      [{ labels: labelsText(10) }, "id"],
      [{ id: "x-api" }, "labels"],
      [{ id: "x-api", labels: labelsText(10), layout: "NWHC" }, "layout"],
      [{ id: "x-api", labels: labelsText(10), mean: "a,b,c" }, "mean"],
      [{ id: "x-api", labels: labelsText(10), tile: "2" }, "tile"],
      [{ id: "x-api", labels: "cat\ncat\n" }, "labels"],
    ];
    for (const [fields, parameter] of cases) {
      const res = await register(path, fields);
      expect(res.status, JSON.stringify(fields)).toBe(400);
      expect(await res.json()).toMatchObject({ type: "urn:cnn-edge:problem:invalid-parameter", parameter });
    }
    const form = await worker.fetch("/v1/models", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(form.status).toBe(415);
    const anonymous = await worker.fetch("/v1/models", { method: "POST", headers: { authorization: "" }, body: new FormData() });
    expect(anonymous.status).toBe(401);
  });

  it("deletes a registered model, every version, and nothing built in", async () => {
    const deleted = await worker.fetch("/v1/models/mnv2-batch1-api", { method: "DELETE" });
    expect(deleted.status, await deleted.clone().text()).toBe(200);
    expect(await deleted.json()).toEqual({ deleted: { id: "mnv2-batch1-api", versions: [2, 1] } });
    expect((await registeredIds()).filter((id) => id.startsWith("mnv2-batch1-api"))).toEqual([]);
    const classify = await worker.fetch("/v1/models/mnv2-batch1-api/classify", { method: "POST", headers: { "content-type": "image/png" }, body: new Uint8Array(await photo(3)) });
    expect(classify.status).toBe(404);
    expect(await worker.bucket.list({ prefix: "registered/mnv2-batch1-api/" }).then((listed) => listed.objects.length)).toBe(0);
    expect((await worker.fetch("/v1/models/mnv2-batch1-api", { method: "DELETE" })).status).toBe(404);
    expect(await (await worker.fetch("/v1/models/lenet", { method: "DELETE" })).json()).toMatchObject({ status: 403, type: "urn:cnn-edge:problem:model-built-in" });
    // A new registration of the id never reuses a version: isolates cache sessions by id@version.
    const again = await register(added.get("mnv2-batch1")!.onnx, { id: "mnv2-batch1-api", labels: labelsText(10) });
    expect(((await again.json()) as { version: number }).version).toBe(3);
    for (const { id } of API_CASES) expect((await worker.fetch(`/v1/models/${id}-api`, { method: "DELETE" })).status).toBe(200);
    // A classifier whose backbone was deleted answers that, and nothing else breaks.
    const orphan = await worker.fetch("/classify?classifier=api-empty", { method: "POST", headers: { "content-type": "image/png" }, body: new Uint8Array(await photo(2)) });
    expect(await orphan.json()).toMatchObject({ status: 404, type: "urn:cnn-edge:problem:unknown-model" });
  });
});

/** Graphs a user might bring that cannot be served, written with onnx's helper. */
function graph(path: string, kind: string): void {
  execFileSync(PYTHON, ["-c", `
import sys, numpy as np, onnx
from onnx import TensorProto as T, helper as h, numpy_helper as nh
kind, path = sys.argv[1], sys.argv[2]
W = nh.from_array(np.zeros((10, 12), np.float32), "W")
side = 1024 if kind == "huge-activation" else 2
x = h.make_tensor_value_info("x", T.FLOAT, [4 if kind == "batch-4" else 1 if kind == "huge-activation" else "n", 3, side, side])
y = h.make_tensor_value_info("y", T.FLOAT, ["n", 10])
# huge-activation: 64 channels at 1024x1024 in float32 are 256 MiB at its fixed batch of 1.
nodes = [h.make_node("Conv", ["x", "K"], ["c"], pads=[1, 1, 1, 1]), h.make_node("GlobalAveragePool", ["c"], ["p"]), h.make_node("Flatten", ["p"], ["flat"])] if kind == "huge-activation" else [h.make_node("Flatten", ["x"], ["flat"])]
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
    inits = [W] if kind != "huge-activation" else [nh.from_array(np.zeros((10, 64), np.float32), "W"), nh.from_array(np.ones((64, 3, 3, 3), np.float32) * 0.01, "K")]
opsets = [h.make_opsetid("", 17)] + ([h.make_opsetid("com.example", 1)] if kind == "custom-op" else [])
onnx.save(h.make_model(h.make_graph(nodes, "g", inputs, [y], inits), opset_imports=opsets), path)
`, kind, path]);
}
