/**
 * Latency of POST /classify against the built Worker in workerd (Miniflare), over loopback HTTP.
 * Prints a markdown table and writes test/.build/bench-classify.json. Run: npm run bench
 *
 * cold: the first request to a freshly started Worker (ORT runtime + session creation included);
 * warm: sequential requests to a Worker that has already served one.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { it } from "vitest";
import { digit, encodeGray, mnistTest, type EncodedImage } from "../support/mnist";
import { BUILD_DIR } from "../support/paths";
import { startWorker, type RunningWorker } from "../support/worker";

const COLD_STARTS = 5;
const WARM_REQUESTS = 500;
const BATCH = 32;

interface Timing {
  decodeMs: number;
  inferenceMs: number;
}

async function classify(worker: RunningWorker, body: BodyInit, type?: string): Promise<{ ms: number; timing: Timing }> {
  const start = performance.now();
  const res = await worker.fetch("/classify", { method: "POST", body, headers: type ? { "content-type": type } : {} });
  const json = (await res.json()) as { timing: Timing };
  if (res.status !== 200) throw new Error(`status ${res.status}: ${JSON.stringify(json)}`);
  return { ms: performance.now() - start, timing: json.timing };
}

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const fmt = (ms: number) => ms.toFixed(2);

it("classify latency", async () => {
  const digits = mnistTest(WARM_REQUESTS);
  const png: EncodedImage[] = await Promise.all(Array.from({ length: WARM_REQUESTS }, (_, i) => encodeGray(digit(digits, i), 28, 28, "png")));
  const rows: Record<string, string | number>[] = [];

  const cold: { ms: number; timing: Timing }[] = [];
  for (let i = 0; i < COLD_STARTS; i++) {
    const worker = await startWorker();
    try {
      cold.push(await classify(worker, png[0]!, "image/png"));
    } finally {
      await worker.dispose();
    }
  }
  const coldMs = cold.map((c) => c.ms);
  rows.push({ case: `cold start, 1 PNG (${COLD_STARTS} fresh Workers)`, p50: fmt(quantile(coldMs, 0.5)), p99: fmt(Math.max(...coldMs)), serverInferenceMs: fmt(quantile(cold.map((c) => c.timing.inferenceMs), 0.5)) });

  const worker = await startWorker();
  try {
    await classify(worker, png[0]!, "image/png");
    const warm: { ms: number; timing: Timing }[] = [];
    for (const file of png) warm.push(await classify(worker, file, "image/png"));
    const ms = warm.map((w) => w.ms);
    rows.push({ case: `warm, 1 PNG 28x28 (${WARM_REQUESTS} sequential)`, p50: fmt(quantile(ms, 0.5)), p99: fmt(quantile(ms, 0.99)), serverInferenceMs: fmt(quantile(warm.map((w) => w.timing.inferenceMs), 0.5)) });

    const batches: number[] = [];
    for (let start = 0; start + BATCH <= png.length; start += BATCH) {
      const form = new FormData();
      png.slice(start, start + BATCH).forEach((file, j) => form.append("image", new Blob([file], { type: "image/png" }), `${j}.png`));
      batches.push((await classify(worker, form)).ms);
    }
    rows.push({ case: `warm, multipart of ${BATCH} PNGs (${batches.length} requests)`, p50: fmt(quantile(batches, 0.5)), p99: fmt(quantile(batches, 0.99)), serverInferenceMs: "-", perImageMs: fmt(quantile(batches, 0.5) / BATCH) });
  } finally {
    await worker.dispose();
  }

  const table = [
    "| case | p50 ms | p99 ms | server inference p50 ms | per image ms |",
    "|---|---|---|---|---|",
    ...rows.map((r) => `| ${r.case} | ${r.p50} | ${r.p99} | ${r.serverInferenceMs} | ${r.perImageMs ?? "-"} |`),
  ].join("\n");
  console.log(`\nPOST /classify, lenet, client-measured over loopback HTTP\n\n${table}\n`);
  const out = join(dirname(BUILD_DIR), "bench-classify.json");
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ measuredAt: new Date().toISOString(), rows }, null, 2));
});
