/**
 * Admission control against the built Worker in plain workerd (as `npm run serve` runs it): a
 * spike of 12 MP photos far past what the isolate can serve is refused early with 503 problems
 * and Retry-After, nothing hangs, the tracked in-flight bytes stay within the budget, and service
 * is normal right after; a client's deadline drops its work; per-key rate limits answer 429.
 * The figures (goodput, latency, memory against offered load) are `npm run bench:overload`'s.
 */
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { twelveMegapixelJpeg } from "../../scripts/loadtest/payloads.ts";
import { runClients, send, type Outcome, type OverloadRequest } from "../../scripts/overload/clients.ts";
import { quantile } from "../../scripts/stats.ts";
import { startPlainWorkerd, type PlainWorkerd } from "../../scripts/workerd/serve.ts";
import { digit, encodeGray, mnistTest } from "../support/mnist";
import { BUILD_DIR } from "../support/paths";
import { parsePrometheus, sampleValue } from "../support/prometheus";
import { TEST_API_KEY, startWorker, type RunningWorker } from "../support/worker";

const PROBLEM = "application/problem+json";
const MODEL = "resnet-edge-int8-static";

interface Admission {
  budgetBytes: number;
  inFlightBytes: number;
  peakInFlightBytes: number;
  requests: number;
  queuedImages: Record<string, number>;
}
const admissionOf = async (base: URL) => ((await (await fetch(new URL("/healthz", base))).json()) as { admission: Admission }).admission;

describe("a spike of 12 MP photos far past capacity, in plain workerd", () => {
  let worker: PlainWorkerd;
  let state: string;
  let photo: OverloadRequest;
  beforeAll(async () => {
    state = mkdtempSync(join(tmpdir(), "cnn-edge-overload-test-"));
    worker = await startPlainWorkerd({ dir: BUILD_DIR, stateDir: state, secrets: { API_KEYS: TEST_API_KEY }, requestLog: "drop" });
    photo = { kind: "photo", path: `/v1/models/${MODEL}/classify?top_k=1`, contentType: "image/jpeg", body: await twelveMegapixelJpeg() };
  });
  afterAll(async () => {
    await worker?.dispose();
    rmSync(state, { recursive: true, force: true });
  });

  it("refuses what it cannot serve in time with 503 problems and Retry-After, never hangs, holds its memory budget, and serves normally right after", async () => {
    const timeoutMs = 15_000;
    const warm = await send(new http.Agent(), worker.url, photo, { expectContinue: false, honourRetryAfter: false, timeoutMs });
    expect(warm.result).toBe("ok");
    // 96 clients for 15 s, where the isolate serves about 8 photos a second: two thirds send
    // Expect: 100-continue (as curl does with large bodies), a third send every body whole.
    // Bad requests sent during the spike get their own 4xx, which their headers alone decide, not a 503.
    const badDuringSpike = async () => {
      await new Promise((r) => setTimeout(r, 5_000));
      const textPlain = await fetch(new URL(photo.path, worker.url), { method: "POST", body: "not an image", headers: { "content-type": "text/plain" } });
      // A 64 MiB body declared and never sent: refused from its Content-Length alone.
      const declaredTooLarge = await new Promise<number>((resolve) => {
        const req = http.request(new URL(photo.path, worker.url), { method: "POST", headers: { "content-type": "image/jpeg", "content-length": String(64 * 2 ** 20) } }, (res) => {
          resolve(res.statusCode ?? 0);
          req.destroy();
        });
        req.on("error", () => resolve(0));
        req.flushHeaders();
      });
      return [textPlain.status, declaredTooLarge];
    };
    const [expecting, plain, badStatuses] = await Promise.all([
      runClients(worker.url, 64, 15, () => photo, { expectContinue: true, honourRetryAfter: false, timeoutMs }),
      runClients(worker.url, 32, 15, () => photo, { expectContinue: false, honourRetryAfter: false, timeoutMs }),
      badDuringSpike(),
    ]);
    expect(badStatuses).toEqual([415, 413]);
    const outcomes: Outcome[] = [...expecting, ...plain];
    const count = (result: Outcome["result"]) => outcomes.filter((o) => o.result === result).length;
    const refused = outcomes.filter((o) => o.result === "refused");
    const answered = outcomes.filter((o) => o.result === "ok");
    console.log(
      `spike: ${outcomes.length} requests, ${answered.length} 200 (p50 ${quantile(answered.map((o) => o.latencyMs), 0.5).toFixed(0)} ms, p99 ${quantile(answered.map((o) => o.latencyMs), 0.99).toFixed(0)} ms), ` +
        `${refused.length} refused (p50 ${quantile(refused.map((o) => o.latencyMs), 0.5).toFixed(0)} ms, p99 ${quantile(refused.map((o) => o.latencyMs), 0.99).toFixed(0)} ms)`,
    );
    // Every answer is a 200 or a proper refusal; nothing timed out or went unanswered.
    expect(outcomes.filter((o) => o.note).slice(0, 3)).toEqual([]);
    expect({ bad: count("bad"), timeouts: count("timeout"), failed: count("failed") }).toEqual({ bad: 0, timeouts: 0, failed: 0 });
    expect(answered.length).toBeGreaterThan(20);
    expect(refused.length).toBeGreaterThan(answered.length);
    for (const r of refused) expect([503, 429]).toContain(r.status);
    // Refused early: a refusal comes back well before an answer does, most of them at once.
    expect(quantile(refused.map((o) => o.latencyMs), 0.5)).toBeLessThan(quantile(answered.map((o) => o.latencyMs), 0.5));
    expect(quantile(refused.map((o) => o.latencyMs), 0.5)).toBeLessThan(1_500);
    // What requests in flight held never passed the budget, and nothing is held now.
    for (let i = 0; i < 50 && (await admissionOf(worker.url)).requests > 0; i++) await new Promise((r) => setTimeout(r, 100));
    const admission = await admissionOf(worker.url);
    expect(admission.peakInFlightBytes).toBeGreaterThan(photo.body.length);
    expect(admission.peakInFlightBytes).toBeLessThanOrEqual(admission.budgetBytes);
    expect({ requests: admission.requests, inFlightBytes: admission.inFlightBytes, queued: Object.values(admission.queuedImages).reduce((a, b) => a + b, 0) }).toEqual({ requests: 0, inFlightBytes: 0, queued: 0 });
    // Normal service right after: a photo answered at once, and a refusal counted by reason.
    const after = await send(new http.Agent(), worker.url, photo, { expectContinue: false, honourRetryAfter: false, timeoutMs });
    expect(after.result).toBe("ok");
    expect(after.latencyMs).toBeLessThan(2_000);
    const metrics = parsePrometheus(await (await fetch(new URL("/metrics", worker.url))).text());
    expect(sampleValue(metrics, "cnn_edge_refusals_total")).toBe(refused.length);
    const byReason = Object.fromEntries(["memory", "queue-full", "queue-time"].map((reason) => [reason, sampleValue(metrics, "cnn_edge_refusals_total", { reason })]));
    expect(byReason).toEqual(Object.fromEntries(Object.keys(byReason).map((reason) => [reason, refused.filter((o) => o.reason === reason).length])));
  });

  it("drops the work of a request whose timeout_ms passed before its images ran: 503 deadline-exceeded with Retry-After", async () => {
    const res = await fetch(new URL(`${photo.path}&timeout_ms=1`, worker.url), { method: "POST", body: new Uint8Array(photo.body), headers: { "content-type": "image/jpeg" } });
    expect(res.status).toBe(503);
    expect(res.headers.get("content-type")).toBe(PROBLEM);
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(((await res.json()) as { type: string; reason: string })).toMatchObject({ type: "urn:cnn-edge:problem:deadline-exceeded", reason: "deadline" });
    const ok = await fetch(new URL(`${photo.path}&timeout_ms=20000`, worker.url), { method: "POST", body: new Uint8Array(photo.body), headers: { "content-type": "image/jpeg" } });
    expect(ok.status).toBe(200);
    for (const bad of ["0", "-5", "1.5", "abc", "120001"]) {
      const res = await fetch(new URL(`${photo.path}&timeout_ms=${bad}`, worker.url), { method: "POST", body: new Uint8Array(photo.body), headers: { "content-type": "image/jpeg" } });
      expect(res.status, bad).toBe(400);
      expect(((await res.json()) as { parameter: string }).parameter).toBe("timeout_ms");
    }
  });
});

describe("per-key rate limits (the Workers Rate Limiting binding, in Miniflare)", () => {
  let worker: RunningWorker;
  beforeAll(async () => {
    worker = await startWorker({ rateLimits: { WRITE_RATE_LIMIT: 2, CLASSIFY_RATE_LIMIT: 2 } });
  });
  afterAll(() => worker?.dispose());

  it("answers 429 rate-limited with Retry-After once a key has used its writes, and changes nothing", async () => {
    const create = (id: string) => worker.fetch("/v1/classifiers", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ id, backbone: "lenet" }) });
    expect((await create("limited-1")).status).toBe(201);
    expect((await create("limited-2")).status).toBe(201);
    const refused = await create("limited-3");
    expect(refused.status).toBe(429);
    expect(refused.headers.get("content-type")).toBe(PROBLEM);
    const retryAfter = Number(refused.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(await refused.json()).toMatchObject({ type: "urn:cnn-edge:problem:rate-limited", reason: "rate-limit", scope: "write" });
    expect((await worker.fetch("/v1/classifiers/limited-3")).status).toBe(404);
    const line = worker.requestLog().findLast((l) => l.status === 429);
    expect(line).toMatchObject({ problem: "rate-limited", refusal: { reason: "rate-limit", retryAfterS: retryAfter } });
  });

  it("does not limit classify where CLASSIFY_ACCESS is public", async () => {
    const png = await encodeGray(digit(mnistTest(1), 0), 28, 28, "png");
    for (let i = 0; i < 4; i++) expect((await fetch(new URL("/classify", worker.url), { method: "POST", body: png, headers: { "content-type": "image/png" } })).status).toBe(200);
  });
});

describe("per-key rate limits on classify where CLASSIFY_ACCESS is key", () => {
  let worker: RunningWorker;
  beforeAll(async () => {
    worker = await startWorker({ bindings: { CLASSIFY_ACCESS: "key" }, rateLimits: { CLASSIFY_RATE_LIMIT: 2 } });
  });
  afterAll(() => worker?.dispose());

  it("limits each key on its own", async () => {
    const png = await encodeGray(digit(mnistTest(1), 0), 28, 28, "png");
    const classify = (key: string) => fetch(new URL("/classify", worker.url), { method: "POST", body: png, headers: { "content-type": "image/png", authorization: `Bearer ${key}` } });
    expect([(await classify(TEST_API_KEY)).status, (await classify(TEST_API_KEY)).status, (await classify(TEST_API_KEY)).status]).toEqual([200, 200, 429]);
    expect((await classify("test-classify-key")).status).toBe(200);
  });
});
