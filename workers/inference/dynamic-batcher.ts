/**
 * Dynamic batching: concurrent requests for one model are run as one batch, and each caller
 * gets its own rows back.
 *
 * A request announces itself (`expect()`) before decoding its images and submits them when
 * they are ready. A batch starts as soon as one of these holds:
 * - no other announced request is still decoding (waiting could only add latency: a lone
 *   request never waits, so batching costs nothing at concurrency 1);
 * - the waiting images reach `maxBatch`;
 * - `windowMs` have passed since the batch's first request submitted.
 * One batch runs at a time (ORT's WASM backend runs one thing at a time per isolate); requests
 * that submit meanwhile form the next one, which starts when the one before has finished.
 *
 * ## Requests share this state, not their contexts
 *
 * The batcher outlives every request, and each request's code must run in its own context
 * (shared-waits.ts says why and how). So a request never wakes another by settling a promise
 * the other made: it settles its own (the batch's `finished`, its announcement's `settled`)
 * and the others await those. And every wait races the waiting request's own timer, after
 * which it looks at the shared state again: a leader whose context ended before it ran its
 * batch is taken over by another request of the batch (`TAKEOVER_AFTER_MS`); a batch nobody
 * can run any more is abandoned after `ABANDON_AFTER_MS` with a 503 to whoever still waits,
 * instead of blocking the model; an announced request that never submitted is forgotten after
 * `ANNOUNCEMENT_TTL_MS`.
 */
import type { InferenceResult } from "../engine/engine";
import type { OutputName } from "../models/manifest";
import { BatchAbandonedError } from "../problems/problems";
import { signal, sleep, waitForAny, type Signal } from "./shared-waits";

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

/**
 * What a request's admission says when its batch is about to start (workers/admission): an error
 * to answer instead of running its images (its deadline or its model's queue time passed, its
 * client left), or nothing, and then that its images are running.
 */
export interface BatchGate {
  overdue(): unknown;
  running(): void;
}

/** A request's place in the batcher, from announcing it to submitting its images. */
export interface BatchSlot {
  /** Queue this request's images; resolves with its rows of the batch's outputs (or rejects with what `gate` said at the batch's start). */
  submit(input: Float32Array, count: number, names: readonly OutputName[], gate?: BatchGate): Promise<BatchedResult>;
  /** The request will not submit (its images failed to decode): stop waiting for it. */
  cancel(): void;
}

/** How often a waiting request looks at the shared state on its own timer, whatever it was promised. */
export const RECHECK_MS = 1_000;
/** A due batch whose leader has not started it this long after it became due is run by another of its requests. */
export const TAKEOVER_AFTER_MS = 1_000;
/** A batch not finished this long after it became due (or started) has lost every request that could run it. */
export const ABANDON_AFTER_MS = 60_000;
/** An announced request that neither submitted nor cancelled in this time is no longer waited for. */
export const ANNOUNCEMENT_TTL_MS = 30_000;

const now = () => performance.now();

interface Announcement {
  at: number;
  /** Settled by the announcing request itself, when it submits or cancels. */
  settled: Signal;
}

interface Member {
  /** The request's waitUntil: it stays until what it followed has settled (shared-waits.ts). */
  keepAlive?: (promise: Promise<unknown>) => void;
  input: Float32Array;
  count: number;
  names: readonly OutputName[];
  submittedAt: number;
  gate?: BatchGate;
  outcome?: { result: BatchedResult } | { error: unknown };
}

interface Batch {
  members: Member[];
  images: number;
  state: "open" | "running" | "done" | "abandoned";
  /** When the window of its first request ends. */
  deadline: number;
  /** When it became due with nothing ahead of it (undefined while it is not), started running, or finished. */
  dueSince?: number;
  /** Settled when the batch is done, by the request that runs it (its leader, or one that took over). */
  finished: Signal;
}

/**
 * Collects the requests of one model in one isolate into batches, each run in the context of
 * one of its own requests (a request that has answered would otherwise carry other requests'
 * work), normally its first: the leader.
 *
 * @example
 * const batcher = new DynamicBatcher((input, count, names) => session.run(input, count, names), { maxBatch: 32, windowMs: 2 });
 * const slot = batcher.expect();
 * const input = await decodeAndPreprocess(request); // others may submit meanwhile
 * const { outputs, batch } = await slot.submit(input, 1, ["logits"]);
 */
export class DynamicBatcher {
  private readonly announced = new Set<Announcement>();
  /** Batches not yet done, oldest first: only the first may run, only the last may be open. */
  private readonly batches: Batch[] = [];

  constructor(
    private readonly run: BatchRunner,
    private readonly policy: BatchingPolicy,
  ) {}

  /** Announce a request whose images are on their way; `keepAlive` is its waitUntil, where it has one. */
  expect(keepAlive?: (promise: Promise<unknown>) => void): BatchSlot {
    const announcement: Announcement = { at: now(), settled: signal() };
    this.announced.add(announcement);
    const settle = () => {
      this.announced.delete(announcement);
      announcement.settled.settle();
    };
    return {
      submit: (input, count, names, gate) => {
        settle();
        return this.enqueue({ input, count, names, submittedAt: now(), keepAlive, gate });
      },
      cancel: settle,
    };
  }

  /** Requests announced and not yet submitted, batches waiting or running: for /healthz and tests. */
  stats(): { announced: number; batches: number } {
    this.forgetStaleAnnouncements();
    return { announced: this.announced.size, batches: this.batches.length };
  }

  private async enqueue(member: Member): Promise<BatchedResult> {
    const last = this.batches.at(-1);
    if (last?.state === "open" && last.images + member.count <= this.policy.maxBatch) {
      last.members.push(member);
      last.images += member.count;
      return this.follow(last, member);
    }
    const batch: Batch = { members: [member], images: member.count, state: "open", deadline: member.submittedAt + this.policy.windowMs, finished: signal() };
    this.batches.push(batch);
    return this.lead(batch, member);
  }

  /** The leader: wait until its batch is due and nothing is ahead of it, then run it. */
  private async lead(batch: Batch, leader: Member): Promise<BatchedResult> {
    let behind = false;
    for (;;) {
      if (batch.state !== "open") return this.follow(batch, leader); // another request took it over
      const ahead = this.batches[0] !== batch ? this.batches[0] : undefined;
      if (ahead) {
        behind = true;
        this.abandonIfStalled(ahead);
        await waitForAny([ahead.finished.promise], RECHECK_MS, leader.keepAlive);
        continue;
      }
      if (this.isDue(batch)) {
        if (!behind) return this.runBatch(batch, leader);
        // A task boundary before running after the batch ahead, on every host: its answers go
        // out first instead of waiting behind this run (and late arrivals may still join).
        behind = false;
        await sleep(0).promise;
        continue;
      }
      // Woken when an announced request submits or cancels (its own promise), else at the window's end.
      await waitForAny([...this.announced].map((a) => a.settled.promise), batch.deadline - now(), leader.keepAlive);
    }
  }

  /** Any other request: wait for its batch, looking for itself now and then in case the leader is gone. */
  private async follow(batch: Batch, member: Member): Promise<BatchedResult> {
    for (;;) {
      if (member.outcome) {
        if ("error" in member.outcome) throw member.outcome.error;
        return member.outcome.result;
      }
      if (batch.state === "abandoned") throw new BatchAbandonedError();
      if (batch.state === "open" && this.batches[0] === batch && this.isDue(batch) && now() - batch.dueSince! > TAKEOVER_AFTER_MS) {
        return this.runBatch(batch, member);
      }
      if (this.batches[0]) this.abandonIfStalled(this.batches[0]);
      await waitForAny([batch.finished.promise], RECHECK_MS, member.keepAlive);
    }
  }

  private isDue(batch: Batch): boolean {
    this.forgetStaleAnnouncements();
    const due = batch.images >= this.policy.maxBatch || this.announced.size === 0 || now() >= batch.deadline;
    if (due) batch.dueSince ??= now();
    return due;
  }

  /**
   * Drop the batch ahead when no request of it can run it any more, so that the model is not
   * blocked behind it; and a finished one its runner did not get to remove.
   */
  private abandonIfStalled(batch: Batch): void {
    if (batch.state === "done") {
      if (now() - batch.dueSince! >= TAKEOVER_AFTER_MS) this.remove(batch);
      return;
    }
    if (batch.state === "open" && this.batches[0] === batch) this.isDue(batch); // dated even when none of its requests is left to look
    if (batch.dueSince === undefined || now() - batch.dueSince < ABANDON_AFTER_MS) return;
    batch.state = "abandoned";
    this.remove(batch);
  }

  private remove(batch: Batch): void {
    const at = this.batches.indexOf(batch);
    if (at >= 0) this.batches.splice(at, 1);
  }

  private forgetStaleAnnouncements(): void {
    const oldest = now() - ANNOUNCEMENT_TTL_MS;
    for (const a of this.announced) if (a.at < oldest) this.announced.delete(a);
  }

  /** Run the batch here, in `runner`'s context, give every member its rows (or the error), return the runner's. */
  private async runBatch(batch: Batch, runner: Member): Promise<BatchedResult> {
    // A leader settles the signal it created with the batch; a request taking over makes its own.
    const finished = runner === batch.members[0] ? batch.finished : (batch.finished = signal());
    batch.state = "running";
    batch.dueSince = now();
    // Requests whose admission says they must not run now (overdue, client gone) are answered
    // that, and the batch runs without them; their images never reach the model.
    const members: Member[] = [];
    for (const m of batch.members) {
      const refusal = m.gate?.overdue();
      if (refusal) m.outcome = { error: refusal };
      else {
        m.gate?.running();
        members.push(m);
      }
    }
    const images = members.reduce((sum, m) => sum + m.count, 0);
    const names = [...new Set(members.flatMap((m) => m.names))];
    const started = now();
    try {
      if (members.length > 0) {
        const input = members.length === 1 ? members[0]!.input : concat(members.map((m) => m.input));
        const result = await this.run(input, images, names);
        const inferenceMs = now() - started;
        let row = 0;
        for (const m of members) {
          const mine: BatchedResult = { outputs: {}, sizes: {}, batch: { images, requests: members.length, queueMs: started - m.submittedAt, inferenceMs } };
          for (const name of m.names) {
            const width = result.sizes[name]!;
            mine.sizes[name] = width;
            mine.outputs[name] = result.outputs[name]!.slice(row * width, (row + m.count) * width);
          }
          row += m.count;
          m.outcome = { result: mine };
        }
      }
    } catch (error) {
      for (const m of members) m.outcome = { error };
    } finally {
      if (batch.state === "running") {
        batch.state = "done";
        batch.dueSince = now();
      }
      // The batch leaves the queue a task later, once this request's answer is out: workerd
      // writes responses (and reads other requests' bodies) between tasks, and a next batch
      // started at once, in this task, would hold every answer until the queue ran dry. Should
      // this context end first, whoever looks next removes the batch (abandonIfStalled).
      const released = sleep(0).promise.then(() => {
        this.remove(batch);
        finished.settle();
      });
      runner.keepAlive?.(released);
    }
    return this.follow(batch, runner);
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
