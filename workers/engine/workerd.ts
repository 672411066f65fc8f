/**
 * The engine's host inside workerd: onnxruntime-web's WASM build (SIMD, one thread). workerd has
 * no `navigator.gpu`, so "auto" always means WASM here.
 *
 * workerd forbids compiling WASM from bytes, and ORT would otherwise fetch and compile its
 * 14 MB runtime at start-up. So the runtime is imported as a precompiled module (wrangler's
 * CompiledWasm rule), ORT is given a marker in place of the wasm bytes, and the one
 * `WebAssembly.instantiate(marker, imports)` call ORT then makes is answered with the
 * precompiled module.
 */
import * as ort from "onnxruntime-web/wasm";
import ortWasm from "onnxruntime-web/ort-wasm-simd-threaded.wasm";
import { findMemory } from "../inference/wasm-heap";
import { InferenceEngine } from "./engine";

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

ort.env.wasm.wasmBinary = MARKER;
ort.env.wasm.numThreads = 1; // workerd has no Web Workers to run ORT's thread pool on
ort.env.wasm.proxy = false;
ort.env.logLevel = "error";

/** The Worker's engine. */
export const workerdEngine = new InferenceEngine({
  name: "workerd",
  ort,
  gpu: (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu,
  // Linear memory only grows, so this is the high-water mark of every model and run so far.
  heapBytes: () => ortMemory?.buffer.byteLength ?? 0,
  runtimeModule: ortWasm,
});
