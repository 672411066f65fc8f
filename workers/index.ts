/**
 * cnn-edge: CNN image classifiers served from a Cloudflare Worker with onnxruntime-web (WASM
 * SIMD: workerd has no WebGPU). The Worker's entry point: the API (app.ts) on the workerd
 * engine, and the Durable Object classes behind fine-tunable classifiers and registered models. The playground page at
 * `/` is a static asset (wrangler.toml, [assets]).
 */
import { handleRequest } from "./app";
import { workerdEngine } from "./engine/workerd";
import { useEngine, warmUpRuntime } from "./inference/onnx-session";
import { smallestBundledModel } from "./models/catalog";
import type { Env } from "./env";

useEngine(workerdEngine);

// ORT's runtime starts with the isolate, not with its first request: the smallest bundled model
// is run once in global scope.
void warmUpRuntime(smallestBundledModel()!);

export default { fetch: handleRequest } satisfies ExportedHandler<Env>;
export { ClassifierObject } from "./classifiers/classifier-object";
export { ModelRegistry } from "./registry/registry-object";
