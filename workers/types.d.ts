// Module types for the non-JS files the Worker imports (see [[rules]] in wrangler.toml).

/** A .wasm import is a WebAssembly.Module compiled at deploy time (CompiledWasm rule). */
declare module "*.wasm" {
  const module: WebAssembly.Module;
  export default module;
}

/** The same, for .wasm files whose packages ship typings of their own exports. */
declare module "*.wasm?module" {
  const module: WebAssembly.Module;
  export default module;
}

/** A model artifact is bundled as its raw bytes (Data rule). */
declare module "*.onnx" {
  const bytes: ArrayBuffer;
  export default bytes;
}

/** A model's head.bin (trained head and replay exemplars), bundled as raw bytes too. */
declare module "*.bin" {
  const bytes: ArrayBuffer;
  export default bytes;
}

/** onnxruntime-web's Emscripten module factory (its WASM build's JavaScript half): each call starts a runtime of its own. */
declare module "onnxruntime-web/ort-wasm-simd-threaded.mjs" {
  const factory: (moduleArg: Record<string, unknown>) => Promise<unknown>;
  export default factory;
}
