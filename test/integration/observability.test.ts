/**
 * What an operator sees of each request in the Worker in workerd: its id on the answer and in
 * problem bodies, `Server-Timing` on the answers that ran a model, and one JSON log line with
 * the route, model, status and timings.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { digit, encodeGray, mnistTest, type EncodedImage } from "../support/mnist";
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
