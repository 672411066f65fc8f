/**
 * Latency of every served model: POST /classify against the built Worker in workerd (Miniflare)
 * over loopback HTTP, beside the bare model in onnxruntime-node (native, 1 thread) on the same
 * machine. Prints a markdown table and writes test/.build/bench-classify.json. Run: npm run bench
 *
 * cold: the first request to a freshly started Worker (ORT runtime start, artifact fetch and
 * check, session creation); warm: sequential one-image requests to a Worker that has served one.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import * as ortNode from "onnxruntime-node";
import { it } from "vitest";
import { discoverModels, type RepositoryModel } from "../../scripts/model-repository.ts";
import { cifarValidation } from "../support/cifar";
import { digit, encodeGray, mnistTest } from "../support/mnist";
import { BUILD_DIR } from "../support/paths";
import { quantile } from "../../scripts/stats.ts";
import { startWorker, type RunningWorker } from "../support/worker";

const COLD_STARTS = 3;
const WARM_REQUESTS = 200;
const NATIVE_RUNS = 200;

interface Upload {
  bytes: Uint8Array<ArrayBuffer>;
  type: string;
}

async function uploadsFor(model: RepositoryModel): Promise<Upload[]> {
  if (model.manifest.dataset === "MNIST") {
    const digits = mnistTest(WARM_REQUESTS);
    return Promise.all(Array.from({ length: WARM_REQUESTS }, async (_, i) => ({ bytes: await encodeGray(digit(digits, i), 28, 28, "png"), type: "image/png" })));
  }
  return cifarValidation(WARM_REQUESTS / 10).map((file) => ({ bytes: file.bytes, type: "image/jpeg" }));
}

/** Client-side latency of one request, and the model-run time the Worker reports in it. */
async function classify(worker: RunningWorker, id: string, upload: Upload): Promise<{ ms: number; inferenceMs: number }> {
  const start = performance.now();
  const res = await worker.fetch(`/v1/models/${id}/classify`, { method: "POST", body: upload.bytes, headers: { "content-type": upload.type } });
  const body = (await res.json()) as { timing: { inferenceMs: number } };
  if (res.status !== 200) throw new Error(`${id}: status ${res.status} ${JSON.stringify(body)}`);
  return { ms: performance.now() - start, inferenceMs: body.timing.inferenceMs };
}

async function nativePerImage(model: RepositoryModel): Promise<number> {
  const session = await ortNode.InferenceSession.create(readFileSync(model.artifactPath), { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const { channels, height, width } = model.manifest.input;
  const input = new ortNode.Tensor("float32", new Float32Array(channels * height * width).fill(0.5), [1, channels, height, width]);
  const times: number[] = [];
  for (let i = 0; i < NATIVE_RUNS + 10; i++) {
    const start = performance.now();
    await session.run({ [model.manifest.artifact.inputName]: input });
    if (i >= 10) times.push(performance.now() - start);
  }
  return quantile(times, 0.5);
}

it("classify latency per model", async () => {
  const rows: Record<string, string | number>[] = [];
  for (const model of discoverModels().filter((m) => m.manifest.serving.servable)) {
    const uploads = await uploadsFor(model);
    const cold: number[] = [];
    for (let i = 0; i < COLD_STARTS; i++) {
      const worker = await startWorker();
      try {
        cold.push((await classify(worker, model.id, uploads[0]!)).ms);
      } finally {
        await worker.dispose();
      }
    }
    const worker = await startWorker();
    const warm: number[] = [];
    const inference: number[] = [];
    try {
      await classify(worker, model.id, uploads[0]!);
      for (const upload of uploads) {
        const { ms, inferenceMs } = await classify(worker, model.id, upload);
        warm.push(ms);
        inference.push(inferenceMs);
      }
    } finally {
      await worker.dispose();
    }
    rows.push({
      model: model.id,
      source: model.source.kind,
      coldP50: quantile(cold, 0.5),
      warmP50: quantile(warm, 0.5),
      warmP99: quantile(warm, 0.99),
      workerInferenceP50: quantile(inference, 0.5),
      nativeP50: await nativePerImage(model),
    });
  }

  const ms = (v: string | number) => (typeof v === "number" ? v.toFixed(2) : v);
  const table = [
    "| model | artifact | cold /classify ms (p50 of 3) | warm /classify p50 ms | warm p99 ms | model run in the Worker, p50 ms | onnxruntime-node 1 thread, model only, p50 ms |",
    "|---|---|---|---|---|---|---|",
    ...rows.map((r) => `| ${r.model} | ${r.source} | ${ms(r.coldP50!)} | ${ms(r.warmP50!)} | ${ms(r.warmP99!)} | ${ms(r.workerInferenceP50!)} | ${ms(r.nativeP50!)} |`),
  ].join("\n");
  console.log(`\nPOST /classify, one image per request, client-measured over loopback HTTP (${WARM_REQUESTS} warm requests per model)\n\n${table}\n`);
  const out = `${dirname(BUILD_DIR)}/bench-classify.json`;
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ measuredAt: new Date().toISOString(), rows }, null, 2));
}, 1_800_000);
