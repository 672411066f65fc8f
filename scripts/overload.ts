/**
 * `npm run bench:overload`: offered load stepped far past what one isolate can serve, to see that
 * it refuses early and cheaply and keeps serving (workers/README.md, "Admission control").
 *
 *   npm run bench:overload                               # steps 8..512 clients, the mixed load, 20 s each
 *   npm run bench:overload -- --mix photos --steps 8,256 --duration 40s   # 12 MP photos to resnet-edge-int8-static
 *   npm run bench:overload -- --no-expect                # clients that never send Expect: 100-continue
 *   npm run bench:overload -- --url https://cnn-edge-staging.<you>.workers.dev
 *
 * Without --url it builds the Worker and serves it in plain `workerd serve`, as `npm run serve`
 * does (scripts/workerd/serve.ts), and reads workerd's resident memory from /proc every 250 ms.
 * Each step runs its clients closed-loop (each sends its next request as soon as it has an
 * answer, with a 30 s timeout), then, once the isolate is idle, sends one request alone. The mix:
 * `mixed` is LeNet digits (28x28 PNG, 512x512 PNG) and CIFAR-10 images (32x32 JPEG, 1024x1024 JPEG,
 * 12 MP photos) to resnet-edge-int8-static; `photos` is 12 MP photos only. Clients send
 * `Expect: 100-continue` with bodies over 1 MiB, as curl does, so a refused photo is never
 * uploaded; `--no-expect` measures clients that send every body whole. Writes overload.json,
 * overload.md (the table) and overload.svg (goodput and latency against clients) to --out.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import http from "node:http";
import { cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { buildWorker } from "./local-worker.ts";
import { makePayloads, twelveMegapixelJpeg } from "./loadtest/payloads.ts";
import { ROOT } from "./model-repository.ts";
import { runClients, send, type ClientOptions, type OverloadRequest } from "./overload/clients.ts";
import { overloadChartSvg, stepTable, summarise, type StepResult } from "./overload/report.ts";
import { residentBytes, startPlainWorkerd, type PlainWorkerd } from "./workerd/serve.ts";

const USAGE = "usage: npm run bench:overload -- [--url URL] [--steps 8,16,32,64,128,256,512] [--duration 20s] [--mix mixed|photos] [--model id] [--no-expect] [--honour-retry-after] [--out dir]";

function fail(message: string): never {
  console.error(`overload: ${message}`);
  process.exit(2);
}

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    steps: { type: "string", default: "8,16,32,64,128,256,512" },
    duration: { type: "string", default: "20s" },
    mix: { type: "string", default: "mixed" },
    model: { type: "string", default: "resnet-edge-int8-static" },
    "no-expect": { type: "boolean", default: false },
    "honour-retry-after": { type: "boolean", default: false },
    out: { type: "string" },
    help: { type: "boolean", default: false },
  },
});
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}
const steps = args.steps.split(",").map(Number);
if (!steps.every((n) => Number.isInteger(n) && n >= 1 && n <= 1024)) fail("--steps takes client counts from 1 to 1024, comma-separated");
const durationS = Number(/^(\d+)s?$/.exec(args.duration)?.[1] ?? NaN);
if (!(durationS >= 1 && durationS <= 600)) fail("--duration must be 1s to 600s");
if (args.mix !== "mixed" && args.mix !== "photos") fail("--mix is mixed or photos");
const options: ClientOptions = { expectContinue: !args["no-expect"], honourRetryAfter: args["honour-retry-after"], timeoutMs: 30_000 };

// --- The target ------------------------------------------------------------------------------
let local: PlainWorkerd | undefined;
let base: URL;
if (args.url) {
  base = new URL(args.url);
} else {
  console.log("overload: building the Worker and starting it in plain workerd (as npm run serve)...");
  const dir = join(ROOT, "test", ".build", "overload-worker");
  buildWorker(dir);
  local = await startPlainWorkerd({ dir, stateDir: mkdtempSync(join(tmpdir(), "cnn-edge-overload-")), secrets: { API_KEYS: `overload-${Math.random().toString(36).slice(2)}` }, requestLog: "drop" });
  base = local.url;
}

// --- The mix ---------------------------------------------------------------------------------
const photo = await twelveMegapixelJpeg();
const classifyPath = (model: string) => `/v1/models/${encodeURIComponent(model)}/classify?top_k=1`;
const photoRequest: OverloadRequest = { kind: "12 MP photo", path: classifyPath(args.model), contentType: "image/jpeg", body: photo };
const digits = await makePayloads("MNIST", 8);
const cifar = await makePayloads("CIFAR-10", 8);
const pick = <T>(list: readonly T[]) => list[Math.floor(Math.random() * list.length)]!;
const asRequest = (kind: string, model: string, p: { contentType: string; bytes: Buffer }): OverloadRequest => ({ kind, path: classifyPath(model), contentType: p.contentType, body: p.bytes });
const MIXED: [number, () => OverloadRequest][] = [
  [0.35, () => asRequest("digit 28x28 PNG", "lenet", pick(digits.filter((p) => p.variant === "original")))],
  [0.15, () => asRequest("digit 512x512 PNG", "lenet", pick(digits.filter((p) => p.variant === "photo-png")))],
  [0.2, () => asRequest("CIFAR 32x32 JPEG", args.model, pick(cifar.filter((p) => p.variant === "original")))],
  [0.15, () => asRequest("CIFAR 1024x1024 JPEG", args.model, pick(cifar.filter((p) => p.variant === "photo-jpeg")))],
  [0.15, () => photoRequest],
];
function next(): OverloadRequest {
  if (args.mix === "photos") return photoRequest;
  let r = Math.random();
  for (const [weight, make] of MIXED) if ((r -= weight) < 0) return make();
  return MIXED.at(-1)![1]();
}

interface Health {
  memory: { onnxRuntimeHeapBytes: number };
  admission: { peakInFlightBytes: number; budgetBytes: number; requests: number };
}
const health = async () => (await (await fetch(new URL("/healthz", base), { signal: AbortSignal.timeout(30_000) })).json()) as Health;

// --- The steps -------------------------------------------------------------------------------
// Warm every model the mix uses first, so that no step pays a cold start.
for (const request of [photoRequest, asRequest("warm", "lenet", digits[0]!), asRequest("warm", args.model, cifar[0]!)]) await send(new http.Agent(), base, request, options);
const mixName = args.mix === "photos" ? `12 MP photos (${(photo.length / 2 ** 20).toFixed(1)} MiB) to ${args.model}` : `mixed: digits to lenet, CIFAR-10 images and 12 MP photos to ${args.model}`;
const clientsName = `${options.expectContinue ? "Expect: 100-continue over 1 MiB" : "no Expect"}${options.honourRetryAfter ? ", Retry-After honoured" : ""}`;
console.log(`overload: ${base.origin}, ${mixName}; clients: ${clientsName}; steps ${steps.join(", ")}, ${durationS} s each`);
const results: StepResult[] = [];
for (const clients of steps) {
  let peakRss = 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, residentBytes(local?.pid) ?? 0)), 250);
  const outcomes = await runClients(base, clients, durationS, next, options);
  clearInterval(sampler);
  // Once the isolate has drained (no request holds a ticket), one request alone: served as normal?
  for (let i = 0; i < 100 && (await health()).admission.requests > 0; i++) await new Promise((r) => setTimeout(r, 100));
  const lone = await send(new http.Agent(), base, args.mix === "photos" ? photoRequest : asRequest("after", args.model, cifar[0]!), options);
  const h = await health();
  const step = summarise(clients, durationS, outcomes, {
    ...(local ? { peakRssBytes: peakRss } : {}),
    ortHeapBytes: h.memory.onnxRuntimeHeapBytes,
    peakInFlightBytes: h.admission.peakInFlightBytes,
    budgetBytes: h.admission.budgetBytes,
    after: { status: lone.status, ms: lone.latencyMs },
  });
  results.push(step);
  console.log(`overload: ${clients} clients: ${step.requests} requests, ${(step.ok / durationS).toFixed(2)} 2xx/s, refused ${step.refused} ${JSON.stringify(step.reasons)}, bad ${step.bad}, timed out ${step.timeouts}, no answer ${step.failed}, p50 ${step.p50Ms.toFixed(0)} ms, p99 ${step.p99Ms.toFixed(0)} ms, refusal p99 ${step.refusalP99Ms.toFixed(0)} ms, peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB; then ${lone.status} in ${lone.latencyMs.toFixed(0)} ms`);
  const surprises = outcomes.filter((o) => o.note).slice(0, 3).map((o) => `${o.kind}: ${o.result} ${o.note}`);
  for (const line of surprises) console.log(`  ${line}`);
}
await local?.dispose();

const title = `${mixName}; ${clientsName}; ${durationS} s a step`;
const table = stepTable(results);
const out = resolve(args.out ?? join("test", "bench", "results", `overload-${args.mix}${options.expectContinue ? "" : "-no-expect"}`));
mkdirSync(out, { recursive: true });
const cpu = `${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} cores`;
writeFileSync(join(out, "overload.json"), `${JSON.stringify({ target: base.origin, local: Boolean(local), cpu, mix: args.mix, model: args.model, options, durationS, measuredAt: new Date().toISOString(), steps: results }, null, 2)}\n`);
writeFileSync(join(out, "overload.md"), `# Overload: ${title}\n\n${local ? `Plain workerd on ${cpu}, load generator on the same machine` : base.origin}; measured ${new Date().toISOString().slice(0, 10)}.\n\n${table}\n`);
writeFileSync(join(out, "overload.svg"), overloadChartSvg(title, results));
console.log(`\n${table}\n\nreport: ${join(out, "overload.md")}, chart: ${join(out, "overload.svg")}`);
