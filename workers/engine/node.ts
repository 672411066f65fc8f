/**
 * The engine's host in Node: onnxruntime-web's WebGPU build, with WebGPU from Dawn (the
 * `webgpu` npm package) where the machine has a GPU driver Dawn can use (Vulkan on Linux,
 * D3D12 on Windows, Metal on macOS), and WASM SIMD otherwise.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import * as ort from "onnxruntime-web/webgpu";
import { InferenceEngine } from "./engine";

/** Dawn's navigator.gpu, installed as the global one ORT's WebGPU backend looks for, or why there is none. */
async function installDawn(): Promise<{ gpu?: GPU; error?: string }> {
  try {
    const { create, globals } = await import("webgpu");
    Object.assign(globalThis, globals);
    const gpu = create([]);
    Object.defineProperty(globalThis.navigator, "gpu", { value: gpu, configurable: true });
    return { gpu };
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
}

/**
 * The Node host's engine.
 *
 * @example
 * useEngine(await nodeEngine());
 */
export async function nodeEngine(): Promise<InferenceEngine> {
  const require = createRequire(import.meta.url);
  ort.env.wasm.wasmBinary = readFileSync(require.resolve("onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm"));
  ort.env.wasm.numThreads = 1; // as in the Worker, so that the two hosts' WASM figures compare
  ort.env.logLevel = "error";
  const { gpu, error } = await installDawn();
  if (error) console.warn(`node host: no WebGPU (${error}); models run on WASM`);
  const engine = new InferenceEngine({ name: "node", ort, gpu });
  await engine.webGpuStatus();
  return engine;
}
