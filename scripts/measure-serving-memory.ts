/**
 * Measure what serving a model folder costs in memory, with the same onnxruntime-web WASM build
 * the Worker runs, and record it as the manifest's `serving` section:
 *
 *   node scripts/measure-serving-memory.ts models/resnet50-int8/1 [more folders...]
 *
 * ORT's heap only grows, so each candidate run batch (8, 4, 2, 1, or a graph's fixed batch) is measured in a fresh
 * process: the heap after creating the session (plus the artifact's bytes, which the isolate
 * holds while ORT copies them in) and after one run. The largest batch within
 * MODEL_MEMORY_BUDGET_BYTES is the model's run batch; a model over the budget even at batch 1
 * is recorded as not servable, and the Worker refuses it.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { MODEL_MEMORY_BUDGET_BYTES, servingSection as servingFrom, type HeapMeasurement } from "../workers/inference/memory-budget.ts";
import { SESSION_OPTIONS, findMemory } from "../workers/inference/wasm-heap.ts";

async function measureInThisProcess(dir: string, batch: number): Promise<HeapMeasurement> {
  let memory: WebAssembly.Memory | undefined;
  const instantiate = WebAssembly.instantiate.bind(WebAssembly) as (...args: unknown[]) => Promise<{ instance?: WebAssembly.Instance }>;
  (WebAssembly as unknown as { instantiate: unknown }).instantiate = async (source: unknown, imports?: WebAssembly.Imports) => {
    const result = await instantiate(source, imports);
    memory = findMemory(imports ?? {}, (result.instance ?? (result as unknown as WebAssembly.Instance)).exports);
    return result;
  };
  const ort = await import("onnxruntime-web/wasm");
  ort.env.wasm.numThreads = 1;
  const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
  const bytes = new Uint8Array(readFileSync(join(dir, manifest.artifact.file)));
  const session = await ort.InferenceSession.create(bytes, SESSION_OPTIONS);
  const heapAfterCreate = memory!.buffer.byteLength;
  const { channels, height, width } = manifest.input;
  const input = new ort.Tensor("float32", new Float32Array(batch * channels * height * width).fill(0.5), [batch, channels, height, width]);
  await session.run({ [manifest.artifact.inputName]: input });
  return { batch, artifactBytes: bytes.byteLength, heapAfterCreate, heapAfterRun: memory!.buffer.byteLength };
}

function measure(dir: string, batch: number): HeapMeasurement {
  const out = execFileSync(process.execPath, [import.meta.filename, "--child", dir, String(batch)], { encoding: "utf8" });
  return JSON.parse(out.trim().split("\n").at(-1)!) as HeapMeasurement;
}

/**
 * The `serving` section for a model folder, each candidate batch measured in a fresh process.
 *
 * @example
 * await servingSection("models/lenet/1"); // { runBatch: 8, memoryBytes: 21911359, servable: true, ... }
 */
export function servingSection(dir: string) {
  // A graph whose batch dimension is fixed (an imported model's input.fixedBatch) runs only that batch.
  const { fixedBatch } = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")).input as { fixedBatch?: number };
  const ortVersion = JSON.parse(readFileSync(resolve(import.meta.dirname, "../node_modules/onnxruntime-web/package.json"), "utf8")).version;
  return servingFrom((batch) => measure(dir, batch), fixedBatch, `onnxruntime-web ${ortVersion} (WASM, 1 thread) in Node ${process.versions.node}`);
}

if (process.argv[2] === "--child") {
  console.log(JSON.stringify(await measureInThisProcess(process.argv[3]!, Number(process.argv[4]))));
} else if (import.meta.main) {
  for (const dir of process.argv.slice(2)) {
    const path = join(dir, "manifest.json");
    const manifest = JSON.parse(readFileSync(path, "utf8"));
    manifest.serving = await servingSection(dir);
    writeFileSync(path, JSON.stringify(manifest, null, 2) + "\n");
    const { servable, memoryBytes, runBatch } = manifest.serving;
    console.log(`${manifest.id}: ${(memoryBytes / 2 ** 20).toFixed(1)} MiB at run batch ${runBatch}, ` +
      `${servable ? "servable" : "NOT servable"} within ${MODEL_MEMORY_BUDGET_BYTES / 2 ** 20} MiB`);
  }
}
