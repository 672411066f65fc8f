/**
 * One inference engine for every host: the Worker (workerd has no WebGPU, so WASM SIMD), the
 * playground page in a browser, and the Node GPU host (WebGPU through Dawn). Each host loads
 * onnxruntime-web its own way and hands the result here; everything after that — which
 * execution provider runs a model, how a batch is fed and read back, one run at a time per
 * session — is this one module.
 *
 * Provider choice: "auto" takes WebGPU when `navigator.gpu` yields a hardware adapter and the
 * model runs on it (a session is created and run once on WebGPU; any failure falls back to
 * WASM), and WASM otherwise. A fallback adapter (WebGPU implemented on the CPU, such as
 * SwiftShader) counts as none for "auto": WASM SIMD ran every model here 7-180x faster than
 * SwiftShader did (npm run bench:webgpu). "webgpu" or "wasm" force one, for tests and comparisons.
 */
import type * as Ort from "onnxruntime-web";
import { waitForAny } from "../inference/shared-waits";
import { SESSION_OPTIONS } from "../inference/wasm-heap";
import type { ModelManifest, OutputName } from "../models/manifest";
import { ModelEvictedError, ProviderUnavailableError } from "../problems/problems";

/** onnxruntime-web as a host loaded it: `onnxruntime-web/wasm` in workerd, `/webgpu` elsewhere. */
export type OrtRuntime = typeof Ort;

export const EXECUTION_PROVIDERS = ["webgpu", "wasm"] as const;
export type ExecutionProvider = (typeof EXECUTION_PROVIDERS)[number];
export type ProviderPreference = ExecutionProvider | "auto";
export const PROVIDER_PREFERENCES: readonly ProviderPreference[] = ["auto", ...EXECUTION_PROVIDERS];

/** Outputs of a model run. */
export interface InferenceResult {
  /** Row-major [batch, size] per requested output. */
  outputs: Partial<Record<OutputName, Float32Array>>;
  sizes: Partial<Record<OutputName, number>>;
}

/** What a host gives the engine. */
export interface EngineHost {
  /** Where it runs, as reported in /healthz and by the playground: "workerd", "browser", "node". */
  name: string;
  ort: OrtRuntime;
  /** `navigator.gpu`, where the host has it. */
  gpu?: GPU;
  /** Bytes of ORT's WASM heap, where the host can see it. */
  heapBytes?: () => number;
  /** ORT's WASM build precompiled, where the host can start runtimes of its own beside the serving one (workers/registry/fresh-runtime.ts). */
  runtimeModule?: WebAssembly.Module;
}

/** Whether WebGPU can run models here, and if not, why not. */
export type WebGpuStatus =
  | { available: true; adapter: string; /** A CPU implementation: "auto" passes it over. */ fallback: boolean }
  | { available: false; reason: string };

/**
 * Loads models onto the best execution provider the host has.
 *
 * @example
 * const engine = new InferenceEngine({ name: "browser", ort, gpu: navigator.gpu });
 * const session = await engine.createSession(bytes, manifest, "auto");
 * const { outputs } = await session.run(chw, 1, ["logits"]);
 * console.log(session.provider); // "webgpu" or "wasm"
 */
export class InferenceEngine {
  private webGpu?: WebGpuStatus;
  private readonly probe: Promise<WebGpuStatus>;

  constructor(private readonly host: EngineHost) {
    this.probe = probeWebGpu(host.gpu).then((status) => (this.webGpu = status));
  }

  get hostName(): string {
    return this.host.name;
  }

  /** Bytes of ORT's WASM heap (0 where the host cannot see it, or before the first session). */
  heapBytes(): number {
    return this.host.heapBytes?.() ?? 0;
  }

  /** onnxruntime-web's version, as the runtime reports it. */
  get runtimeVersion(): string {
    return this.host.ort.env.versions?.web ?? "unknown";
  }

  /** ORT's WASM module for a runtime of its own, where the host has one to give. */
  get runtimeModule(): WebAssembly.Module | undefined {
    return this.host.runtimeModule;
  }

  /** WebGPU's status once the adapter has been asked for (immediately, where there is no navigator.gpu). */
  webGpuStatus(): Promise<WebGpuStatus> {
    return this.probe;
  }

  /**
   * The providers a session for this preference tries, in order. Before the WebGPU probe has
   * answered, "auto" lists both and creation waits for the probe.
   *
   * @throws ProviderUnavailableError when WebGPU is forced on a host known to lack it
   * @example
   * engine.candidates("auto"); // ["wasm"] in workerd
   */
  candidates(preference: ProviderPreference): ExecutionProvider[] {
    const gpu = this.webGpu;
    if (preference === "wasm") return ["wasm"];
    if (gpu && !gpu.available) {
      if (preference === "webgpu") throw new ProviderUnavailableError("webgpu", `WebGPU is not available on this ${this.host.name} host: ${gpu.reason}`, ["wasm"]);
      return ["wasm"];
    }
    if (preference === "webgpu") return ["webgpu"];
    return gpu?.available && gpu.fallback ? ["wasm"] : ["webgpu", "wasm"];
  }

  /**
   * A session for the model on the first of `candidates` that loads it and, for WebGPU with a
   * fallback behind it, runs it once. A list of several is "auto"'s, and is settled here by the
   * WebGPU probe's answer, which it may have been made before.
   *
   * @throws ProviderUnavailableError when no candidate could run the model
   */
  async createSession(bytes: Uint8Array, manifest: ModelManifest, preference: ProviderPreference | ExecutionProvider[]): Promise<EngineSession> {
    const gpu = await this.probe;
    const candidates = !Array.isArray(preference) ? this.candidates(preference) : preference.length > 1 ? this.candidates("auto") : preference;
    const failures: string[] = [];
    for (const [i, provider] of candidates.entries()) {
      if (provider === "webgpu" && !gpu.available) {
        failures.push(`webgpu: ${gpu.reason}`);
        continue;
      }
      let created: Ort.InferenceSession | undefined;
      try {
        created = await this.host.ort.InferenceSession.create(bytes, { graphOptimizationLevel: SESSION_OPTIONS.graphOptimizationLevel, executionProviders: [provider] });
        const session = new EngineSession(this.host.ort, created, manifest, provider);
        if (provider === "webgpu" && i < candidates.length - 1) await session.run(new Float32Array(inputSize(manifest)), 1, ["logits"]);
        return session;
      } catch (error) {
        failures.push(`${provider}: ${error instanceof Error ? error.message : String(error)}`);
        await created?.release().catch(() => undefined);
      }
    }
    throw new ProviderUnavailableError(candidates.join(","), `Model '${manifest.id}' could not be run here (${failures.join("; ")}).`, []);
  }
}

async function probeWebGpu(gpu: GPU | undefined): Promise<WebGpuStatus> {
  if (!gpu) return { available: false, reason: "navigator.gpu is absent" };
  try {
    const adapter = await gpu.requestAdapter();
    if (!adapter) return { available: false, reason: "navigator.gpu.requestAdapter() found no adapter" };
    const { vendor, architecture, description } = adapter.info;
    // isFallbackAdapter moved from the adapter to its info in 2025; browsers have one or the other.
    const fallback = Boolean((adapter.info as { isFallbackAdapter?: boolean }).isFallbackAdapter ?? (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter);
    return { available: true, adapter: [vendor, architecture, description].filter(Boolean).join(" ") || "unnamed adapter", fallback };
  } catch (error) {
    return { available: false, reason: `requestAdapter() failed: ${error instanceof Error ? error.message : String(error)}` };
  }
}

/** Floats in one image's input tensor. */
export const inputSize = ({ input }: ModelManifest) => input.channels * input.height * input.width;

/** Longest a run waits for the one queued before it; past it, that run's request is taken to be gone. */
const RUN_AHEAD_TIMEOUT_MS = 60_000;

/**
 * A model loaded on one execution provider. Runs are queued one at a time: ORT's WASM backend
 * has one heap and one thread, and a WebGPU session one device queue, so overlapping runs would
 * only interleave.
 */
export class EngineSession {
  private queue: Promise<unknown> = Promise.resolve();
  private released = false;

  constructor(
    private readonly ort: OrtRuntime,
    private readonly session: Ort.InferenceSession,
    private readonly manifest: ModelManifest,
    /** The provider this session runs on. */
    readonly provider: ExecutionProvider,
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
    if (this.released) return Promise.reject(new ModelEvictedError(this.manifest.id));
    // The run ahead may be another request's: waited for on a timer of this one's own (shared-waits.ts).
    const result = waitForAny([this.queue], RUN_AHEAD_TIMEOUT_MS).then(() => this.runChunked(batch, count, names));
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Free the session's memory once the runs already queued have finished. */
  release(): Promise<void> {
    this.released = true;
    this.queue = this.queue.then(() => this.session.release());
    return this.queue.then(() => undefined);
  }

  private async runChunked(batch: Float32Array, count: number, names: readonly OutputName[]): Promise<InferenceResult> {
    const size = batch.length / count;
    const runBatch = this.manifest.serving.runBatch;
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
    const { input, artifact } = this.manifest;
    const feeds = { [artifact.inputName]: new this.ort.Tensor("float32", batch, [count, input.channels, input.height, input.width]) };
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

/**
 * Parse a provider preference (a request's ?provider= or a deployment's EXECUTION_PROVIDER).
 *
 * @returns undefined for an unknown value
 * @example
 * parseProviderPreference("webgpu"); // "webgpu"
 */
export function parseProviderPreference(value: string | undefined): ProviderPreference | undefined {
  return PROVIDER_PREFERENCES.find((preference) => preference === value);
}
