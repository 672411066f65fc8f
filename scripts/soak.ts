/**
 * Soak a cnn-edge deployment: sustained mixed traffic for minutes (scripts/soak/mix.ts: single
 * images and batches to the main model and an R2-served CIFAR-10 model, embeddings, fine-tune
 * calls, bad inputs, clients that hang up), reported per 30-second window with memory.
 *
 *   npm run soak -- [--url <base URL>] [--duration 10m] [--connections 32] [--model id]
 *                   [--second resnet-edge|none] [--window 30] [--key <API key>] [--out dir]
 *                   [--max-growth 0.05]
 *
 * Without --url it builds the Worker and runs the bundle in plain `workerd serve`
 * (scripts/workerd/serve.ts: no Miniflare, no dev proxy, no file watcher, no static assets, which
 * on Cloudflare are served before the Worker; Durable Objects on disk, the MODELS bucket a
 * stand-in over models/), and reads workerd's resident memory from /proc; with --url, memory is
 * what /healthz reports (ORT's WASM
 * heap; the Workers runtime gives a Worker no figure for its JS heap). Writes report.json,
 * report.md and report.svg to --out. Exits 1 on any 5xx, unexpected answer, failed request, lost
 * fine-tune update, batcher state left behind, or memory that keeps growing (the last third of
 * the windows more than --max-growth above the middle third, on average).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { buildWorker } from "./local-worker.ts";
import { makePayloads } from "./loadtest/payloads.ts";
import { ROOT } from "./model-repository.ts";
import { soakMix } from "./soak/mix.ts";
import { soakChartSvg, windowTable } from "./soak/report.ts";
import { runTraffic, type TrafficWindow } from "./soak/traffic.ts";
import { residentBytes, startPlainWorkerd, type PlainWorkerd } from "./workerd/serve.ts";

const USAGE = "usage: npm run soak -- [--url URL] [--duration 10m] [--connections 32] [--model id] [--second id|none] [--window 30] [--key KEY] [--out dir] [--max-growth 0.05]";

function fail(message: string): never {
  console.error(`soak: ${message}`);
  process.exit(2);
}

function seconds(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(s|m)?$/.exec(text.trim());
  if (!match) fail(`--duration must look like 600, 90s or 10m, not '${text}'`);
  return Number(match[1]) * (match[2] === "m" ? 60 : 1);
}

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    duration: { type: "string", default: "10m" },
    connections: { type: "string", default: "32" },
    model: { type: "string" },
    second: { type: "string", default: "resnet-edge" },
    window: { type: "string", default: "30" },
    key: { type: "string", default: process.env.CNN_EDGE_API_KEY },
    out: { type: "string" },
    "max-growth": { type: "string", default: "0.05" },
    help: { type: "boolean", default: false },
  },
});
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}
const durationS = seconds(args.duration);
const windowS = seconds(args.window);
const connections = Number(args.connections);
const maxGrowth = Number(args["max-growth"]);
if (!(durationS > 0 && durationS <= 24 * 3600)) fail("--duration must be more than 0 and at most 24h");
if (!(windowS >= 1 && windowS <= durationS)) fail("--window must be at least 1 s and at most the duration");
if (!Number.isInteger(connections) || connections < 1 || connections > 1024) fail("--connections must be an integer from 1 to 1024");
if (!(maxGrowth >= 0)) fail("--max-growth must be a number >= 0");

// --- The target ------------------------------------------------------------------------------
let local: PlainWorkerd | undefined;
let key = args.key;
let base: URL;
if (args.url) {
  base = new URL(args.url);
} else {
  const dir = join(ROOT, "test", ".build", "soak-worker");
  console.log("soak: building the Worker and starting it in workerd (no dev proxy)...");
  buildWorker(dir);
  key = `soak-${Math.random().toString(36).slice(2)}`;
  // Durable Objects on disk: the classifiers' versions (which fine-tuning adds by design) live in
  // SQLite files, not in the memory the soak watches.
  local = await startPlainWorkerd({ dir, stateDir: mkdtempSync(join(tmpdir(), "cnn-edge-soak-")), secrets: { API_KEYS: key }, requestLog: "drop" });
  base = local.url;
}
const pid = local?.pid;
const auth: Record<string, string> = key ? { authorization: `Bearer ${key}` } : {};

async function get<T>(path: string): Promise<T> {
  const res = await fetch(new URL(path, base), { headers: auth, signal: AbortSignal.timeout(30_000) });
  if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${(await res.text()).slice(0, 200)}`);
  return (await res.json()) as T;
}

interface Health {
  defaultModel: string;
  memory: { onnxRuntimeHeapBytes: number };
  batching?: Record<string, { announced: number; batches: number }>;
}
const health = await get<Health>("/healthz").catch((err: Error) => fail(`cannot reach ${base.origin}: ${err.message}`));
const model = args.model ?? health.defaultModel;
const datasetOf = async (id: string) => (await get<{ dataset: string; serving: { servable: boolean } }>(`/v1/models/${encodeURIComponent(id)}`)).dataset;
const images = await makePayloads(await datasetOf(model), 40);
const secondId = args.second === "none" || args.second === model ? undefined : args.second;
const second = secondId ? { model: secondId, images: await makePayloads(await datasetOf(secondId), 16) } : undefined;

const classifier = key ? `soak-${model}-${Date.now().toString(36)}` : undefined;
if (classifier) {
  const res = await fetch(new URL("/v1/classifiers", base), { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ id: classifier, backbone: model, init: "empty" }) });
  if (res.status !== 201) fail(`creating classifier ${classifier}: ${res.status} ${(await res.text()).slice(0, 200)}`);
}
const mix = await soakMix({ model, images, second, classifier, key });

// --- The soak --------------------------------------------------------------------------------
const probe = async () => ({
  workerdRssBytes: residentBytes(pid),
  ortHeapBytes: (await get<Health>("/healthz")).memory.onnxRuntimeHeapBytes,
});
console.log(`soak: ${base.origin}, ${model}${second ? ` and ${second.model}` : ""}, ${connections} clients for ${durationS} s, ${windowS}-second windows${local ? `, workerd pid ${pid}` : ""}`);
const startedAt = new Date();
const result = await runTraffic({
  base,
  mix,
  clients: connections,
  durationS,
  windowS,
  probe,
  onWindow: (w) =>
    console.log(`soak: ${w.t}s  ${w.requests} requests  ${(w.requests / windowS).toFixed(0)}/s  5xx ${w.serverErrors}  unexpected ${w.unexpected}  failed ${w.failed}  p50 ${w.p50Ms.toFixed(1)} ms  p99 ${w.p99Ms.toFixed(1)} ms  RSS ${w.probe.workerdRssBytes === undefined ? "-" : `${(w.probe.workerdRssBytes / 2 ** 20).toFixed(0)} MiB`}  ORT heap ${((w.probe.ortHeapBytes ?? 0) / 2 ** 20).toFixed(0)} MiB`),
});

// --- After -----------------------------------------------------------------------------------
// Normal batched service: a burst of concurrent requests, answered and batched together.
const burst = await Promise.all(
  Array.from({ length: 16 }, async (_, i) => {
    const p = images[i % images.length]!;
    const res = await fetch(new URL(`/v1/models/${encodeURIComponent(model)}/classify`, base), { method: "POST", headers: { ...auth, "content-type": p.contentType }, body: new Uint8Array(p.bytes), signal: AbortSignal.timeout(60_000) });
    const body = (await res.json()) as { timing?: { batch?: { requests: number } } };
    return { status: res.status, requests: body.timing?.batch?.requests ?? 0 };
  }),
);
const after = await get<Health>("/healthz");
const leftover = Object.entries(after.batching ?? {}).filter(([, s]) => s.announced > 0 || s.batches > 0);
let finetune: { acknowledged: number; version: number; lost: number } | undefined;
if (classifier) {
  const info = await get<{ version: number }>(`/v1/classifiers/${classifier}`);
  const acknowledged = result.byKind["fine-tune"]?.requests ?? 0;
  finetune = { acknowledged, version: info.version, lost: Math.max(0, 1 + acknowledged - info.version) };
  await fetch(new URL(`/v1/classifiers/${classifier}`, base), { method: "DELETE", headers: auth });
}
await local?.dispose();

const rss = (w: TrafficWindow) => w.probe.workerdRssBytes ?? (local ? undefined : w.probe.ortHeapBytes);
const memory = memoryTrend(result.windows.map(rss));
const steady = result.windows.slice(Math.floor(result.windows.length / 3)).map((w) => w.p99Ms);
const { totals } = result;
const failures = [
  totals.serverErrors > 0 && `${totals.serverErrors} answers were 5xx`,
  totals.unexpected > 0 && `${totals.unexpected} answers were not the expected ones`,
  totals.failed > 0 && `${totals.failed} requests got no answer`,
  burst.some((b) => b.status !== 200) && `the burst afterwards got ${burst.map((b) => b.status).join(",")}`,
  !burst.some((b) => b.requests > 1) && "the burst afterwards was not batched",
  leftover.length > 0 && `batcher state left behind: ${JSON.stringify(Object.fromEntries(leftover))}`,
  finetune && finetune.lost > 0 && `fine-tuning lost ${finetune.lost} acknowledged updates`,
  memory && memory.growth > maxGrowth && `memory grew ${(memory.growth * 100).toFixed(1)} % from the middle third of the run to the last (limit ${(maxGrowth * 100).toFixed(0)} %)`,
].filter((f): f is string => typeof f === "string");

const report = {
  target: base.origin,
  local: Boolean(local),
  model,
  second: second?.model,
  startedAt: startedAt.toISOString(),
  options: { durationS, connections, windowS, maxGrowth },
  totals,
  memory: memory && { ...memory, measured: local ? "workerd RSS (/proc)" : "ORT WASM heap (/healthz)" },
  p99AfterFirstThird: steady.length ? { minMs: Math.min(...steady), maxMs: Math.max(...steady) } : undefined,
  byKind: result.byKind,
  surprises: result.surprises,
  burstAfter: burst,
  finetune,
  windows: result.windows,
  passed: failures.length === 0,
  failures,
};
const out = resolve(args.out ?? join("soak-results", `${model}-c${connections}-${startedAt.toISOString().replace(/[:.]/g, "-")}`));
mkdirSync(out, { recursive: true });
const title = `${model}${second ? ` + ${second.model}` : ""} at ${base.host}: ${connections} clients, ${durationS} s`;
const table = windowTable(result.windows, windowS);
writeFileSync(join(out, "report.json"), `${JSON.stringify(report, null, 2)}\n`);
writeFileSync(join(out, "report.md"), `# Soak: ${title}\n\n${table}\n`);
writeFileSync(join(out, "report.svg"), soakChartSvg(title, result.windows, windowS));
console.log(`\n${table}\n`);
console.log(`requests ${totals.requests}: 2xx ${totals.ok}, expected 4xx ${totals.expected4xx}, hung up ${totals.hungUp}, unexpected ${totals.unexpected}, 5xx ${totals.serverErrors}, failed ${totals.failed}`);
if (memory) console.log(`memory: ${(memory.middleBytes / 2 ** 20).toFixed(1)} MiB in the middle third, ${(memory.lastBytes / 2 ** 20).toFixed(1)} MiB in the last (${(memory.growth * 100).toFixed(1)} %)`);
if (finetune) console.log(`fine-tuning: ${finetune.acknowledged} updates acknowledged, classifier at version ${finetune.version}, lost ${finetune.lost}`);
for (const [note, count] of Object.entries(result.surprises).slice(0, 20)) console.log(`  ${count} x ${note}`);
console.log(`report: ${join(out, "report.md")}, chart: ${join(out, "report.svg")}`);
console.log(report.passed ? "soak: PASSED" : `soak: FAILED\n  ${failures.join("\n  ")}`);
process.exit(report.passed ? 0 : 1);

/**
 * Mean memory of the middle third of the windows against the last third. The first third is
 * warm-up (sessions created, caches and pools filled: a slow model takes minutes to see every
 * path), so only what still grows after it counts; means, so that one window's GC state does not.
 *
 * @example
 * memoryTrend([300, 400, 420, 421, 419, 422]); // { middleBytes: 420.5, lastBytes: 420.5, growth: 0 }
 */
function memoryTrend(values: (number | undefined)[]): { middleBytes: number; lastBytes: number; growth: number } | undefined {
  const third = Math.floor(values.length / 3);
  const mean = (part: (number | undefined)[]) => (part.every((v) => v !== undefined) ? part.reduce<number>((sum, v) => sum + v!, 0) / part.length : undefined);
  const middleBytes = third > 0 ? mean(values.slice(third, values.length - third)) : undefined;
  const lastBytes = third > 0 ? mean(values.slice(values.length - third)) : undefined;
  if (middleBytes === undefined || lastBytes === undefined) return undefined;
  return { middleBytes, lastBytes, growth: lastBytes / middleBytes - 1 };
}
