/**
 * What the Worker bundle gets for the Node built-ins that onnxruntime-web's Emscripten module
 * (fresh-runtime.ts) imports on its Node code path: that path runs only where
 * `process.versions.node` exists, which it does not in workerd (no nodejs_compat, see
 * wrangler.toml), so these are never called; they only let the bundle build.
 */
const absent = (): never => {
  throw new Error("Node built-ins are not available in the Worker");
};

export const createRequire = absent;
export const workerData = undefined;
export default { createRequire };
