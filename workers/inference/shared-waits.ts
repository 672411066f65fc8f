/**
 * Waiting on work that other requests do, the one way that holds up in workerd.
 *
 * State that outlives a request (batchers, sessions, run queues) is shared by every request of
 * the isolate, but each request's code must run in its own I/O context. Two rules keep it so:
 *
 * - **Settle only promises you created.** Resolving a promise that another request created
 *   and awaits (workerd defers the settlement into that request's context) stopped doing so
 *   reliably under sustained load: after some 10,000-35,000 requests, continuations ran in the
 *   resolving request's context instead, their responses failed with "Cannot perform I/O on
 *   behalf of a different request", and every later hand-over inherited the wrong context
 *   (issue 16; workerd 1.20261023.1 and 1.20261117.1 alike). Awaiting a promise that another
 *   request created and settles itself is safe: workerd wakes the waiter through its own
 *   context's event loop. So a `Signal` is made and settled by one request, and awaited by others.
 * - **Never wait on another request without a timer of your own.** A request's context can end
 *   before it settles what it promised (on Cloudflare, 30 s after its client left; or cancelled
 *   by the runtime), and its continuations never run. `waitForAny` always races a timer of the
 *   waiting request's own, after which the caller looks at the shared state again.
 */

/** A promise and the one function that settles it: made, and settled, by the same request. */
export interface Signal {
  promise: Promise<void>;
  settle(): void;
}

/**
 * A new Signal, owned by the calling request: only it calls `settle`, others await `promise`.
 *
 * @example
 * const finished = signal(); // this request's
 * shared.finished = finished; // others: await waitForAny([shared.finished.promise], 1000)
 * finished.settle();
 */
export function signal(): Signal {
  let settle!: () => void;
  const promise = new Promise<void>((resolve) => (settle = resolve));
  return { promise, settle };
}

/** A timer of the calling request's own, with its cancellation. */
export function sleep(ms: number): { promise: Promise<void>; cancel(): void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const promise = new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, ms))));
  return { promise, cancel: () => timer !== undefined && clearTimeout(timer) };
}

/** Longest a request stays (`keepAlive`) after a wait, for the promises it followed that are still pending. */
export const LINGER_MS = 30_000;

/**
 * Wait until one of `promises` settles (fulfilled or rejected alike) or `ms` pass, whichever
 * is first; never throws.
 *
 * Awaiting another request's promise leaves a follower behind on it in this request's context
 * (workerd's way of waking this one), which that promise settles later. If this request has
 * ended by then, workerd logs "A promise was resolved or rejected from a different request
 * context ..." for each: harmless, but noise an operator should not have to read. Pass the
 * request's waitUntil as `keepAlive` and the request stays until those promises have settled
 * (at most LINGER_MS).
 *
 * @returns true when one of the promises settled, false when the time ran out
 * @example
 * if (!(await waitForAny([ahead.finished.promise], 1000, (p) => ctx.waitUntil(p)))) checkWhetherAheadIsStalled();
 */
export async function waitForAny(promises: Promise<unknown>[], ms: number, keepAlive?: (promise: Promise<unknown>) => void): Promise<boolean> {
  const followed = promises.map((p) => p.then(settledTrue, settledTrue));
  const timer = sleep(ms);
  try {
    return await Promise.race([...followed, timer.promise.then(() => false)]);
  } finally {
    timer.cancel();
    if (keepAlive && followed.length) {
      const linger = sleep(LINGER_MS);
      keepAlive(Promise.race([Promise.all(followed), linger.promise]).then(() => linger.cancel()));
    }
  }
}

const settledTrue = () => true;
