/**
 * How much of a Worker isolate's memory a model may take. The model repository's scripts
 * measure each model against this (manifest `serving`), and the Worker refuses models over it
 * and evicts idle sessions to keep the models it holds within it.
 */

/** A Cloudflare Worker isolate's memory limit. */
export const ISOLATE_MEMORY_BYTES = 128 * 1024 * 1024;

/**
 * What the models resident in one isolate may use together (onnxruntime's WASM heap, and the
 * artifact's bytes while a session loads). The other 32 MiB are left to JavaScript, request
 * bodies and decoded images.
 */
export const MODEL_MEMORY_BUDGET_BYTES = 96 * 1024 * 1024;

/** Largest batch one ORT run is measured and served at; a model whose activations would not fit runs smaller ones. */
export const MAX_RUN_BATCH = 8;

/** What one measurement of a model saw: the heap after creating its session, and after running `batch` images. */
export interface HeapMeasurement {
  batch: number;
  artifactBytes: number;
  heapAfterCreate: number;
  heapAfterRun: number;
}

/** The manifest's `serving` section (workers/models/manifest.ts). */
export interface ServingSection {
  /** Largest batch per ORT run whose memory fits the budget. */
  runBatch: number;
  /** Peak isolate memory for this model: max(artifact + ORT heap after loading, ORT heap after a run). */
  memoryBytes: number;
  heapBytes: number;
  loadBytes: number;
  budgetBytes: number;
  /** False when memoryBytes exceeds the budget even at batch 1: the Worker refuses the model. */
  servable: boolean;
  measuredWith: string;
}

/**
 * The `serving` section from measurements, each in a fresh runtime: the largest run batch (8,
 * 4, 2, 1, or a graph's fixed batch) whose peak, loading (artifact + heap) or running, fits
 * MODEL_MEMORY_BUDGET_BYTES; a model over it even at batch 1 is not servable. The same rule
 * for the repository's models (scripts/measure-serving-memory.ts, in Node) and for models
 * registered through the API (workers/registry, in the Worker).
 *
 * @example
 * const serving = await servingSection((batch) => measureInFreshProcess(dir, batch), undefined, "onnxruntime-web 1.30.0 in Node 22");
 */
export async function servingSection(
  measure: (batch: number) => HeapMeasurement | Promise<HeapMeasurement>,
  fixedBatch: number | undefined,
  measuredWith: string,
): Promise<ServingSection> {
  const peakBytes = (m: HeapMeasurement) => Math.max(m.artifactBytes + m.heapAfterCreate, m.heapAfterRun);
  let m = await measure(fixedBatch ?? MAX_RUN_BATCH);
  while (peakBytes(m) > MODEL_MEMORY_BUDGET_BYTES && m.batch > 1 && fixedBatch === undefined) m = await measure(m.batch / 2);
  const peak = peakBytes(m);
  return {
    runBatch: m.batch,
    memoryBytes: peak,
    heapBytes: m.heapAfterRun,
    loadBytes: m.artifactBytes + m.heapAfterCreate,
    budgetBytes: MODEL_MEMORY_BUDGET_BYTES,
    servable: peak <= MODEL_MEMORY_BUDGET_BYTES,
    measuredWith,
  };
}
