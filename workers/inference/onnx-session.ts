/**
 * onnxruntime-web (WASM, SIMD, one thread) inside workerd, and one inference session per model
 * per isolate.
 *
 * workerd forbids compiling WASM from bytes, and ORT would otherwise fetch and compile its
 * 14 MB runtime at start-up. So the runtime is imported as a precompiled module (wrangler's
 * CompiledWasm rule), ORT is given a marker in place of the wasm bytes, and the one
 * `WebAssembly.instantiate(marker, imports)` call ORT then makes is answered with the
 * precompiled module.
 */
import * as ort from "onnxruntime-web/wasm";
import ortWasm from "onnxruntime-web/ort-wasm-simd-threaded.wasm";
import { loadArtifact } from "../models/artifacts";
import type { OutputName, ServedModel } from "../models/manifest";
import { ModelEvictedError } from "../problems/problems";
import { DynamicBatcher, type BatchingPolicy, type InferenceResult } from "./dynamic-batcher";
import { MODEL_MEMORY_BUDGET_BYTES } from "./memory-budget";
import { SESSION_OPTIONS, findMemory } from "./wasm-heap";

const MARKER = new TextEncoder().encode("cnn-edge:precompiled:ort-wasm-simd-threaded.wasm");

function isMarker(source: unknown): boolean {
  if (!ArrayBuffer.isView(source) && !(source instanceof ArrayBuffer)) return false;
  const bytes = ArrayBuffer.isView(source) ? new Uint8Array(source.buffer, source.byteOffset, source.byteLength) : new Uint8Array(source);
  return bytes.length === MARKER.length && bytes.every((b, i) => b === MARKER[i]);
}

type Instantiate = (source: unknown, imports?: WebAssembly.Imports) => Promise<unknown>;
const instantiate = WebAssembly.instantiate.bind(WebAssembly) as Instantiate;

// ORT's linear memory: its heap, where models, weights and activations live.
let ortMemory: WebAssembly.Memory | undefined;

// Instantiated synchronously, so that ORT's start-up needs no event-loop turn and can complete
// while the isolate starts (see warmUpRuntime).
(WebAssembly as { instantiate: Instantiate }).instantiate = (source, imports) => {
  if (!isMarker(source)) return instantiate(source, imports);
  const instance = new WebAssembly.Instance(ortWasm, imports);
  ortMemory = findMemory(imports ?? {}, instance.exports);
  return Promise.resolve({ instance, module: ortWasm });
};

/**
 * Bytes of ORT's WASM heap in this isolate (0 before the first session). Linear memory only
 * grows, so this is the high-water mark of every model and run so far.
 */
export function onnxRuntimeHeapBytes(): number {
  return ortMemory?.buffer.byteLength ?? 0;
}

ort.env.wasm.wasmBinary = MARKER;
ort.env.wasm.numThreads = 1; // workerd has no Web Workers to run ORT's thread pool on
ort.env.wasm.proxy = false;
ort.env.logLevel = "error";

/**
 * A model's ORT session. Runs are queued one at a time: ORT's WASM backend shares one heap
 * and one thread per isolate, so overlapping runs would only interleave, not overlap. Its
 * DynamicBatcher is what gives it work.
 */
export class ModelSession {
  private queue: Promise<unknown> = Promise.resolve();
  private released = false;

  constructor(
    private readonly session: ort.InferenceSession,
    private readonly model: ServedModel,
  ) {}

  /**
   * Run a batch of CHW inputs (in runs of at most the manifest's `serving.runBatch`, the batch
   * its memory was measured at), returning only the outputs asked for.
   *
   * @throws ModelEvictedError when the session was released to make room for another model
   * @example
   * const { outputs } = await session.run(chw, 1, ["logits"]);
   */
  run(batch: Float32Array, count: number, names: readonly OutputName[]): Promise<InferenceResult> {
    if (this.released) return Promise.reject(new ModelEvictedError(this.model.manifest.id));
    const result = this.queue.then(() => this.runChunked(batch, count, names));
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Free the session's memory in ORT's heap once the runs already queued have finished. */
  release(): Promise<void> {
    this.released = true;
    this.queue = this.queue.then(() => this.session.release());
    return this.queue.then(() => undefined);
  }

  private async runChunked(batch: Float32Array, count: number, names: readonly OutputName[]): Promise<InferenceResult> {
    const size = batch.length / count;
    const runBatch = this.model.manifest.serving.runBatch;
    const result: InferenceResult = { outputs: {}, sizes: {} };
    for (let start = 0; start < count; start += runBatch) {
      const n = Math.min(runBatch, count - start);
      const chunk = await this.runOnce(batch.subarray(start * size, (start + n) * size), n, names);
      for (const name of names) {
        const width = chunk.sizes[name]!;
        result.sizes[name] = width;
        (result.outputs[name] ??= new Float32Array(count * width)).set(chunk.outputs[name]!, start * width);
      }
    }
    return result;
  }

  private async runOnce(batch: Float32Array, count: number, names: readonly OutputName[]): Promise<InferenceResult> {
    const { input, artifact } = this.model.manifest;
    const feeds = { [artifact.inputName]: new ort.Tensor("float32", batch, [count, input.channels, input.height, input.width]) };
    const fetched = await this.session.run(feeds, names.map((name) => artifact.outputs[name]));
    const result: InferenceResult = { outputs: {}, sizes: {} };
    for (const name of names) {
      const tensor = fetched[artifact.outputs[name]]!;
      result.outputs[name] = tensor.data as Float32Array;
      result.sizes[name] = tensor.dims[1]!;
      tensor.dispose();
    }
    return result;
  }
}

/** What a session's creation took: fetching and checking the artifact, then ORT building the session. */
export interface SessionStartup {
  loadMs: number;
  createMs: number;
}

interface Resident {
  session: Promise<ModelSession>;
  startup?: SessionStartup;
  batcher: DynamicBatcher;
  memoryBytes: number;
  lastUsed: number;
}

// Sessions resident in this isolate, by model@version. Together they stay within
// MODEL_MEMORY_BUDGET_BYTES: ORT's heap never shrinks, but it reuses what a released session
// freed, so the heap's high-water mark follows the largest set of models resident at once.
const sessions = new Map<string, Resident>();
let useCounter = 0; // Date.now() does not advance within a Workers request; a counter orders uses

const keyOf = (model: ServedModel) => `${model.manifest.id}@${model.manifest.version}`;

const leastRecentlyUsedFirst = () => [...sessions.entries()].sort(([, a], [, b]) => a.lastUsed - b.lastUsed);

/** Release the least recently used sessions until `bytes` more fit the budget. */
function makeRoom(bytes: number): void {
  let used = [...sessions.values()].reduce((sum, resident) => sum + resident.memoryBytes, 0);
  for (const [key, resident] of leastRecentlyUsedFirst()) {
    if (used + bytes <= MODEL_MEMORY_BUDGET_BYTES) break;
    sessions.delete(key);
    used -= resident.memoryBytes;
    resident.session.then((session) => session.release()).catch(() => undefined);
  }
}

/**
 * The batcher in front of the isolate's session for a model. The session is created on first
 * use (artifact fetched and verified, then compiled by ORT) and then reused; requests that
 * arrive meanwhile queue in the batcher. Creation is per model, so one model's cold start
 * never waits on another's; a failed creation is forgotten so the next request retries it.
 * Creating one releases the least recently used others when the models would no longer fit
 * the isolate's model memory budget together. The policy is the one of the session's first
 * request.
 *
 * @example
 * const slot = batcherFor(getModel("lenet"), env.MODELS, { maxBatch: 32, windowMs: 2 }, (p) => ctx.waitUntil(p)).expect();
 */
export function batcherFor(
  model: ServedModel,
  bucket: R2Bucket | undefined,
  policy: BatchingPolicy,
  waitUntil: (promise: Promise<unknown>) => void,
): DynamicBatcher {
  const key = keyOf(model);
  let resident = sessions.get(key);
  if (!resident) {
    makeRoom(model.manifest.serving.memoryBytes);
    const started = performance.now();
    let loaded = started;
    const session = loadArtifact(model, bucket)
      .then((bytes) => {
        loaded = performance.now();
        return ort.InferenceSession.create(bytes, SESSION_OPTIONS);
      })
      .then((created) => {
        resident!.startup = { loadMs: loaded - started, createMs: performance.now() - loaded };
        return new ModelSession(created, model);
      });
    waitUntil(session.catch(() => undefined)); // every request for the model waits on it, whoever started it
    const batcher = new DynamicBatcher((input, count, names) => session.then((s) => s.run(input, count, names)), policy);
    resident = { session, batcher, memoryBytes: model.manifest.serving.memoryBytes, lastUsed: 0 };
    sessions.set(key, resident);
    session.catch(() => sessions.get(key)?.session === session && sessions.delete(key));
  }
  resident.lastUsed = ++useCounter;
  return resident.batcher;
}

/** How the creation of a model's resident session went, once it is created. */
export function sessionStartup(model: ServedModel): SessionStartup | undefined {
  return sessions.get(keyOf(model))?.startup;
}

/** Whether a model's session already exists in this isolate (a warm request). */
export function isWarm(model: ServedModel): boolean {
  return sessions.has(keyOf(model));
}

/** Ids (model@version) of the sessions resident in this isolate, least recently used first. */
export function residentModels(): string[] {
  return leastRecentlyUsedFirst().map(([key]) => key);
}

/**
 * Start ORT's runtime (its WASM instance, about 160 ms on this machine) and compile its common
 * kernels by running a bundled model once and releasing it. Called from the Worker's global
 * scope, this happens while the isolate starts (on Cloudflare, during the client's TLS
 * handshake) instead of in the first request; it needs no I/O and no timers, which global scope
 * does not allow. If it cannot finish there, the first request finishes it.
 *
 * @example
 * warmUpRuntime(smallestBundledModel());
 */
export function warmUpRuntime(model: ServedModel): Promise<void> {
  if (model.source.kind !== "bundle") return Promise.resolve();
  const { manifest } = model;
  const { channels, height, width } = manifest.input;
  warmUp = "starting";
  return ort.InferenceSession.create(new Uint8Array(model.source.bytes), SESSION_OPTIONS)
    .then(async (session) => {
      const input = new ort.Tensor("float32", new Float32Array(channels * height * width), [1, channels, height, width]);
      await session.run({ [manifest.artifact.inputName]: input });
      await session.release();
      warmUp = "done";
    })
    .catch(() => {
      warmUp = "failed"; // the first request starts the runtime instead
    });
}

let warmUp: "not started" | "starting" | "done" | "failed" = "not started";

/** Where warmUpRuntime stands: "done" at a request's start means the isolate started ORT before it. */
export function runtimeWarmUp(): typeof warmUp {
  return warmUp;
}
