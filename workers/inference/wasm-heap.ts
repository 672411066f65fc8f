/**
 * What the Worker and scripts/measure-serving-memory.ts must agree on for the measured memory
 * to be the served memory: how ORT's sessions are created, and where its WASM heap is found.
 * No imports, so that Node scripts can load it as it is.
 */

/** Options of every ORT session the Worker creates (and the memory measurement creates). */
export const SESSION_OPTIONS = { executionProviders: ["wasm"], graphOptimizationLevel: "all" } as const;

/**
 * The first WebAssembly.Memory among these objects' values, or their values' values: ORT's heap,
 * given the imports of its instantiation (Emscripten's threaded build imports its memory) and
 * the instance's exports.
 *
 * @example
 * const heap = findMemory(imports ?? {}, instance.exports);
 */
export function findMemory(...namespaces: object[]): WebAssembly.Memory | undefined {
  const values = namespaces.flatMap((namespace) => Object.values(namespace));
  const nested = values.flatMap((value) => (value && typeof value === "object" ? Object.values(value) : []));
  return [...values, ...nested].find((value): value is WebAssembly.Memory => value instanceof WebAssembly.Memory);
}
