/**
 * What an operator sees of each request in the Worker in workerd: its id on the answer and in
 * problem bodies, `Server-Timing` on the answers that ran a model, one JSON log line with
 * the route, model, status and timings, and the isolate's counters at GET /metrics.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { digit, encodeGray, mnistTest, type EncodedImage } from "../support/mnist";
import { parsePrometheus, sampleValue, type MetricFamily } from "../support/prometheus";
import { startWorker, type RunningWorker } from "../support/worker";

let worker: RunningWorker;
let png: EncodedImage;

beforeAll(async () => {
  worker = await startWorker();
  png = await encodeGray(digit(mnistTest(3), 0), 28, 28, "png");
});
afterAll(() => worker?.dispose());

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The log line of the request with this id, once workerd has written it. */
async function logLineOf(requestId: string): Promise<Record<string, unknown>> {
  for (let tries = 0; tries < 100; tries++) {
    const line = worker.requestLog().find((entry) => entry.requestId === requestId);
    if (line) return line;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no log line for ${requestId} among ${worker.requestLog().length}`);
}

/** Server-Timing's metrics as name -> duration. */
function serverTiming(res: Response): Record<string, number> {
  const header = res.headers.get("server-timing") ?? "";
  return Object.fromEntries([...header.matchAll(/(\w+);dur=([\d.]+)/g)].map((m) => [m[1]!, Number(m[2])]));
}

it("a classification answers with the client's request id and Server-Timing, and logs one line with its model and timings", async () => {
  const res = await worker.fetch("/classify", { method: "POST", headers: { "content-type": "image/png", "x-request-id": "client-job-7" }, body: png });
  expect(res.status).toBe(200);
  expect(res.headers.get("x-request-id")).toBe("client-job-7");
  const body = (await res.json()) as { timing: { decodeMs: number; queueMs: number; inferenceMs: number; batch: { images: number; requests: number } } };
  expect(serverTiming(res)).toEqual({ decode: body.timing.decodeMs, queue: body.timing.queueMs, inference: body.timing.inferenceMs });

  const line = await logLineOf("client-job-7");
  expect(line).toMatchObject({ message: "request", method: "POST", route: "/classify", path: "/classify", status: 200, model: { id: "lenet", version: 1 }, batch: body.timing.batch });
  expect(line.timing).toMatchObject({ decodeMs: body.timing.decodeMs, inferenceMs: body.timing.inferenceMs });
  expect(line.durationMs as number).toBeGreaterThanOrEqual(body.timing.inferenceMs);
});

it("without a sane id of the client's, the answer gets a new UUID; a refusal carries it in its body and its log line names the problem", async () => {
  const res = await worker.fetch("/classify?top_k=0", { method: "POST", headers: { "content-type": "image/png", "x-request-id": "has spaces" }, body: png });
  expect(res.status).toBe(400);
  const id = res.headers.get("x-request-id")!;
  expect(id).toMatch(UUID);
  expect(((await res.json()) as { requestId: string }).requestId).toBe(id);
  expect(res.headers.get("server-timing")).toBeNull();
  expect(await logLineOf(id)).toMatchObject({ status: 400, route: "/classify", problem: "invalid-parameter" });

  const lost = await worker.fetch("/no/such/route");
  expect(lost.status).toBe(404);
  const lostId = lost.headers.get("x-request-id")!;
  expect(((await lost.json()) as { requestId: string }).requestId).toBe(lostId);
  expect(await logLineOf(lostId)).toMatchObject({ status: 404, route: null, path: "/no/such/route", problem: "not-found" });
});

it("a fine-tune answers with Server-Timing of its embedding and head update, and its log line names the classifier", async () => {
  const id = `observed-${process.pid}`;
  expect((await worker.fetch("/v1/classifiers", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ id, backbone: "lenet" }) })).status).toBe(201);
  const form = new FormData();
  form.append("image", new Blob([png], { type: "image/png" }));
  form.append("label", "zero");
  const res = await worker.fetch(`/finetune?classifier=${id}`, { method: "POST", headers: { "x-request-id": `ft-${id}` }, body: form });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { timing: { updateMs: number; totalMs: number } };
  expect(serverTiming(res)).toMatchObject({ update: body.timing.updateMs, total: body.timing.totalMs });
  expect(await logLineOf(`ft-${id}`)).toMatchObject({ route: "/finetune", status: 200, model: { id: "lenet" }, classifier: { id, version: 2 } });
});

/** /metrics, parsed by the Prometheus client's parser. */
async function scrape(): Promise<MetricFamily[]> {
  const res = await worker.fetch("/metrics");
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
  return parsePrometheus(await res.text());
}

it("GET /metrics counts requests, problems, model timings, batches and fine-tunes as they happen", async () => {
  const before = await scrape();
  const sent = 5;
  for (let i = 0; i < sent; i++) expect((await worker.fetch("/classify", { method: "POST", headers: { "content-type": "image/png" }, body: png })).status).toBe(200);
  expect((await worker.fetch("/classify", { method: "POST", headers: { "content-type": "image/png" }, body: new Uint8Array([1, 2, 3]) })).status).toBe(415);
  expect((await worker.fetch("/v1/models/no-such-model/classify", { method: "POST", headers: { "content-type": "image/png" }, body: png })).status).toBe(404);
  const id = `metered-${process.pid}`;
  expect((await worker.fetch("/v1/classifiers", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ id, backbone: "lenet" }) })).status).toBe(201);
  const form = new FormData();
  for (const label of ["zero", "one", "zero"]) {
    form.append("image", new Blob([png], { type: "image/png" }));
    form.append("label", label);
  }
  expect((await worker.fetch(`/finetune?classifier=${id}`, { method: "POST", body: form })).status).toBe(200);
  const after = await scrape();

  const moved = (name: string, labels: Record<string, string> = {}) => sampleValue(after, name, labels) - sampleValue(before, name, labels);
  expect(moved("cnn_edge_requests_total", { route: "/classify", model: "lenet", status_class: "2xx" })).toBe(sent);
  expect(moved("cnn_edge_requests_total", { route: "/classify", status_class: "4xx" })).toBe(1);
  expect(moved("cnn_edge_problems_total", { type: "unsupported-media-type", status: "415" })).toBe(1);
  expect(moved("cnn_edge_problems_total", { type: "unknown-model", status: "404" })).toBe(1);
  expect(moved("cnn_edge_request_duration_seconds_count", { route: "/classify", model: "lenet" })).toBe(sent);
  // Five classifications and the fine-tune's embedding ran LeNet.
  for (const timing of ["decode", "queue", "inference"]) expect(moved(`cnn_edge_${timing}_duration_seconds_count`, { model: "lenet" }), timing).toBe(sent + 1);
  expect(moved("cnn_edge_batch_images_count", { model: "lenet" })).toBe(sent + 1);
  expect(moved("cnn_edge_batch_images_sum", { model: "lenet" })).toBeGreaterThanOrEqual(sent + 3);
  expect(moved("cnn_edge_classifier_versions_created_total", { kind: "create" })).toBe(1);
  expect(moved("cnn_edge_classifier_versions_created_total", { kind: "finetune" })).toBe(1);
  expect(moved("cnn_edge_finetune_calls_total", { model: "lenet" })).toBe(1);
  expect(moved("cnn_edge_finetune_examples_total", { model: "lenet" })).toBe(3);
  // Buckets are cumulative and end at the count.
  const buckets = after.find((f) => f.name === "cnn_edge_inference_duration_seconds")!.samples.filter((s) => s.name.endsWith("_bucket") && s.labels.model === "lenet");
  for (let i = 1; i < buckets.length; i++) expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value);
  expect(buckets.at(-1)!.labels.le).toBe("+Inf");
  expect(buckets.at(-1)!.value).toBe(sampleValue(after, "cnn_edge_inference_duration_seconds_count", { model: "lenet" }));
  expect(sampleValue(after, "cnn_edge_resident_sessions")).toBeGreaterThanOrEqual(1);
  expect(after.find((f) => f.name === "cnn_edge_isolate_info")!.samples).toHaveLength(1);
});
