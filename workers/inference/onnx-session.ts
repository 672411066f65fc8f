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
import type { ServedModel } from "../models/manifest";

const MARKER = new TextEncoder().encode("cnn-edge:precompiled:ort-wasm-simd-threaded.wasm");

function isMarker(source: unknown): boolean {
  if (!ArrayBuffer.isView(source) && !(source instanceof ArrayBuffer)) return false;
  const bytes = ArrayBuffer.isView(source) ? new Uint8Array(source.buffer, source.byteOffset, source.byteLength) : new Uint8Array(source);
  return bytes.length === MARKER.length && bytes.every((b, i) => b === MARKER[i]);
}

type Instantiate = (source: unknown, imports?: WebAssembly.Imports) => Promise<unknown>;
const instantiate = WebAssembly.instantiate.bind(WebAssembly) as Instantiate;

(WebAssembly as { instantiate: Instantiate }).instantiate = (source, imports) =>
  isMarker(source)
    ? instantiate(ortWasm, imports).then((instance) => ({ instance, module: ortWasm }))
    : instantiate(source, imports);

ort.env.wasm.wasmBinary = MARKER;
ort.env.wasm.numThreads = 1; // workerd has no Web Workers to run ORT's thread pool on
ort.env.wasm.proxy = false;
ort.env.logLevel = "error";

export type OutputName = "embedding" | "logits";

export interface InferenceResult {
  /** Row-major [batch, size] per requested output. */
  outputs: Partial<Record<OutputName, Float32Array>>;
  sizes: Partial<Record<OutputName, number>>;
}

/**
 * A model's ORT session. Runs are queued one at a time: ORT's WASM backend shares one heap
 * and one thread per isolate, so overlapping runs would only interleave, not overlap.
 */
export class ModelSession {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly session: ort.InferenceSession,
    private readonly model: ServedModel,
  ) {}

  /**
   * Run a batch of CHW inputs, returning only the outputs asked for.
   *
   * @example
   * const { outputs } = await session.run(chw, 1, ["logits"]);
   */
  run(batch: Float32Array, count: number, names: readonly OutputName[]): Promise<InferenceResult> {
    const result = this.queue.then(() => this.runNow(batch, count, names));
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async runNow(batch: Float32Array, count: number, names: readonly OutputName[]): Promise<InferenceResult> {
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

const sessions = new Map<string, Promise<ModelSession>>();

/**
 * The isolate's session for a model, created on first use and then reused. Creation is
 * per model, so one model's cold start never waits on another's; a failed creation is
 * forgotten so the next request retries it.
 *
 * @example
 * const session = await sessionFor(getModel("lenet"));
 */
export function sessionFor(model: ServedModel): Promise<ModelSession> {
  const key = `${model.manifest.id}@${model.manifest.version}`;
  let session = sessions.get(key);
  if (!session) {
    session = ort.InferenceSession.create(new Uint8Array(model.onnx), {
      executionProviders: ["wasm"],
      graphOptimizationLevel: "all",
    }).then((created) => new ModelSession(created, model));
    sessions.set(key, session);
    session.catch(() => sessions.delete(key));
  }
  return session;
}

/** Whether a model's session already exists in this isolate (a warm request). */
export function isWarm(model: ServedModel): boolean {
  return sessions.has(`${model.manifest.id}@${model.manifest.version}`);
}
