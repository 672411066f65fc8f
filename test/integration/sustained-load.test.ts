/**
 * Sustained concurrent load on the built Worker in workerd, with clients that hang up mid-body
 * and before reading their answers and some bad images, for over a minute: no 5xx at any point,
 * and normal batched service afterwards. Before issue 16's fix, requests began failing with 500
 * "Cannot perform I/O on behalf of a different request" after 20-40 s of this, and kept failing.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { runTraffic, type TrafficRequest } from "../../scripts/soak/traffic.ts";
import { ROOT } from "../support/paths";
import { startWorker, type RunningWorker } from "../support/worker";

let worker: RunningWorker;
beforeAll(async () => {
  // Without the static-assets layer in front, as on Cloudflare for API routes: more requests per second.
  worker = await startWorker({ assets: false });
});
afterAll(() => worker?.dispose());

const png = readFileSync(join(ROOT, "test/fixtures/mnist-test-0-label-7.png"));
const jpeg = readFileSync(join(ROOT, "test/fixtures/mnist-test-1-label-2.jpg"));

function single(body: Buffer, type: string, extra: Partial<TrafficRequest> = {}): () => TrafficRequest {
  return () => ({ kind: "lenet single", path: "/classify?top_k=1", headers: { "content-type": type }, body, expect: "2xx", ...extra });
}

interface Health {
  batching: Record<string, { announced: number; batches: number }>;
}

it("serves over a minute of concurrent load with clients hanging up without a single 5xx, then batches as before", async () => {
  const { totals, surprises, windows } = await runTraffic({
    base: worker.url,
    clients: 16,
    durationS: 70,
    windowS: 10,
    timeoutMs: 20_000,
    onWindow: (w) => console.log(`sustained load: ${w.t}s ${w.requests} requests, 5xx ${w.serverErrors}, unexpected ${w.unexpected}, failed ${w.failed}, p99 ${w.p99Ms.toFixed(1)} ms`),
    mix: [
      { weight: 60, make: single(png, "image/png") },
      { weight: 10, make: single(jpeg, "image/jpeg") },
      { weight: 10, make: single(jpeg, "image/jpeg", { kind: "hang up mid-body", hangUp: "mid-body" }) },
      { weight: 10, make: single(png, "image/png", { kind: "hang up before the answer", hangUp: "before-answer" }) },
      { weight: 5, make: single(png.subarray(0, 200), "image/png", { kind: "truncated PNG", expect: 422 }) },
      { weight: 5, make: single(png, "image/png", { kind: "top_k=0", path: "/classify?top_k=0", expect: 400 }) },
    ],
  });
  console.log("sustained load:", totals, surprises);
  expect(totals.requests).toBeGreaterThan(10_000);
  expect(totals.hungUp).toBeGreaterThan(1_000);
  expect({ serverErrors: totals.serverErrors, unexpected: totals.unexpected, failed: totals.failed, surprises }).toEqual({ serverErrors: 0, unexpected: 0, failed: 0, surprises: {} });
  expect(windows.every((w) => w.ok > 0)).toBe(true);

  // Afterwards: 16 at once are answered, and batched together; the batcher holds nothing.
  const burst = await Promise.all(
    Array.from({ length: 16 }, async () => {
      const res = await worker.fetch("/classify?top_k=1", { method: "POST", body: png, headers: { "content-type": "image/png" } });
      expect(res.headers.get("content-type")).toMatch(/json/);
      return { status: res.status, requests: ((await res.json()) as { timing: { batch: { requests: number } } }).timing.batch.requests };
    }),
  );
  expect(burst.map((b) => b.status)).toEqual(Array(16).fill(200));
  expect(Math.max(...burst.map((b) => b.requests))).toBeGreaterThan(1);
  const { batching } = (await (await worker.fetch("/healthz")).json()) as Health;
  expect(Object.values(batching)).toEqual(Object.values(batching).map(() => ({ announced: 0, batches: 0 })));
}, 150_000);
