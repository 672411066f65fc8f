/**
 * Dynamic batching: concurrent requests for one model are run as one batch, and each caller
 * gets its own rows back.
 *
 * A request announces itself (`expect()`) before decoding its images and submits them when
 * they are ready. A batch starts as soon as one of these holds:
 * - no other announced request is still decoding (waiting could only add latency: a lone
 *   request never waits, so batching costs nothing at concurrency 1);
 * - the waiting images reach `maxBatch`;
 * - `windowMs` have passed since a waiting request submitted.
 * While a batch runs (ORT's WASM backend runs one thing at a time per isolate), new
 * submissions queue and form the next one, which starts one task after the batch before, once
 * that one's answers have gone out.
 */
import type { InferenceResult } from "../engine/engine";
import type { OutputName } from "../models/manifest";

/** How a model's requests are batched (models/<id>/config.json, `dynamicBatching`). */
export interface BatchingPolicy {
  /** Most images in one batch; 1 turns batching off. A request with more images runs alone. */
  maxBatch: number;
  /** Longest a submitted request waits for others that are still decoding. */
  windowMs: number;
}

/** What a caller learns about the batch its images ran in. */
export interface BatchInfo {
  /** Images in the batch, this request's included. */
  images: number;
  /** Requests in the batch. */
  requests: number;
  /** Time from submitting to the batch starting. */
  queueMs: number;
  /** The batch's model run. */
  inferenceMs: number;
}

export type BatchedResult = InferenceResult & { batch: BatchInfo };

/** Runs one batch: rows of CHW inputs, `count` of them, fetching the outputs named. */
export type BatchRunner = (input: Float32Array, count: number, names: readonly OutputName[]) => Promise<InferenceResult>;

/** A request's place in the batcher, from announcing it to submitting its images. */
export interface BatchSlot {
  /** Queue this request's images; resolves with its rows of the batch's outputs. */
  submit(input: Float32Array, count: number, names: readonly OutputName[]): Promise<BatchedResult>;
  /** The request will not submit (its images failed to decode): stop waiting for it. */
  cancel(): void;
}

/** What a waiting request is woken with: its rows, the batch's error, or the batch to run. */
type Turn = { kind: "done"; result: BatchedResult } | { kind: "failed"; error: unknown } | { kind: "lead"; batch: Waiting[] };

interface Waiting {
  input: Float32Array;
  count: number;
  names: readonly OutputName[];
  submittedAt: number;
  /** Its window has passed. */
  expired: boolean;
  wake(turn: Turn): void;
}

/**
 * Collects the requests of one model in one isolate into batches.
 *
 * Each batch runs in the request context of one of its own requests (the oldest, its leader),
 * never in that of whoever noticed it was ready: in workerd a request's timers and promise
 * continuations die with it, and a request that has answered would take the batch with it.
 *
 * @example
 * const batcher = new DynamicBatcher((input, count, names) => session.run(input, count, names), { maxBatch: 32, windowMs: 2 });
 * const slot = batcher.expect();
 * const input = await decodeAndPreprocess(request); // others may submit meanwhile
 * const { outputs, batch } = await slot.submit(input, 1, ["logits"]);
 */
export class DynamicBatcher {
  private readonly run: BatchRunner;
  private readonly policy: BatchingPolicy;
  private waiting: Waiting[] = [];
  private decoding = 0;
  private busy = false;

  constructor(run: BatchRunner, policy: BatchingPolicy) {
    this.run = run;
    this.policy = policy;
  }

  /**
   * Announce a request whose images are on their way. `keepAlive` (the request's waitUntil)
   * holds its context open for the hand-over to the next batch, should it lead one.
   */
  expect(keepAlive: (promise: Promise<unknown>) => void = () => {}): BatchSlot {
    this.decoding++;
    let open = true;
    const close = () => {
      if (open) this.decoding--;
      open = false;
    };
    return {
      submit: (input, count, names) => {
        close();
        return this.enqueue(input, count, names, keepAlive);
      },
      cancel: () => {
        close();
        this.dispatch();
      },
    };
  }

  private async enqueue(
    input: Float32Array,
    count: number,
    names: readonly OutputName[],
    keepAlive: (promise: Promise<unknown>) => void,
  ): Promise<BatchedResult> {
    let waiting!: Waiting;
    const turn = new Promise<Turn>((wake) => {
      waiting = { input, count, names, submittedAt: performance.now(), expired: this.policy.windowMs <= 0, wake };
    });
    this.waiting.push(waiting);
    // Every waiting request has a timer of its own, which dies with it.
    if (!waiting.expired) {
      setTimeout(() => {
        waiting.expired = true;
        if (this.waiting.includes(waiting)) this.dispatch();
      }, this.policy.windowMs);
    }
    this.dispatch();

    const woken = await turn;
    if (woken.kind === "done") return woken.result;
    if (woken.kind === "failed") throw woken.error;
    try {
      return await this.lead(woken.batch);
    } finally {
      // The next batch starts a task later: workerd writes responses between tasks, and a
      // batch handed straight on would hold every answer until the queue ran dry.
      keepAlive(
        new Promise<void>((resume) => setTimeout(resume, 0)).then(() => {
          this.busy = false;
          this.dispatch();
        }),
      );
    }
  }

  /** Hand the next batch, if one is due, to its leader. Starts nothing in this context. */
  private dispatch(): void {
    if (this.busy || !this.waiting.length) return;
    const images = this.waiting.reduce((sum, w) => sum + w.count, 0);
    if (this.decoding > 0 && images < this.policy.maxBatch && !this.waiting.some((w) => w.expired)) return;
    const batch = this.takeBatch();
    this.busy = true;
    batch[0]!.wake({ kind: "lead", batch });
  }

  /** The oldest waiting requests, as many as fit maxBatch (the oldest always, whatever its size). */
  private takeBatch(): Waiting[] {
    let images = 0;
    let taken = 0;
    while (taken < this.waiting.length && (taken === 0 || images + this.waiting[taken]!.count <= this.policy.maxBatch)) {
      images += this.waiting[taken]!.count;
      taken++;
    }
    return this.waiting.splice(0, taken);
  }

  /** Run a batch (the leader is its first request), wake the others with their rows, return the leader's. */
  private async lead(batch: Waiting[]): Promise<BatchedResult> {
    const count = batch.reduce((sum, w) => sum + w.count, 0);
    const names = [...new Set(batch.flatMap((w) => w.names))];
    const input = batch.length === 1 ? batch[0]!.input : concat(batch.map((w) => w.input));
    const started = performance.now();
    let result: InferenceResult;
    try {
      result = await this.run(input, count, names);
    } catch (error) {
      for (const w of batch.slice(1)) w.wake({ kind: "failed", error });
      throw error;
    }
    const inferenceMs = performance.now() - started;
    let row = 0;
    const rows = batch.map((w) => {
      const mine: BatchedResult = {
        outputs: {},
        sizes: {},
        batch: { images: count, requests: batch.length, queueMs: started - w.submittedAt, inferenceMs },
      };
      for (const name of w.names) {
        const width = result.sizes[name]!;
        mine.sizes[name] = width;
        mine.outputs[name] = result.outputs[name]!.slice(row * width, (row + w.count) * width);
      }
      row += w.count;
      return mine;
    });
    for (const [i, w] of batch.entries()) if (i > 0) w.wake({ kind: "done", result: rows[i]! });
    return rows[0]!;
  }
}

function concat(parts: Float32Array[]): Float32Array {
  const joined = new Float32Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.length;
  }
  return joined;
}

/** What a model gets when its config.json says nothing. */
export const DEFAULT_BATCHING: BatchingPolicy = { maxBatch: 32, windowMs: 2 };

/**
 * The policy a model is served with: its config's settings over the defaults, unless the
 * deployment's DYNAMIC_BATCHING var is "off", which runs every request on its own.
 *
 * @example
 * batchingPolicy({ maxBatch: 1 }, "on"); // { maxBatch: 1, windowMs: 2 }
 */
export function batchingPolicy(configured: Partial<BatchingPolicy> | undefined, deployment: string | undefined): BatchingPolicy {
  if (deployment === "off") return { maxBatch: 1, windowMs: 0 };
  return { ...DEFAULT_BATCHING, ...configured };
}
