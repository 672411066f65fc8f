/**
 * Per-key rate limits, with Cloudflare's Workers Rate Limiting binding: one binding per key scope
 * (`WRITE_RATE_LIMIT` for routes that change state, `CLASSIFY_RATE_LIMIT` for classify routes
 * where CLASSIFY_ACCESS is "key"), each a limit of requests per period per API key, set in
 * wrangler.toml for every environment (Miniflare implements the binding locally and in tests;
 * `npm run serve` gives plain workerd a stand-in, scripts/workerd/rate-limit.js). Counts are
 * per Cloudflare location and approximate, which is what this binding is for: a guard against a
 * runaway client, not billing. A host without the binding (the Node host) has no rate limit.
 */
import { RateLimitedError } from "../problems/problems";
import { RATE_LIMIT_PERIOD_S } from "./rate-limit-period";

/** The part of a Workers Rate Limiting binding this uses (workers-types' RateLimit). */
interface RateLimitBinding {
  limit(options: { key: string }): Promise<{ success: boolean }>;
}

/** The bindings, one per key scope, where the host has them. */
export interface RateLimitBindings {
  WRITE_RATE_LIMIT?: RateLimitBinding;
  CLASSIFY_RATE_LIMIT?: RateLimitBinding;
}

/**
 * A key's stable, non-secret id for counting: the first 16 hex digits of its SHA-256.
 *
 * @example
 * await keyId("my-key"); // "a7b1…" (16 characters)
 */
export async function keyId(key: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key)));
  return [...digest.subarray(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Seconds until the current window of `period` seconds ends: the binding's windows are fixed and
 * start on multiples of the period (Miniflare's exactly; on Cloudflare an estimate).
 *
 * @example
 * secondsToWindowEnd(60, 125_000); // 55
 */
export function secondsToWindowEnd(period: number, nowMs = Date.now()): number {
  return Math.max(1, Math.ceil(period - (nowMs / 1000) % period));
}

/**
 * Count one request of the `scope` (a route's access: write or classify) for the key, refusing it when the key is over its limit.
 *
 * @throws RateLimitedError (429, Retry-After) over the limit
 * @example
 * await enforceRateLimit(c.env, "write", token);
 */
export async function enforceRateLimit(env: RateLimitBindings, scope: "write" | "classify", key: string): Promise<void> {
  const binding = scope === "write" ? env.WRITE_RATE_LIMIT : env.CLASSIFY_RATE_LIMIT;
  if (!binding) return;
  const { success } = await binding.limit({ key: await keyId(key) });
  if (!success) throw new RateLimitedError(scope, secondsToWindowEnd(RATE_LIMIT_PERIOD_S));
}
