/**
 * The Node GPU host (npm run serve:node): the Worker's app in Node, the engine on Dawn's WebGPU
 * where the machine has a GPU and on WASM where it has none (as here: Dawn finds no adapter).
 * Its answers are checked against the Worker's own, in workerd.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { discoverModels } from "../../scripts/model-repository.ts";
import { cifarValidation } from "../support/cifar";
import { startNodeHost, type RunningNodeHost } from "../support/node-host";
import { ROOT } from "../support/paths";
import { parsePrometheus, sampleValue } from "../support/prometheus";
import { TEST_API_KEY, startWorker, type RunningWorker } from "../support/worker";

let host: RunningNodeHost;
let url: string;
let worker: RunningWorker;

beforeAll(async () => {
  worker = await startWorker();
  host = await startNodeHost();
  url = host.url;
});

afterAll(async () => {
  host?.close();
  await worker?.dispose();
});

type Health = { engine: { host: string; webgpu: { available: boolean; reason?: string } }; memory: { runtimeWarmUp: string } };
type Classified = { results: { logits: number[]; predictions: { label: string }[] }[]; timing: { provider: string } };

const post = (base: string | URL, path: string, body: BodyInit, type: string) =>
  fetch(new URL(path, base), { method: "POST", body, headers: { "content-type": type } });

describe("the Node host", () => {
  it("serves the app with the node engine, warmed up, and says whether it has WebGPU", async () => {
    const health = (await (await fetch(`${url}/healthz`)).json()) as Health;
    expect(health.engine.host).toBe("node");
    expect(health.memory.runtimeWarmUp).toBe("done");
    if (!health.engine.webgpu.available) expect(health.engine.webgpu.reason).toMatch(/adapter|navigator\.gpu/);
  });

  it.each([
    ["lenet", () => readFileSync(join(ROOT, "test", "fixtures", "mnist-test-0-label-7.png")), "image/png"],
    ["resnet-edge", () => cifarValidation(1)[2]!.bytes, "image/jpeg"],
  ])("classifies with %s as the Worker does", async (model, image, type) => {
    const health = (await (await fetch(`${url}/healthz`)).json()) as Health;
    const path = `/v1/models/${model}/classify?include=logits`;
    const [inNode, inWorker] = await Promise.all([post(url, path, image(), type), post(worker.url, path, image(), type)]);
    expect(inNode.status).toBe(200);
    const node = (await inNode.json()) as Classified;
    const workerd = (await inWorker.json()) as Classified;
    expect(node.timing.provider).toBe(health.engine.webgpu.available ? "webgpu" : "wasm");
    expect(workerd.timing.provider).toBe("wasm");
    expect(node.results[0]!.predictions[0]!.label).toBe(workerd.results[0]!.predictions[0]!.label);
    const difference = Math.max(...node.results[0]!.logits.map((logit, i) => Math.abs(logit - workerd.results[0]!.logits[i]!)));
    expect(difference).toBeLessThan(1e-3);
  });

  it("answers a forced provider it lacks with 422, and classifier routes with 501", async () => {
    const health = (await (await fetch(`${url}/healthz`)).json()) as Health;
    const forced = await post(url, "/classify?provider=webgpu", readFileSync(join(ROOT, "test", "fixtures", "mnist-test-0-label-7.png")), "image/png");
    expect(forced.status).toBe(health.engine.webgpu.available ? 200 : 422);
    const classifier = await fetch(`${url}/v1/classifiers/mine`, { headers: { authorization: `Bearer ${TEST_API_KEY}` } });
    expect(classifier.status).toBe(501);
    expect(classifier.headers.get("content-type")).toMatch(/application\/problem\+json/);
    expect(((await classifier.json()) as { type: string }).type).toMatch(/not-on-this-host/);
  });

  it("serves a model's ONNX file from its models/ folder stand-in for R2, as the Worker does from R2", async () => {
    const resnetEdge = discoverModels().find((model) => model.id === "resnet-edge")!;
    expect(resnetEdge.source.kind).toBe("r2");
    const res = await fetch(`${url}/v1/models/resnet-edge/model.onnx`);
    expect(res.status).toBe(200);
    expect(res.headers.get("etag")).toBe(`"${resnetEdge.manifest.artifact.sha256}"`);
    expect(createHash("sha256").update(new Uint8Array(await res.arrayBuffer())).digest("hex")).toBe(resnetEdge.manifest.artifact.sha256);
  });

  it("serves /metrics, counting what it answered", async () => {
    const families = parsePrometheus(await (await fetch(`${url}/metrics`)).text());
    // The two classifications above, one per model.
    for (const model of ["lenet", "resnet-edge"]) expect(sampleValue(families, "cnn_edge_requests_total", { route: "/v1/models/:id/classify", model, status_class: "2xx" }), model).toBe(1);
    expect(sampleValue(families, "cnn_edge_problems_total", { type: "not-on-this-host", status: "501" })).toBe(1);
  });

  it("serves the playground page, the OpenAPI document and its reference page", async () => {
    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/cnn-edge playground/);
    const document = (await (await fetch(`${url}/openapi.json`)).json()) as { openapi: string; paths: Record<string, unknown> };
    expect(document.openapi).toBe("3.1.0");
    expect(document.paths["/v1/models/{id}/classify"]).toBeDefined();
    const docs = await fetch(`${url}/docs/`);
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain("/docs/swagger-ui-bundle.js");
  });
});
