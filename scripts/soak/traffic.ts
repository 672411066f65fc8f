/**
 * Sustained mixed traffic against a cnn-edge deployment, the way a real one sees it: `clients`
 * HTTP/1.1 clients, each sending one request after another from a weighted mix. Some requests
 * are meant to be refused (each names the 4xx it must get); some clients hang up on purpose,
 * before sending their whole body or before reading the answer. Every answer is tallied into
 * windows of `windowS` seconds: requests, status classes, latency, and what `probe` reads at
 * the window's end (memory).
 */
import http from "node:http";
import { quantile } from "../stats.ts";

/** One request of the mix. */
export interface TrafficRequest {
  /** What it is, for the report: "lenet single", "bad: truncated png". */
  kind: string;
  method?: "GET" | "POST" | "DELETE";
  path: string;
  headers?: Record<string, string>;
  body?: Buffer;
  /** The status it must get: a number, or "2xx". */
  expect: number | "2xx";
  /** Hang up after sending part of the body, or after sending it all without reading the answer. */
  hangUp?: "mid-body" | "before-answer";
  /** Checks a 2xx answer's body; a returned string is a failure. */
  check?: (body: string) => string | undefined;
}

export interface WeightedRequest {
  weight: number;
  /** A new request each time (it may vary its payload). */
  make: () => TrafficRequest;
}

/** What one window saw. */
export interface TrafficWindow {
  /** Seconds from the start to the window's end. */
  t: number;
  requests: number;
  ok: number;
  /** Refusals that were the expected 4xx. */
  expected4xx: number;
  /** Answers other than expected: a wrong 4xx, a 2xx where a 4xx was due, or a failed check. */
  unexpected: number;
  serverErrors: number;
  /** Connection errors and timeouts of requests that did not hang up on purpose. */
  failed: number;
  /** Requests whose client hung up on purpose. */
  hungUp: number;
  p50Ms: number;
  p99Ms: number;
  /** What `probe` returned at the window's end. */
  probe: Record<string, number | undefined>;
}

export interface TrafficOptions {
  base: URL;
  mix: WeightedRequest[];
  clients: number;
  durationS: number;
  windowS: number;
  /** Read at every window's end (e.g. workerd's RSS, /healthz memory); undefined where unknown. */
  probe?: () => Promise<Record<string, number | undefined>>;
  /** Per-request time limit. */
  timeoutMs?: number;
  onWindow?: (window: TrafficWindow) => void;
}

export interface TrafficResult {
  windows: TrafficWindow[];
  /** Totals over the run. */
  totals: Omit<TrafficWindow, "t" | "p50Ms" | "p99Ms" | "probe">;
  /** Unexpected answers and server errors by kind and status, with a body excerpt. */
  surprises: Record<string, number>;
  byKind: Record<string, { requests: number; p50Ms: number; p99Ms: number }>;
}

type Outcome = { kind: "ok" | "expected4xx" | "unexpected" | "serverError" | "failed" | "hungUp"; latencyMs: number; note?: string };

function send(agent: http.Agent, base: URL, req: TrafficRequest, timeoutMs: number): Promise<{ status: number; body: string } | { error: string } | { hungUp: true }> {
  return new Promise((resolve) => {
    const client = http.request(
      new URL(req.path, base),
      { method: req.method ?? (req.body ? "POST" : "GET"), agent, headers: { ...req.headers, ...(req.body ? { "content-length": String(req.body.length) } : {}) }, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", (err) => resolve({ error: err.message }));
      },
    );
    client.on("timeout", () => client.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    client.on("error", (err) => resolve(req.hangUp ? { hungUp: true } : { error: err.message }));
    const body = req.body ?? Buffer.alloc(0);
    if (req.hangUp === "mid-body") {
      client.flushHeaders();
      client.write(body.subarray(0, Math.max(1, body.length >> 1)), () => setTimeout(() => (client.destroy(), resolve({ hungUp: true })), 1 + Math.random() * 5));
    } else if (req.hangUp === "before-answer") {
      client.end(body, () => setTimeout(() => (client.destroy(), resolve({ hungUp: true })), Math.random() * 3));
    } else {
      client.end(body);
    }
  });
}

function classify(req: TrafficRequest, answer: Awaited<ReturnType<typeof send>>, latencyMs: number): Outcome {
  if ("hungUp" in answer) return { kind: "hungUp", latencyMs };
  if ("error" in answer) return { kind: "failed", latencyMs, note: `${req.kind}: ${answer.error}` };
  const { status, body } = answer;
  const excerpt = body.slice(0, 160).replace(/\s+/g, " ");
  if (status >= 500) return { kind: "serverError", latencyMs, note: `${req.kind}: ${status} ${excerpt}` };
  if (req.expect === "2xx") {
    if (status < 200 || status >= 300) return { kind: "unexpected", latencyMs, note: `${req.kind}: ${status} ${excerpt}` };
    const problem = req.check?.(body);
    return problem ? { kind: "unexpected", latencyMs, note: `${req.kind}: ${problem}` } : { kind: "ok", latencyMs };
  }
  return status === req.expect ? { kind: "expected4xx", latencyMs } : { kind: "unexpected", latencyMs, note: `${req.kind}: ${status}, expected ${req.expect}: ${excerpt}` };
}

function pick(mix: WeightedRequest[], total: number): TrafficRequest {
  let r = Math.random() * total;
  for (const entry of mix) if ((r -= entry.weight) < 0) return entry.make();
  return mix.at(-1)!.make();
}

const emptyCounts = () => ({ requests: 0, ok: 0, expected4xx: 0, unexpected: 0, serverErrors: 0, failed: 0, hungUp: 0 });
const COUNTER: Record<Outcome["kind"], keyof ReturnType<typeof emptyCounts>> = {
  ok: "ok",
  expected4xx: "expected4xx",
  unexpected: "unexpected",
  serverError: "serverErrors",
  failed: "failed",
  hungUp: "hungUp",
};

/**
 * Run the mix for `durationS` seconds and report it window by window.
 *
 * @example
 * const { windows, totals } = await runTraffic({ base, mix, clients: 32, durationS: 600, windowS: 30 });
 */
export async function runTraffic({ base, mix, clients, durationS, windowS, probe, timeoutMs = 60_000, onWindow }: TrafficOptions): Promise<TrafficResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const total = mix.reduce((sum, entry) => sum + entry.weight, 0);
  const started = performance.now();
  const end = started + durationS * 1000;
  const windows: TrafficWindow[] = [];
  const surprises: Record<string, number> = {};
  const latencies: Record<string, number[]> = {};
  let current = emptyCounts();
  let windowLatencies: number[] = [];
  const totals = emptyCounts();

  const closeWindow = async (t: number) => {
    const counts = current;
    const values = windowLatencies;
    current = emptyCounts();
    windowLatencies = [];
    const window: TrafficWindow = { t, ...counts, p50Ms: quantile(values, 0.5), p99Ms: quantile(values, 0.99), probe: (await probe?.().catch(() => ({}))) ?? {} };
    windows.push(window);
    onWindow?.(window);
  };
  let windowEnd = windowS;
  const ticker = setInterval(() => {
    const elapsed = (performance.now() - started) / 1000;
    if (elapsed >= windowEnd && windowEnd <= durationS) {
      void closeWindow(windowEnd);
      windowEnd += windowS;
    }
  }, 200);

  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < end) {
        const req = pick(mix, total);
        const sent = performance.now();
        const outcome = classify(req, await send(agent, base, req, timeoutMs), performance.now() - sent);
        for (const counts of [current, totals]) {
          counts.requests++;
          counts[COUNTER[outcome.kind]]++;
        }
        if (outcome.kind === "ok" || outcome.kind === "expected4xx") {
          windowLatencies.push(outcome.latencyMs);
          (latencies[req.kind] ??= []).push(outcome.latencyMs);
        }
        if (outcome.note) surprises[outcome.note] = (surprises[outcome.note] ?? 0) + 1;
      }
    }),
  );
  clearInterval(ticker);
  if (windowEnd <= durationS + 1e-9 && current.requests > 0) await closeWindow(windowEnd);
  agent.destroy();
  const byKind = Object.fromEntries(Object.entries(latencies).map(([kind, values]) => [kind, { requests: values.length, p50Ms: quantile(values, 0.5), p99Ms: quantile(values, 0.99) }]));
  return { windows, totals, surprises, byKind };
}
