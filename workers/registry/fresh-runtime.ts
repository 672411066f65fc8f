/**
 * A model's serving memory measured inside the Worker as scripts/measure-serving-memory.ts
 * measures it in Node: in a runtime of its own, started for the measurement. ORT's heap only
 * grows and is shared by every model an isolate serves, so the serving runtime cannot say what
 * one model takes; a second instance of the same WASM build (its Emscripten module, driven
 * through ORT's C API as onnxruntime-web drives it) starts empty, loads the model, runs one
 * batch, reports its heap and is dropped for the garbage collector.
 *
 * The C API calls are onnxruntime-web 1.30's (web/lib/wasm/wasm-core-impl.ts); the
 * registration tests run them against the installed version.
 */
import ortFactory from "onnxruntime-web/ort-wasm-simd-threaded.mjs";
import type { HeapMeasurement } from "../inference/memory-budget";

/** The runtime refused the model or its input: the message is ORT's. */
export class RuntimeRefusedError extends Error {
  override name = "RuntimeRefusedError";
}

interface OrtModule {
  HEAPU8: Uint8Array;
  PTR_SIZE: number;
  _malloc(bytes: number): number;
  _free(pointer: number): void;
  stackSave(): number;
  stackRestore(pointer: number): void;
  stackAlloc(bytes: number): number;
  setValue(pointer: number, value: number, type: string): void;
  getValue(pointer: number, type: string): number;
  UTF8ToString(pointer: number): string;
  _OrtInit(threads: number, logLevel: number): number;
  _OrtGetLastError(codeOut: number, messageOut: number): void;
  _OrtCreateSessionOptions(...args: number[]): number;
  _OrtCreateSession(data: number, length: number, options: number): number | Promise<number>;
  _OrtCreateTensor(type: number, data: number, bytes: number, dims: number, rank: number, location: number): number;
  _OrtRun(session: number, inputNames: number, inputs: number, inputCount: number, outputNames: number, outputCount: number, outputs: number, runOptions: number): number | Promise<number>;
  _OrtReleaseTensor(tensor: number): number;
  _OrtReleaseSession(session: number): number;
  _OrtReleaseSessionOptions(options: number): number;
}

const GRAPH_OPTIMIZATION_ALL = 99; // ORT's "all", as SESSION_OPTIONS asks (workers/inference/wasm-heap.ts)
const LOG_ERROR = 3;
const TENSOR_FLOAT = 1;
const LOCATION_CPU = 1;

function lastError(ort: OrtModule, what: string): RuntimeRefusedError {
  const stack = ort.stackSave();
  try {
    const out = ort.stackAlloc(2 * ort.PTR_SIZE);
    ort._OrtGetLastError(out, out + ort.PTR_SIZE);
    const message = ort.getValue(out + ort.PTR_SIZE, "*");
    return new RuntimeRefusedError(`${what}: ${message ? ort.UTF8ToString(message) : "no message"}`);
  } finally {
    ort.stackRestore(stack);
  }
}

function cString(ort: OrtModule, value: string): number {
  const bytes = new TextEncoder().encode(value + "\0");
  const pointer = ort._malloc(bytes.length);
  ort.HEAPU8.set(bytes, pointer);
  return pointer;
}

/**
 * Run `create` with `Atomics.waitAsync` hidden. The threaded WASM build's main thread, once ORT
 * starts, waits on its thread mailbox with Atomics.waitAsync whenever the function exists (the
 * module reads that as it is created); with one thread nothing ever notifies it, and the pending
 * wait keeps the runtime and its heap alive for good: every measurement leaked its heap (35 MB
 * a time in Node, measured with forced GCs; 25-150 MB of workerd's RSS). Without the function the
 * module arms no wait, and a dropped runtime is collected.
 */
async function withoutWaitAsync<T>(create: () => Promise<T>): Promise<T> {
  const atomics = Atomics as { waitAsync?: unknown };
  const saved = atomics.waitAsync;
  try {
    atomics.waitAsync = undefined;
  } catch {
    // A host whose Atomics cannot be changed: the runtime is then kept until the isolate ends.
  }
  try {
    return await create();
  } finally {
    if (atomics.waitAsync !== saved) atomics.waitAsync = saved;
  }
}

/**
 * Start an ORT runtime of its own from the precompiled WASM module, create a session of `bytes`,
 * run one batch of `shape` (batch first) on it, and report the heap; the runtime is then
 * unreferenced. `outputs` are the graph outputs to compute.
 *
 * @throws RuntimeRefusedError when ORT cannot create the session or run it
 * @example
 * const m = await measureInFreshRuntime(ortWasm, bytes, "image", [8, 3, 224, 224], ["embedding", "logits"]);
 * Math.max(m.artifactBytes + m.heapAfterCreate, m.heapAfterRun); // the serving memory
 */
export async function measureInFreshRuntime(wasm: WebAssembly.Module, bytes: Uint8Array, inputName: string, shape: number[], outputs: string[]): Promise<HeapMeasurement> {
  const ort = (await withoutWaitAsync(() =>
    ortFactory({
      numThreads: 1,
      instantiateWasm(imports: WebAssembly.Imports, receive: (instance: WebAssembly.Instance, module: WebAssembly.Module) => void) {
        const instance = new WebAssembly.Instance(wasm, imports);
        receive(instance, wasm);
        return instance.exports;
      },
    }),
  )) as OrtModule;
  const heap = () => ort.HEAPU8.buffer.byteLength;
  if (ort._OrtInit(1, LOG_ERROR) !== 0) throw lastError(ort, "starting the runtime");
  const options = ort._OrtCreateSessionOptions(GRAPH_OPTIMIZATION_ALL, 1, 1, 0, 0, 0, 0, LOG_ERROR, 0, 0);
  if (!options) throw lastError(ort, "session options");
  const model = ort._malloc(bytes.byteLength);
  ort.HEAPU8.set(bytes, model);
  const session = await ort._OrtCreateSession(model, bytes.byteLength, options);
  ort._free(model);
  ort._OrtReleaseSessionOptions(options);
  if (!session) throw lastError(ort, "creating the session");
  const heapAfterCreate = heap();

  const count = shape.reduce((a, b) => a * b, 1);
  const data = ort._malloc(count * 4);
  new Float32Array(ort.HEAPU8.buffer, data, count).fill(0.5);
  const ptr = ort.PTR_SIZE;
  const stack = ort.stackSave();
  const names = [inputName, ...outputs].map((name) => cString(ort, name));
  try {
    const dims = ort.stackAlloc(shape.length * ptr);
    shape.forEach((dim, i) => ort.setValue(dims + i * ptr, dim, ptr === 4 ? "i32" : "i64"));
    const tensor = ort._OrtCreateTensor(TENSOR_FLOAT, data, count * 4, dims, shape.length, LOCATION_CPU);
    if (!tensor) throw lastError(ort, "creating the input tensor");
    const inputNames = ort.stackAlloc(ptr);
    const inputValues = ort.stackAlloc(ptr);
    const outputNames = ort.stackAlloc(outputs.length * ptr);
    const outputValues = ort.stackAlloc(outputs.length * ptr);
    ort.setValue(inputNames, names[0]!, "*");
    ort.setValue(inputValues, tensor, "*");
    outputs.forEach((_, i) => {
      ort.setValue(outputNames + i * ptr, names[i + 1]!, "*");
      ort.setValue(outputValues + i * ptr, 0, "*");
    });
    const code = await ort._OrtRun(session, inputNames, inputValues, 1, outputNames, outputs.length, outputValues, 0);
    if (code !== 0) throw lastError(ort, `running it on a ${shape.join("x")} input`);
    const heapAfterRun = heap();
    ort._OrtReleaseTensor(tensor);
    outputs.forEach((_, i) => ort._OrtReleaseTensor(ort.getValue(outputValues + i * ptr, "*")));
    return { batch: shape[0]!, artifactBytes: bytes.byteLength, heapAfterCreate, heapAfterRun };
  } finally {
    ort.stackRestore(stack);
    ort._OrtReleaseSession(session);
  }
}
