/** This isolate's admission controller (admission.ts), over the memory an isolate has left for requests in flight. */
import { ISOLATE_MEMORY_BYTES } from "../inference/memory-budget";
import { currentEngine } from "../inference/onnx-session";
import { AdmissionController } from "./admission";

/**
 * What an isolate holds besides ORT's heap and the requests in flight: its JavaScript heap (20 MB
 * total after mixed traffic, measured through workerd's inspector), the bundled model bytes (6 MB)
 * and the codecs' WASM memories, with room to spare.
 */
export const RUNTIME_MARGIN_BYTES = 32 * 1024 * 1024;

/** The bytes requests in flight may hold together now: the isolate's memory less ORT's heap (the resident models) and the margin. */
export function inFlightBudgetBytes(): number {
  return Math.max(0, ISOLATE_MEMORY_BYTES - currentEngine().heapBytes() - RUNTIME_MARGIN_BYTES);
}

/** The controller every request of this isolate is admitted by. */
export const admission = new AdmissionController(inFlightBudgetBytes);
