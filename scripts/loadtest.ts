/**
 * Load-test a cnn-edge deployment (local or on Cloudflare) with real images, and check its answers.
 *
 *   npm run loadtest -- --url <base URL> [--model id] [--connections 8] [--duration 30s]
 *                       [--finetune-ratio 0] [--key <API key>] [--max-requests 100000] [--out dir]
 *
 * Before the load: /healthz, the model's manifest, and one reference answer per image. The load:
 * autocannon keeps `connections` requests in flight for `duration` (or until --max-requests),
 * cycling through 40 images (MNIST or CIFAR-10 samples as small PNG/JPEG and photo-sized
 * JPEG/PNG); with --finetune-ratio, that share of requests teaches a scratch classifier on the
 * same backbone two labelled images each (needs a full-access --key; the classifier is deleted
 * afterwards). After: requests/s, latency p50/p90/p99/max, status codes and error messages,
 * answer checks (see loadtest/answers.ts) and, for fine-tuning, that no acknowledged update was
 * lost. Writes report.json and report.svg (latency and throughput over time) to --out, and
 * exits 1 when a check fails. Bounded by construction: --url is required, and duration,
 * connections and request count have hard caps.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import { AnswerCheck, accuracyFloor, topLabel } from "./loadtest/answers.ts";
import { DATASETS, finetuneBody, makePayloads, type Payload } from "./loadtest/payloads.ts";
import { chartSvg, isError, statusCounts, timeline, type Sample } from "./loadtest/report.ts";
import { quantile } from "./stats.ts";

const CAPS = { durationS: 600, connections: 512, requests: 1_000_000 };
const IMAGES = 40;
const SLOTS = 100;

const USAGE = `usage: npm run loadtest -- --url <base URL> [--model id] [--connections N] [--duration 30s]
       [--finetune-ratio 0.1] [--key <API key>] [--max-requests N] [--out dir]`;

function fail(message: string): never {
  console.error(`loadtest: ${message}`);
  process.exit(2);
}

/**
 * Seconds in "30s", "2m", "90" (seconds).
 *
 * @example
 * parseDuration("2m"); // 120
 */
function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(s|m)?$/.exec(text.trim());
  if (!match) fail(`--duration must look like 30s, 2m or 45, not '${text}'`);
  return Number(match[1]) * (match[2] === "m" ? 60 : 1);
}

function number(name: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value < min || value > max) fail(`--${name} must be a number from ${min} to ${max}, not '${text}'`);
  return value;
}

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    model: { type: "string" },
    connections: { type: "string", default: "8" },
    duration: { type: "string", default: "30s" },
    "finetune-ratio": { type: "string", default: "0" },
    key: { type: "string", default: process.env.CNN_EDGE_API_KEY },
    "max-requests": { type: "string", default: "100000" },
    out: { type: "string" },
    help: { type: "boolean", default: false },
  },
});
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}
if (!args.url) fail(`--url is required: the load test never picks a target by itself.\n${USAGE}`);
let base: URL;
try {
  base = new URL(args.url);
} catch {
  fail(`--url must be an absolute http(s) URL, not '${args.url}'`);
}
if (base.protocol !== "http:" && base.protocol !== "https:") fail(`--url must be http(s), not ${base.protocol}`);
const durationS = parseDuration(args.duration);
if (durationS <= 0 || durationS > CAPS.durationS) fail(`--duration must be more than 0 and at most ${CAPS.durationS}s`);
const connections = number("connections", args.connections, 1, CAPS.connections);
// At most 0.9, so that classify answers are always there to check.
const finetuneRatio = number("finetune-ratio", args["finetune-ratio"], 0, 0.9);
const maxRequests = number("max-requests", args["max-requests"], 1, CAPS.requests);
if (finetuneRatio > 0 && !args.key) fail("--finetune-ratio needs --key (a full-access API key): fine-tuning changes state");
const auth: Record<string, string> = args.key ? { authorization: `Bearer ${args.key}` } : {};

async function request(path: string, init: RequestInit = {}): Promise<{ status: number; text: string }> {
  const res = await fetch(new URL(path, base), { ...init, headers: { ...auth, ...(init.headers as Record<string, string>) }, signal: AbortSignal.timeout(60_000) });
  return { status: res.status, text: await res.text() };
}

/** "401 Authentication required: ..." from a problem+json body, or the raw start of any other. */
function describeFailure(status: number, text: string): string {
  try {
    const problem = JSON.parse(text) as { title?: string; detail?: string };
    if (problem.title) return `${status} ${problem.title}${problem.detail ? `: ${problem.detail}` : ""}`;
  } catch {
    // not JSON: fall through
  }
  return `${status} ${text.slice(0, 120)}`;
}

// --- Before the load -------------------------------------------------------------------------
const health = await request("/healthz").catch((err: Error) => fail(`cannot reach ${base.origin}: ${err.message}`));
if (health.status !== 200) fail(`GET /healthz: ${describeFailure(health.status, health.text)}`);
const modelId = args.model ?? (JSON.parse(health.text) as { defaultModel: string }).defaultModel;
const manifestResponse = await request(`/v1/models/${encodeURIComponent(modelId)}`);
if (manifestResponse.status !== 200) fail(`model '${modelId}': ${describeFailure(manifestResponse.status, manifestResponse.text)}`);
const manifest = JSON.parse(manifestResponse.text) as {
  dataset: string;
  metrics: { validationAccuracy?: number; testAccuracy?: number };
  serving: { servable: boolean };
};
if (!manifest.serving.servable) fail(`model '${modelId}' is listed but not servable in a Worker; pick another --model`);
if (!DATASETS.includes(manifest.dataset)) fail(`model '${modelId}' is trained on ${manifest.dataset}; the load test has images of ${DATASETS.join(", ")}`);
const payloads = await makePayloads(manifest.dataset, IMAGES);
const classifyPath = `/v1/models/${encodeURIComponent(modelId)}/classify?top_k=1`;

console.log(`loadtest: ${base.origin}, model ${modelId} (${manifest.dataset}), ${IMAGES} images; reference answers...`);
const reference: (string | undefined)[] = [];
for (const payload of payloads) {
  const res = await request(classifyPath, { method: "POST", headers: { "content-type": payload.contentType }, body: new Uint8Array(payload.bytes) });
  if (res.status !== 200) fail(`reference answer for ${payload.name}: ${describeFailure(res.status, res.text)}${res.status === 401 ? " (pass --key)" : ""}`);
  reference.push(topLabel(res.text));
}
const referenceCorrect = reference.filter((label, i) => label === payloads[i]!.label).length;
const modelAccuracy = manifest.metrics.validationAccuracy ?? manifest.metrics.testAccuracy ?? 0;
const floor = accuracyFloor(modelAccuracy, IMAGES);

const classifier = finetuneRatio > 0 ? `loadtest-${modelId}-${Date.now().toString(36)}` : undefined;
let finetuneBodies: { body: Buffer; contentType: string }[] = [];
if (classifier) {
  const created = await request("/v1/classifiers", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ id: classifier, backbone: modelId, init: "empty" }),
  });
  if (created.status !== 201) fail(`creating classifier ${classifier}: ${describeFailure(created.status, created.text)}`);
  const small = payloads.filter((p) => p.variant === "original");
  finetuneBodies = await Promise.all(Array.from({ length: small.length / 2 }, (_, i) => finetuneBody(small.slice(2 * i, 2 * i + 2))));
}

// --- The load --------------------------------------------------------------------------------
/** Which request each of SLOTS consecutive requests is: a classify image index, or a fine-tune body. */
type Slot = { kind: "classify"; image: number } | { kind: "finetune"; body: number };
const plan: Slot[] = [];
for (let k = 0, image = 0, body = 0; k < SLOTS; k++) {
  const finetune = Math.floor((k + 1) * finetuneRatio) > Math.floor(k * finetuneRatio);
  plan.push(finetune ? { kind: "finetune", body: body++ % finetuneBodies.length } : { kind: "classify", image: image++ % IMAGES });
}

const answers = new AnswerCheck(payloads, reference);
const samples: Sample[] = [];
const errorMessages: Record<string, number> = {};
const finetune = { sent: 0, acknowledged: 0 };
let next = 0;
let started = 0;

function slotRequest(slot: Slot): { method: "POST"; path: string; headers: Record<string, string>; body: Buffer } {
  if (slot.kind === "classify") {
    const payload: Payload = payloads[slot.image]!;
    return { method: "POST", path: classifyPath, headers: { ...auth, "content-type": payload.contentType }, body: payload.bytes };
  }
  const { body, contentType } = finetuneBodies[slot.body]!;
  return { method: "POST", path: `/finetune?classifier=${classifier}`, headers: { ...auth, "content-type": contentType }, body };
}

let finish: (result: autocannon.Result) => void = () => {};
const done = new Promise<autocannon.Result>((resolve) => (finish = resolve));
const instance = autocannon({
  url: base.origin,
  connections,
  duration: durationS,
  maxOverallRequests: maxRequests, // not `amount`, which would make autocannon ignore the duration
  timeout: 30,
  requests: [
    {
      // The context belongs to this connection's request in flight (autocannon records the
      // answer before it builds the next request), so the answer can be checked against it.
      setupRequest: (req, context) => {
        const slot = plan[next++ % plan.length]!;
        (context as { slot?: Slot }).slot = slot;
        if (slot.kind === "finetune") finetune.sent++;
        const { path, ...rest } = slotRequest(slot);
        return { ...req, ...rest, path: `${base.pathname.replace(/\/$/, "")}${path}` };
      },
      onResponse: (status, body, context) => {
        const slot = (context as { slot?: Slot }).slot;
        if (status < 200 || status >= 300) {
          const message = describeFailure(status, body);
          errorMessages[message] = (errorMessages[message] ?? 0) + 1;
        } else if (slot?.kind === "classify") {
          answers.record(slot.image, body);
        } else if (slot?.kind === "finetune") {
          finetune.acknowledged++;
        }
      },
    },
  ],
}, (err, result) => (err ? fail(`load generator: ${err.message}`) : finish(result)));
instance.on("start", () => (started = Date.now()));
instance.on("response", (_client, status: number, _bytes: number, latencyMs: number) => {
  samples.push({ at: Date.now() - started, latencyMs, status });
});
instance.on("reqError", (err: Error) => {
  samples.push({ at: Date.now() - started, latencyMs: 0, status: 0 });
  errorMessages[err.message] = (errorMessages[err.message] ?? 0) + 1;
});

// Progress: one line every 5 s (and a redrawn line on a terminal every second).
const progress = setInterval(() => {
  const now = Date.now() - started;
  const recent = samples.filter((s) => s.at > now - 5000);
  const line = `loadtest: ${(now / 1000).toFixed(0)}/${durationS}s  ${samples.length} responses  ${(recent.length / 5).toFixed(0)} req/s  p99 ${quantile(recent.map((s) => s.latencyMs), 0.99).toFixed(0)} ms  errors ${samples.filter(isError).length}  checked ${answers.summary().checked}`;
  if (process.stdout.isTTY) process.stdout.write(`\r${line}   `);
  else if (Math.round(now / 1000) % 5 === 0) console.log(line);
}, 1000);
// A second bound, in case the server holds requests open past the duration.
const hardStop = setTimeout(() => instance.stop(), (durationS + 35) * 1000);
const result = await done;
clearInterval(progress);
clearTimeout(hardStop);
if (process.stdout.isTTY) process.stdout.write("\n");

// --- After the load --------------------------------------------------------------------------
let finetuneReport: Record<string, unknown> | undefined;
if (classifier) {
  const info = await request(`/v1/classifiers/${classifier}`);
  const version = info.status === 200 ? (JSON.parse(info.text) as { version: number }).version : NaN;
  // Every acknowledged update made a version; requests cut off at the end may have too.
  const lost = Number.isNaN(version) ? finetune.acknowledged : Math.max(0, 1 + finetune.acknowledged - version);
  const unexplained = Math.max(0, version - 1 - finetune.sent);
  await request(`/v1/classifiers/${classifier}`, { method: "DELETE" });
  finetuneReport = { classifier, sent: finetune.sent, acknowledged: finetune.acknowledged, finalVersion: version, lostUpdates: lost, unexplainedVersions: unexplained, deleted: true };
}

const latencies = samples.filter((s) => s.status !== 0).map((s) => s.latencyMs);
const errors = samples.filter(isError).length;
const statusCodes = statusCounts(samples);
const seconds = timeline(samples);
const checks = answers.summary();
const failures = [
  errors > 0 && `${errors} requests failed or got non-2xx answers`,
  checks.checked === 0 && "no answer was checked",
  checks.inconsistent > 0 && `${checks.inconsistent} answers differ from the reference answer for the same image`,
  referenceCorrect / IMAGES < floor && `reference accuracy ${(referenceCorrect / IMAGES).toFixed(3)} is below the floor ${floor.toFixed(3)} for a model measured at ${modelAccuracy}`,
  checks.checked > 0 && checks.accuracy < floor && `accuracy under load ${checks.accuracy.toFixed(3)} is below the floor ${floor.toFixed(3)}`,
  finetuneReport && finetuneReport.lostUpdates !== 0 && `fine-tuning lost ${finetuneReport.lostUpdates} acknowledged updates`,
  finetuneReport && finetuneReport.unexplainedVersions !== 0 && `the classifier has ${finetuneReport.unexplainedVersions} more versions than updates sent`,
].filter((f): f is string => typeof f === "string");

const report = {
  target: base.origin,
  model: modelId,
  startedAt: new Date(started).toISOString(),
  options: { connections, durationS, finetuneRatio, maxRequests, images: IMAGES, authenticated: Boolean(args.key) },
  durationS: result.duration,
  requests: { total: samples.length, perSecond: samples.length / result.duration, errors, timeouts: result.timeouts },
  latencyMs: { p50: quantile(latencies, 0.5), p90: quantile(latencies, 0.9), p99: quantile(latencies, 0.99), max: Math.max(0, ...latencies) },
  statusCodes,
  errorMessages,
  checks: { ...checks, referenceAccuracy: referenceCorrect / IMAGES, modelAccuracy, accuracyFloor: floor },
  ...(finetuneReport ? { finetune: finetuneReport } : {}),
  timeline: seconds,
  passed: failures.length === 0,
  failures,
};

const out = resolve(args.out ?? join("loadtest-results", `${modelId}-c${connections}-${new Date(started).toISOString().replace(/[:.]/g, "-")}`));
mkdirSync(out, { recursive: true });
writeFileSync(join(out, "report.json"), `${JSON.stringify(report, null, 2)}\n`);
writeFileSync(join(out, "report.svg"), chartSvg(`${modelId} at ${base.host}: ${connections} connections, ${durationS}s`, seconds));

const ms = (v: number) => `${v.toFixed(1)} ms`;
console.log(`
| target | model | connections | requests | req/s | p50 | p90 | p99 | max | errors | checked | accuracy | inconsistent |
|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
| ${base.host} | ${modelId} | ${connections} | ${samples.length} | ${report.requests.perSecond.toFixed(1)} | ${ms(report.latencyMs.p50)} | ${ms(report.latencyMs.p90)} | ${ms(report.latencyMs.p99)} | ${ms(report.latencyMs.max)} | ${errors} | ${checks.checked} | ${(checks.accuracy * 100).toFixed(1)} % | ${checks.inconsistent} |
`);
console.log(`status codes: ${JSON.stringify(statusCodes)}`);
for (const [message, count] of Object.entries(errorMessages)) console.log(`  ${count} x ${message}`);
if (finetuneReport) console.log(`fine-tuning: ${finetune.acknowledged} updates acknowledged, classifier at version ${finetuneReport.finalVersion}, lost ${finetuneReport.lostUpdates}`);
console.log(`report: ${join(out, "report.json")}, chart: ${join(out, "report.svg")}`);
console.log(report.passed ? "loadtest: PASSED" : `loadtest: FAILED\n  ${failures.join("\n  ")}`);
process.exit(report.passed ? 0 : 1);
