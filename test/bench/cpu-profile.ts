/**
 * V8 CPU profiles of the Worker in workerd, through its inspector (the Chrome DevTools protocol
 * that `workerd serve --inspector-addr` opens), and their samples attributed to the steps of the
 * request path by the source file each sampled function came from (the bundle's source map).
 */
import { readFileSync } from "node:fs";
import { SourceMap } from "node:module";

/** The parts of a DevTools `Profiler.Profile` read here. */
export interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }; children?: number[] }[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** A DevTools protocol session on one inspector target. */
async function connect(inspectorPort: number): Promise<{ send: (method: string, params?: object) => Promise<Record<string, unknown>>; close: () => void }> {
  const targets = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
  if (!targets.length) throw new Error("the inspector lists no target");
  const socket = new WebSocket(targets[0]!.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    socket.addEventListener("open", resolve, { once: true });
    socket.addEventListener("error", reject, { once: true });
  });
  let nextId = 1;
  const pending = new Map<number, { resolve: (result: Record<string, unknown>) => void; reject: (err: Error) => void }>();
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(String(event.data)) as { id?: number; result?: Record<string, unknown>; error?: { message: string } };
    const waiter = message.id === undefined ? undefined : pending.get(message.id);
    if (!waiter) return;
    pending.delete(message.id!);
    if (message.error) waiter.reject(new Error(message.error.message));
    else waiter.resolve(message.result ?? {});
  });
  return {
    send: (method, params = {}) =>
      new Promise((resolve, reject) => {
        const id = nextId++;
        pending.set(id, { resolve, reject });
        socket.send(JSON.stringify({ id, method, params }));
      }),
    close: () => socket.close(),
  };
}

/**
 * Profile the Worker while `during` runs, sampling every `intervalUs` microseconds.
 *
 * @example
 * const { profile, result } = await captureProfile(9229, () => loadClassify(url, "lenet", uploads, 8, 10));
 */
export async function captureProfile<T>(inspectorPort: number, during: () => Promise<T>, intervalUs = 200): Promise<{ profile: CpuProfile; result: T }> {
  const session = await connect(inspectorPort);
  try {
    await session.send("Profiler.enable");
    await session.send("Profiler.setSamplingInterval", { interval: intervalUs });
    await session.send("Profiler.start");
    const result = await during();
    const { profile } = (await session.send("Profiler.stop")) as { profile: CpuProfile };
    return { profile, result };
  } finally {
    session.close();
  }
}

/** A step of the request path and the source files (or V8 pseudo-frames) whose samples are its. */
export interface Step {
  name: string;
  sources: RegExp;
}

/**
 * The request path's steps, first match wins. Native frames (builtins such as JSON.stringify,
 * and WebAssembly) count for the nearest bundle frame that called them, so ORT's kernels are
 * "model run" and the codecs' are "decode".
 */
export const REQUEST_PATH_STEPS: Step[] = [
  { name: "routing (Hono)", sources: /node_modules\/hono\/|workers\/app\.ts|workers\/auth\// },
  { name: "body reading and checks", sources: /workers\/classify\/(request|options|limits)\.ts/ },
  { name: "format probing", sources: /workers\/images\/probe\.ts/ },
  { name: "decode", sources: /workers\/images\/(decode|png-|jpeg-|codecs)|@jsquash|squoosh|mozjpeg|webp/ },
  { name: "preprocess", sources: /workers\/images\/preprocess\.ts/ },
  { name: "batch hand-over", sources: /workers\/inference\/(dynamic-batcher|shared-waits)\.ts/ },
  { name: "model run (onnxruntime-web, WASM)", sources: /onnxruntime-web|workers\/engine\/|workers\/inference\/onnx-session\.ts/ },
  { name: "top-k and answer", sources: /workers\/inference\/topk\.ts|workers\/classify\/(classify|flip-average)\.ts|workers\/classify\/routes\.ts/ },
  { name: "logs and metrics", sources: /workers\/observability\// },
  { name: "problems", sources: /workers\/problems\// },
];

/** What a sampled frame stands for: a source file of the bundle, or a V8 pseudo-frame. */
function frameSource(frame: CpuProfile["nodes"][number]["callFrame"], bundleUrl: RegExp, map: SourceMap): string | undefined {
  if (bundleUrl.test(frame.url)) {
    const entry = map.findEntry(frame.lineNumber, frame.columnNumber);
    return "originalSource" in entry ? entry.originalSource : "bundle";
  }
  // V8 files samples outside any JavaScript frame under (root) or (program): workerd's native work.
  if (/^\((program|root)\)$/.test(frame.functionName)) return "(program)";
  if (/^\((garbage collector|idle)\)$/.test(frame.functionName)) return frame.functionName;
  return undefined; // a builtin or WebAssembly: its caller's
}

/**
 * Milliseconds of CPU per step over the profile, from its samples (self time, with native frames
 * charged to their callers). `(program)` is workerd's own native work (HTTP, streams), `(idle)` is
 * time the isolate's thread waited.
 *
 * @example
 * const steps = stepTimes(profile, readFileSync("test/.build/worker/index.js.map", "utf8"));
 */
export function stepTimes(profile: CpuProfile, sourceMapText: string, steps: Step[] = REQUEST_PATH_STEPS, bundleUrl = /index\.js$/): Map<string, number> {
  const map = new SourceMap(JSON.parse(sourceMapText));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const stepOf = new Map<number, string>();
  const classify = (id: number): string => {
    const known = stepOf.get(id);
    if (known) return known;
    let step = "other JavaScript";
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const source = frameSource(byId.get(at)!.callFrame, bundleUrl, map);
      if (source === undefined) continue;
      step = source.startsWith("(") ? source : (steps.find((s) => s.sources.test(source))?.name ?? "other JavaScript");
      break;
    }
    stepOf.set(id, step);
    return step;
  };
  const totals = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const step = classify(id);
    totals.set(step, (totals.get(step) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  });
  return totals;
}

/** The bundle's source map, for stepTimes. */
export function readSourceMap(bundleDir: string): string {
  return readFileSync(`${bundleDir}/index.js.map`, "utf8");
}
