/**
 * A client's own deadline: `timeout_ms` on the query, the longest it will wait for this answer.
 * Work whose deadline has passed is dropped before it is decoded or batched (workers/admission).
 */
import { InvalidParameterError } from "../problems/problems";

/** The longest deadline a client may set: a Worker request has no reason to wait longer. */
export const MAX_TIMEOUT_MS = 120_000;

/**
 * The deadline (on `performance.now()`'s clock) that `timeout_ms` sets from `arrivedAt`, or undefined without one.
 *
 * @throws InvalidParameterError when timeout_ms is not an integer from 1 to MAX_TIMEOUT_MS
 * @example
 * deadlineFrom("1500", performance.now()); // now + 1500
 */
export function deadlineFrom(timeoutMs: string | undefined, arrivedAt: number): number | undefined {
  if (timeoutMs === undefined) return undefined;
  const ms = Number(timeoutMs);
  if (!/^\d+$/.test(timeoutMs) || ms < 1 || ms > MAX_TIMEOUT_MS) {
    throw new InvalidParameterError("timeout_ms", `timeout_ms takes an integer number of milliseconds from 1 to ${MAX_TIMEOUT_MS}, not '${timeoutMs}'.`);
  }
  return arrivedAt + ms;
}
