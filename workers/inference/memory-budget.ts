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
