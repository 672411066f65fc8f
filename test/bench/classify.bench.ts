/**
 * How fast every served model classifies, side by side (npm run bench):
 *
 * 1. Engines: milliseconds per image at batch 1, 8 and 32 of onnxruntime-web inside workerd
 *    (the model-run time the Worker reports for a request of that many images, batching off),
 *    onnxruntime-web in Node, and native onnxruntime-node with 1 thread and all threads; each
 *    as effective GFLOP/s (scripts/count_flops.py) and as a multiple of native 1-thread.
 * 2. HTTP: one-image POST /v1/models/{id}/classify requests kept in flight by autocannon at
 *    concurrency 1, 8 and 32, with dynamic batching on and off: images/s, p50/p99, the mean
 *    batch the Worker ran, and images/s over the raw batch-32 rate of the same isolate.
 * 3. Cold start: a freshly started Worker's first /classify (median of 3); memory: workerd's
 *    peak RSS over each model's runs and ORT's WASM heap (GET /healthz).
 * 4. Decoding: a 12-megapixel JPEG photo through /classify, time and workerd's peak RSS.
 *
 * Every figure is one pass of the graph per image (flip_average=false for the CIFAR-10 models),
 * so HTTP images/s and the raw rate count the same work. BENCH_MODELS (comma-separated ids)
 * limits the run to some models.
 *
 * Prints markdown tables and writes test/.build/bench-classify.{json,md}. The load generator
 * and workerd share this machine's cores: ratios carry over between machines, absolute
 * figures less so.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { it } from "vitest";
import { twelveMegapixelJpeg } from "../../scripts/loadtest/payloads.ts";
import { discoverModels, type RepositoryModel } from "../../scripts/model-repository.ts";
import { quantile } from "../../scripts/stats.ts";
import { BUILD_DIR } from "../support/paths";
import { startWorker, type RunningWorker } from "../support/worker";
import { ENGINES, engineMsPerImage, flopsPerImage } from "./engines";
import { loadClassify, type LoadResult, type Upload } from "./http-load";
import { graphOnlyQuery, postImages as post, uploadsFor, workerMsPerImage } from "./worker-timing";
import { workerdPeakBytes } from "./workerd-memory";

const BATCHES = [1, 8, 32];
const CONCURRENCY = [1, 8, 32];
const COLD_STARTS = 3;
const WORKER_ENGINE = "ort-web in workerd";
const NATIVE = "ort-node 1 thread";

async function healthzHeapBytes(worker: RunningWorker): Promise<number> {
  const health = (await (await worker.fetch("/healthz")).json()) as { memory: { onnxRuntimeHeapBytes: number } };
  return health.memory.onnxRuntimeHeapBytes;
}

/** A 4000x3000 JPEG photo-like image (smooth gradients and noise), as a phone would send. */
async function twelveMegapixelUpload(): Promise<Upload> {
  return { bytes: new Uint8Array(await twelveMegapixelJpeg()), type: "image/jpeg" };
}

interface EngineRow {
  model: string;
  batch: number;
  msPerImage: Record<string, number>;
  gflops: Record<string, number>;
}
interface HttpRow extends LoadResult {
  model: string;
  batching: "on" | "off";
  ofRawRate: number;
}
interface ModelRow {
  model: string;
  coldStartMs: number;
  workerdPeakBytes: number;
  ortHeapBytes: number;
}

const fixed = (v: number, digits = 2) => v.toFixed(digits);
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

it("classify: engines, HTTP with and without dynamic batching, cold start, memory, decoding", async () => {
  const only = process.env.BENCH_MODELS?.split(",");
  const models = discoverModels().filter((m) => m.manifest.serving.servable && (!only || only.includes(m.id)));
  const flops = flopsPerImage(models);
  const engines: EngineRow[] = [];
  const http: HttpRow[] = [];
  const perModel: ModelRow[] = [];

  for (const model of models) {
    const uploads = await uploadsFor(model);
    console.log(`bench: ${model.id}`);

    const cold: number[] = [];
    for (let i = 0; i < COLD_STARTS; i++) {
      const worker = await startWorker();
      try {
        cold.push((await post(worker, model.id, uploads.slice(0, 1))).ms);
      } finally {
        await worker.dispose();
      }
    }

    // Batching off: the engine figures inside workerd, then HTTP without batching.
    const unbatched = await startWorker({ bindings: { DYNAMIC_BATCHING: "off" } });
    const rows: EngineRow[] = [];
    let seconds = 5;
    try {
      for (const batch of BATCHES) {
        const msPerImage: Record<string, number> = { [WORKER_ENGINE]: await workerMsPerImage(unbatched, model, uploads, batch, graphOnlyQuery(model)) };
        for (const engine of ENGINES) msPerImage[engine] = await engineMsPerImage(engine, model, batch);
        const gflops = Object.fromEntries(Object.entries(msPerImage).map(([engine, ms]) => [engine, flops[model.id]! / ms / 1e6]));
        rows.push({ model: model.id, batch, msPerImage, gflops });
      }
      // Long enough for 32 connections to get three answers each even one image at a time.
      seconds = Math.min(20, Math.max(5, Math.ceil((3 * 32 * rows[0]!.msPerImage[WORKER_ENGINE]!) / 1000)));
      engines.push(...rows);
      const rawRate = 1000 / rows.at(-1)!.msPerImage[WORKER_ENGINE]!;
      for (const connections of [1, 32]) {
        const result = await loadClassify(unbatched.url, model.id, uploads, connections, seconds, graphOnlyQuery(model));
        http.push({ model: model.id, batching: "off", ...result, ofRawRate: result.imagesPerSecond / rawRate });
      }
    } finally {
      await unbatched.dispose();
    }

    const batched = await startWorker();
    try {
      const rawRate = 1000 / rows.at(-1)!.msPerImage[WORKER_ENGINE]!;
      await loadClassify(batched.url, model.id, uploads, 4, 1, graphOnlyQuery(model)); // warm
      for (const connections of CONCURRENCY) {
        const result = await loadClassify(batched.url, model.id, uploads, connections, seconds, graphOnlyQuery(model));
        http.push({ model: model.id, batching: "on", ...result, ofRawRate: result.imagesPerSecond / rawRate });
      }
      perModel.push({ model: model.id, coldStartMs: quantile(cold, 0.5), workerdPeakBytes: workerdPeakBytes(), ortHeapBytes: await healthzHeapBytes(batched) });
    } finally {
      await batched.dispose();
    }
  }

  const photo = await twelveMegapixelUpload();
  const decodeWorker = await startWorker();
  let decoding: { model: string; status: number; ms: number; workerdPeakBytes: number; detail?: string };
  try {
    const res = await decodeWorker.fetch("/v1/models/resnet-edge/classify", { method: "POST", body: photo.bytes, headers: { "content-type": photo.type } });
    await res.arrayBuffer(); // the first request pays for the cold session
    const start = performance.now();
    const again = await decodeWorker.fetch("/v1/models/resnet-edge/classify", { method: "POST", body: photo.bytes, headers: { "content-type": photo.type } });
    const body = (await again.json()) as { detail?: string };
    decoding = { model: "resnet-edge", status: again.status, ms: performance.now() - start, workerdPeakBytes: workerdPeakBytes(), ...(body.detail ? { detail: body.detail } : {}) };
  } finally {
    await decodeWorker.dispose();
  }

  const allEngines = [WORKER_ENGINE, ...ENGINES];
  const engineTable = [
    `| model | batch | ${allEngines.map((e) => `${e} ms/img (GFLOP/s)`).join(" | ")} | workerd ÷ native 1 thread | web in Node ÷ native 1 thread |`,
    `|---|---:|${allEngines.map(() => "---:").join("|")}|---:|---:|`,
    ...engines.map(
      (r) =>
        `| ${r.model} | ${r.batch} | ${allEngines.map((e) => `${fixed(r.msPerImage[e]!, 3)} (${fixed(r.gflops[e]!, 1)})`).join(" | ")} | ` +
        `${fixed(r.msPerImage[WORKER_ENGINE]! / r.msPerImage[NATIVE]!, 1)}x | ${fixed(r.msPerImage["ort-web in Node"]! / r.msPerImage[NATIVE]!, 1)}x |`,
    ),
  ].join("\n");
  const httpTable = [
    "| model | batching | concurrency | images/s | p50 ms | p99 ms | mean batch | ÷ raw batch-32 rate | errors |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ...http.map((r) => `| ${r.model} | ${r.batching} | ${r.connections} | ${fixed(r.imagesPerSecond, 1)} | ${r.p50Ms} | ${r.p99Ms} | ${fixed(r.meanBatch, 1)} | ${fixed(r.ofRawRate)} | ${r.errors} |`),
  ].join("\n");
  const modelTable = [
    "| model | cold start: first /classify ms (p50 of 3) | workerd peak RSS MiB | ORT WASM heap MiB |",
    "|---|---:|---:|---:|",
    ...perModel.map((r) => `| ${r.model} | ${fixed(r.coldStartMs, 0)} | ${mib(r.workerdPeakBytes)} | ${mib(r.ortHeapBytes)} |`),
  ].join("\n");
  const decodeLine = `12-megapixel JPEG (4000x3000, ${mib(photo.bytes.byteLength)} MiB) to ${decoding.model}: status ${decoding.status}, ${fixed(decoding.ms, 0)} ms warm, workerd peak RSS ${mib(decoding.workerdPeakBytes)} MiB${decoding.detail ? ` (${decoding.detail})` : ""}`;
  const markdown = `### Engines (ms per image, effective GFLOP/s)\n\n${engineTable}\n\n### POST /classify over HTTP\n\n${httpTable}\n\n### Cold start and memory\n\n${modelTable}\n\n### Decoding\n\n${decodeLine}\n`;
  console.log(`\n${markdown}`);

  const out = `${dirname(BUILD_DIR)}/bench-classify`;
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(`${out}.md`, markdown);
  writeFileSync(`${out}.json`, JSON.stringify({ measuredAt: new Date().toISOString(), flops, engines, http, models: perModel, decoding }, null, 2));
}, 3_600_000);
