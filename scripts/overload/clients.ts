/**
 * The overload benchmark's clients: each sends one request after another, as fast as answers
 * come, and records how each ended. A refusal counts as one only when it is what a client can
 * act on: a 503 or 429 problem+json with Retry-After.
 */
import http from "node:http";

/** One request of the mix. */
export interface OverloadRequest {
  kind: string;
  path: string;
  contentType: string;
  body: Buffer;
}

/** How one request ended. */
export interface Outcome {
  kind: string;
  latencyMs: number;
  /** "ok" (2xx), "refused" (a 503/429 problem with Retry-After), "bad" (any other answer), "timeout", "failed" (no answer). */
  result: "ok" | "refused" | "bad" | "timeout" | "failed";
  status: number;
  /** For refusals: the problem's reason (memory, queue-full, queue-time, deadline, rate-limit). */
  reason?: string;
  retryAfterS?: number;
  note?: string;
}

export interface ClientOptions {
  /** Send `Expect: 100-continue` with bodies over 1 MiB, as curl does: a refused request's body is then never sent. */
  expectContinue: boolean;
  /** Wait the Retry-After a refusal names before the client's next request. */
  honourRetryAfter: boolean;
  timeoutMs: number;
}

const EXPECT_ABOVE_BYTES = 1024 * 1024;

/**
 * Send one request and say how it ended.
 *
 * @example
 * const outcome = await send(agent, base, { kind: "photo", path: "/classify", contentType: "image/jpeg", body }, options);
 */
export function send(agent: http.Agent, base: URL, req: OverloadRequest, options: ClientOptions): Promise<Outcome> {
  const started = performance.now();
  const expect = options.expectContinue && req.body.length > EXPECT_ABOVE_BYTES;
  return new Promise((resolve) => {
    const done = (outcome: Omit<Outcome, "kind" | "latencyMs">) => resolve({ kind: req.kind, latencyMs: performance.now() - started, ...outcome });
    const client = http.request(
      new URL(req.path, base),
      { method: "POST", agent, timeout: options.timeoutMs, headers: { "content-type": req.contentType, "content-length": String(req.body.length), ...(expect ? { expect: "100-continue" } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", (err) => done({ result: "failed", status: 0, note: err.message }));
        res.on("end", () => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return done({ result: "ok", status });
          const retryAfterS = Number(res.headers["retry-after"]);
          const problem = /^application\/problem\+json/.test(String(res.headers["content-type"]));
          let reason: string | undefined;
          try {
            reason = (JSON.parse(Buffer.concat(chunks).toString("utf8")) as { reason?: string }).reason;
          } catch {
            // not JSON: a bad refusal
          }
          const refusal = (status === 503 || status === 429) && problem && Number.isFinite(retryAfterS) && retryAfterS > 0;
          done({ result: refusal ? "refused" : "bad", status, ...(reason ? { reason } : {}), ...(refusal ? { retryAfterS } : { note: `${status} ${Buffer.concat(chunks).toString("utf8").slice(0, 120)}` }) });
        });
      },
    );
    client.on("timeout", () => client.destroy(new Error("timeout")));
    client.on("error", (err) => done(err.message === "timeout" ? { result: "timeout", status: 0 } : { result: "failed", status: 0, note: err.message }));
    if (expect) {
      client.on("continue", () => client.end(req.body));
      client.flushHeaders();
    } else {
      client.end(req.body);
    }
  });
}

/**
 * `clients` clients, each sending requests picked by `next()` until `durationS` have passed.
 *
 * @example
 * const outcomes = await runClients(base, 256, 40, () => photoRequest, { expectContinue: true, honourRetryAfter: false, timeoutMs: 30_000 });
 */
export async function runClients(base: URL, clients: number, durationS: number, next: () => OverloadRequest, options: ClientOptions): Promise<Outcome[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const end = performance.now() + durationS * 1000;
  const outcomes: Outcome[] = [];
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < end) {
        const outcome = await send(agent, base, next(), options);
        outcomes.push(outcome);
        if (options.honourRetryAfter && outcome.retryAfterS) await new Promise((r) => setTimeout(r, Math.min(outcome.retryAfterS! * 1000, Math.max(0, end - performance.now()))));
      }
    }),
  );
  agent.destroy();
  return outcomes;
}
