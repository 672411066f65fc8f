/**
 * Admission control: an isolate refuses, early and cheaply, the requests it could not serve in
 * time or hold in memory, instead of queueing everything until clients time out and the isolate
 * runs out of its 128 MB.
 *
 * Every request with a body holds a `Ticket` from before its body is read until it is answered.
 * A ticket records what the request holds (body bytes, then decode buffers and the model input)
 * and the work it still brings (its decoding, its images' model run), so that everything the
 * controller decides on is a sum over live tickets, never a counter that could drift:
 *
 * - **memory**: held bytes against `inFlightBudgetBytes()`, the isolate's 128 MiB less ORT's heap
 *   (the resident models) and a measured margin for the JavaScript heap and the bundle;
 * - **backlog**: the estimated CPU milliseconds ahead of a new request (decodes not yet done,
 *   images not yet run), from rates measured in this isolate; one thread runs them all, so, scaled
 *   by the pace measured (how long admitted requests really waited against the prediction: HTTP,
 *   refusals and the event loop's order take time too), it is how long a new request would
 *   wait, and `Retry-After` is how long it takes to drain;
 * - **per model**: images waiting (`maxQueueImages`) and the wait predicted (`maxQueueMs`,
 *   policy.ts), and a client's own deadline (deadline.ts).
 *
 * Tickets are shared state that outlives requests, so none depends on its request ending well:
 * each is released when its request settles, and one whose request vanished (a context cancelled
 * before it could release) lapses after `TICKET_TTL_MS` without activity.
 */
import { DeadlineExceededError, OverloadedError, type RefusalError } from "../problems/problems";
import type { ImageFormat } from "../images/probe";
import type { AdmissionPolicy } from "./policy";

/** A ticket untouched this long belongs to a request whose context ended without releasing it. */
export const TICKET_TTL_MS = 150_000;
/** The longest Retry-After the isolate answers: its backlog drains far sooner. */
export const MAX_RETRY_AFTER_S = 30;
/** Decode cost assumed before this isolate has measured any: milliseconds per MiB of encoded image (a 12 MP JPEG at 1/8 scale measured 35). */
const INITIAL_DECODE_MS_PER_MIB = 40;
/** The images of a body that declares no length are assumed this large until it has been read (for the decode estimate; memory holds the limit). */
const UNDECLARED_BODY_ESTIMATE_BYTES = 256 * 1024;
/** What decoding any image costs at least (probing, preprocessing, the model input). */
const DECODE_FIXED_MS = 0.5;
/** Model time per image assumed for a model this isolate has not run yet. */
const INITIAL_INFERENCE_MS_PER_IMAGE = 10;
/** Weight of the newest measurement in the moving averages. */
const EWMA_WEIGHT = 0.2;
/**
 * Weight of a decode that took longer than the rate says. A decode's time is wall time, and an
 * asynchronous one (PNG inflates in the runtime's stream) also waits for whatever else the thread
 * runs: under a spike a PNG read 573 ms/MiB where it costs under 100. So the rate follows its
 * fast samples and creeps towards slow ones: it tracks the cost, not the congestion, which the
 * measured pace (`slowdown`) accounts for.
 */
const EWMA_WEIGHT_SLOWER = 0.02;
/** Predicted waits shorter than this say too little to calibrate the pace by. */
const MIN_CALIBRATING_WAIT_MS = 50;
/** Bounds of one wait's measured/predicted ratio, so that a slow upload or an idle gap cannot swing the pace. */
const MIN_SLOWDOWN = 0.5;
const MAX_SLOWDOWN = 8;
/** Images only count towards the decode rate above this size: below it the fixed cost dominates. */
const RATE_SAMPLE_MIN_BYTES = 64 * 1024;

const MIB = 1024 * 1024;
const now = () => performance.now();

/** The model a ticket's images are for, and how it admits them. */
interface TicketModel {
  key: string;
  policy: AdmissionPolicy;
}

/**
 * One request's hold on the isolate, from before its body is read to its answer.
 *
 * @example
 * const ticket = admission.admit({ bytes: 3_800_000, deadline });
 * ticket.forModel("resnet-edge-int8-static@3", policy); // throws a 503 when it would wait too long
 */
export class Ticket {
  bytes = 0;
  /** Images waiting for the model (decoding or queued); 0 once their batch runs. */
  images = 0;
  /** Estimated CPU work still ahead: its decoding, its images' model run. */
  decodeMs: number;
  inferenceMs = 0;
  model?: TicketModel;
  private touchedAt = now();
  /** When it was assigned to its model, and the backlog ahead of it then. */
  private predicted?: { at: number; backlogMs: number };
  private readyAt?: number;
  /** Its model's session was still being created when it arrived: a cold start is no queue, so its wait is not held against it. */
  private coldModel = false;
  private ownDecodeMs = 0;
  private released = false;

  constructor(
    private readonly controller: AdmissionController,
    /** What its body holds until it has been read: its declared length, or the route's limit without one. */
    private bodyBytes: number,
    declared: boolean,
    /** The format of the image its body is, where its Content-Type says (a multipart body's images are known once read). */
    format: ImageFormat | undefined,
    readonly deadline: number | undefined,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.decodeMs = controller.decodeEstimateMs(declared ? bodyBytes : UNDECLARED_BODY_ESTIMATE_BYTES, format);
  }

  /** Whether it lapsed: released, or untouched for TICKET_TTL_MS. */
  get live(): boolean {
    return !this.released && now() - this.touchedAt < TICKET_TTL_MS;
  }

  /**
   * Assign the request to a model, refusing it when the model's queue is full, when it would
   * wait longer than the model allows, or longer than the client's deadline.
   *
   * @throws OverloadedError (queue-full, queue-time), DeadlineExceededError
   */
  forModel(key: string, policy: AdmissionPolicy, images = 1): void {
    this.touch();
    this.model = { key, policy };
    this.controller.checkQueue(this, images);
    this.images = images;
    this.inferenceMs = images * this.controller.inferenceMsPerImage(key);
    const backlog = this.controller.backlogMs(this);
    const ahead = this.controller.waitForBacklogMs(backlog);
    const own = this.decodeMs + this.inferenceMs;
    // The calibration compares waits with the unscaled backlog: against the scaled one it would settle on the square root of the true pace.
    this.predicted = { at: now(), backlogMs: backlog };
    // With nothing ahead a request always runs: a limit it alone exceeds is not the queue's.
    if (ahead === 0) return;
    const retry = this.controller.retryAfterSeconds();
    // Queue time is the wait ahead of it; its own decoding and model run are not queueing.
    if (ahead > policy.maxQueueMs) {
      throw new OverloadedError("queue-time", `About ${Math.round(ahead)} ms of work is ahead of this request in this isolate; '${key}' queues at most ${policy.maxQueueMs} ms.`, retry, { model: key, maxQueueMs: policy.maxQueueMs, aheadMs: Math.round(ahead) });
    }
    if (this.deadline !== undefined && now() + ahead + own > this.deadline) {
      throw new DeadlineExceededError(`About ${Math.round(ahead)} ms of work is ahead of this request: it would not be answered within its timeout_ms.`, retry, { model: key, aheadMs: Math.round(ahead) });
    }
  }

  /**
   * The request's images are known (its body was read and parsed), each to run as `views` inputs
   * (2 with its mirror, 6 translate-averaged): the queue counts them, their decoding is estimated
   * by their formats, and the body holds what it really is.
   *
   * @throws OverloadedError (queue-full)
   */
  ready(uploaded: readonly { bytes: number; format: ImageFormat }[], views: number): void {
    this.touch();
    this.readyAt = now();
    const encodedBytes = uploaded.reduce((sum, image) => sum + image.bytes, 0);
    if (encodedBytes < this.bodyBytes) {
      this.bytes -= this.bodyBytes - encodedBytes;
      this.bodyBytes = encodedBytes;
    }
    this.decodeMs = uploaded.reduce((sum, image) => sum + this.controller.decodeEstimateMs(image.bytes, image.format), 0);
    const images = uploaded.length;
    const run = views * images;
    if (this.model) {
      if (images > this.images) this.controller.checkQueue(this, images);
      this.inferenceMs = run * this.controller.inferenceMsPerImage(this.model.key);
    }
    this.images = images;
  }

  /**
   * Hold `bytes` more (a decode buffer, the model input), unless they would take the requests in
   * flight past the budget while others hold memory too.
   *
   * @throws OverloadedError (memory)
   */
  hold(bytes: number): void {
    this.touch();
    this.controller.checkMemory(this, bytes);
    this.bytes += bytes;
    this.controller.notePeak();
  }

  /** Give back bytes it held. */
  free(bytes: number): void {
    this.bytes = Math.max(0, this.bytes - bytes);
  }

  /** One image decoded: its time feeds the isolate's decode rate for its format; its decoding is no longer ahead. */
  decoded(image: { bytes: number; format: ImageFormat }, ms: number): void {
    this.touch();
    this.ownDecodeMs += ms;
    this.decodeMs = Math.max(0, this.decodeMs - this.controller.decodeEstimateMs(image.bytes, image.format));
    this.controller.observeDecode(image.bytes, ms, image.format);
  }

  /** Its model's session is still being created: its wait is neither refused for nor taken as a measure of the queue's pace or the model's speed. */
  modelIsCold(): void {
    this.coldModel = true;
  }

  /** Every image decoded: no decoding is ahead any more. */
  decodingDone(): void {
    this.decodeMs = 0;
  }

  /** Why this request must not run now, or undefined: its deadline passed, it waited past its model's limit, or its client hung up. */
  overdue(): RefusalError | undefined {
    const at = now();
    const retry = () => this.controller.retryAfterSeconds();
    if (this.signal?.aborted) return new DeadlineExceededError("The client disconnected before its images ran.", retry());
    if (this.deadline !== undefined && at > this.deadline) return new DeadlineExceededError("The request's timeout_ms passed before its images ran.", retry());
    const limit = this.model?.policy.maxQueueMs;
    if (limit !== undefined && this.readyAt !== undefined && !this.coldModel) {
      const waited = at - this.readyAt - this.ownDecodeMs;
      if (waited > limit) {
        return new OverloadedError("queue-time", `Its images waited ${Math.round(waited)} ms for the model, over the ${limit} ms '${this.model!.key}' allows; they were not run.`, retry(), { model: this.model!.key, maxQueueMs: limit, waitedMs: Math.round(waited) });
      }
    }
    return undefined;
  }

  /** Its batch starts: its images no longer wait; how long they did calibrates the controller's predictions. */
  running(): void {
    this.touch();
    // Measured as the limit is (from the end of its upload, its own decoding not counted), so that the pace scales predictions to what overdue() enforces.
    if (this.predicted && !this.coldModel) this.controller.observeWait(this.predicted.backlogMs, now() - (this.readyAt ?? this.predicted.at) - this.ownDecodeMs);
    this.images = 0;
    this.inferenceMs = 0;
  }

  /** Its batch ran: `images` (the whole batch's) in `ms` feed the model's rate (not behind a cold start, whose run waited for the session). */
  ran(images: number, ms: number): void {
    if (this.model && !this.coldModel) this.controller.observeInference(this.model.key, images, ms);
  }

  /** The request is answered (or failed): it holds nothing any more. Idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.controller.forget(this);
  }

  private touch(): void {
    this.touchedAt = now();
  }
}

/** The isolate's view of what requests in flight hold and bring: /healthz shows it. */
export interface AdmissionStats {
  budgetBytes: number;
  inFlightBytes: number;
  /** The most bytes requests in flight held at once since the isolate started. */
  peakInFlightBytes: number;
  /** How long a new request would wait for the work ahead of it (the backlog at the measured pace), ms. */
  backlogMs: number;
  requests: number;
  /** Images waiting per model (model@version). */
  queuedImages: Record<string, number>;
  /** Decode cost per MiB of encoded image, per format and over all (`all`, for bodies whose format is not known yet). */
  decodeMsPerMiB: Partial<Record<ImageFormat | "all", number>>;
  inferenceMsPerImage: Record<string, number>;
  /** Measured wait over predicted backlog (1 when the estimates are exact). */
  slowdown: number;
}

/**
 * An admission controller over a memory budget (`budget()`, bytes, read at each decision): the
 * isolate's is `admission` (isolate-admission.ts), shared by every request.
 *
 * @example
 * const controller = new AdmissionController(() => 64 * 2 ** 20);
 * const ticket = controller.admit({ bytes: Number(request.headers.get("content-length")) });
 * try { ... } finally { ticket.release(); }
 */
export class AdmissionController {
  private readonly tickets = new Set<Ticket>();
  private peak = 0;
  /** Decode ms per MiB over every format, for an image whose format is not known yet, and per format: a PNG costs several times a JPEG decoded at 1/8 scale. */
  private decodeRate = INITIAL_DECODE_MS_PER_MIB;
  private readonly decodeRates = new Map<ImageFormat, number>();
  /** Measured wait over the backlog predicted at admission: what the estimates miss (HTTP, refusals, the event loop's order). */
  private slowdown = 1;
  private readonly inferenceRates = new Map<string, number>();

  constructor(private readonly budget: () => number) {}

  /**
   * Admit a request whose body of `bytes` (its Content-Length, or the route's limit where it
   * declares none: `declared` false) is still unread, or refuse it before it is read.
   *
   * @throws OverloadedError (memory) when its body would take the requests in flight past the budget
   */
  admit({ bytes, declared = true, format, deadline, signal }: { bytes: number; declared?: boolean; format?: ImageFormat; deadline?: number; signal?: AbortSignal }): Ticket {
    const ticket = new Ticket(this, bytes, declared, format, deadline, signal);
    this.checkMemory(ticket, bytes);
    ticket.bytes = bytes;
    this.tickets.add(ticket);
    this.notePeak();
    return ticket;
  }

  /** Estimated CPU work ahead of `except` (or of a new request): decodes not done, images not run, ms. */
  backlogMs(except?: Ticket): number {
    let total = 0;
    for (const ticket of this.live()) if (ticket !== except) total += ticket.decodeMs + ticket.inferenceMs;
    return total;
  }

  /** How long a new request (or `except`) would wait for the work ahead of it: the backlog at the pace this isolate has measured, ms. */
  expectedWaitMs(except?: Ticket): number {
    return this.waitForBacklogMs(this.backlogMs(except));
  }

  /** How long `backlogMs` of estimated work takes to drain at the pace this isolate has measured, ms. */
  waitForBacklogMs(backlogMs: number): number {
    return backlogMs * this.slowdown;
  }

  /** Seconds until the work ahead has drained, at least 1: what a refusal's Retry-After says. */
  retryAfterSeconds(): number {
    return Math.min(MAX_RETRY_AFTER_S, Math.max(1, Math.ceil(this.expectedWaitMs() / 1000)));
  }

  /** @throws OverloadedError (memory) */
  checkMemory(ticket: Ticket, bytes: number): void {
    let others = 0;
    for (const t of this.live()) if (t !== ticket) others += t.bytes;
    const budget = this.budget();
    // A request alone in the isolate is never refused for memory: the request limits bound it.
    if (others > 0 && others + ticket.bytes + bytes > budget) {
      const mib = (b: number) => `${(b / MIB).toFixed(1)} MiB`;
      throw new OverloadedError("memory", `Requests in flight hold ${mib(others)} of this isolate's ${mib(budget)} for requests; this one needs ${mib(ticket.bytes + bytes)}.`, this.retryAfterSeconds(), { budgetBytes: budget, inFlightBytes: others });
    }
  }

  /** @throws OverloadedError (queue-full) */
  checkQueue(ticket: Ticket, images: number): void {
    const { key, policy } = ticket.model!;
    let queued = 0;
    for (const t of this.live()) if (t !== ticket && t.model?.key === key) queued += t.images;
    if (queued + images > policy.maxQueueImages && queued > 0) {
      throw new OverloadedError("queue-full", `${queued} images are waiting for '${key}' in this isolate; it queues at most ${policy.maxQueueImages}.`, this.retryAfterSeconds(), { model: key, maxQueueImages: policy.maxQueueImages, queuedImages: queued });
    }
  }

  notePeak(): void {
    let held = 0;
    for (const ticket of this.live()) held += ticket.bytes;
    this.peak = Math.max(this.peak, held);
  }

  /** The decode time of `encodedBytes` of an image in `format` (or of unknown format), ms. */
  decodeEstimateMs(encodedBytes: number, format?: ImageFormat): number {
    const rate = (format && this.decodeRates.get(format)) ?? this.decodeRate;
    return DECODE_FIXED_MS + (rate * encodedBytes) / MIB;
  }

  inferenceMsPerImage(model: string): number {
    return this.inferenceRates.get(model) ?? INITIAL_INFERENCE_MS_PER_IMAGE;
  }

  observeDecode(encodedBytes: number, ms: number, format: ImageFormat): void {
    if (encodedBytes < RATE_SAMPLE_MIN_BYTES) return;
    const rate = (Math.max(0, ms - DECODE_FIXED_MS) * MIB) / encodedBytes;
    const towards = (before: number) => before + (rate < before ? EWMA_WEIGHT : EWMA_WEIGHT_SLOWER) * (rate - before);
    this.decodeRate = towards(this.decodeRate);
    const before = this.decodeRates.get(format);
    this.decodeRates.set(format, before === undefined ? rate : towards(before));
  }

  observeInference(model: string, images: number, ms: number): void {
    if (images <= 0) return;
    const rate = ms / images;
    const before = this.inferenceRates.get(model);
    this.inferenceRates.set(model, before === undefined ? rate : before + EWMA_WEIGHT * (rate - before));
  }

  /** A request with `backlogMs` of work ahead of it waited `actualMs`: the pace of this isolate's queue (only backlogs long enough to measure). */
  observeWait(backlogMs: number, actualMs: number): void {
    if (backlogMs < MIN_CALIBRATING_WAIT_MS) return;
    const ratio = Math.min(MAX_SLOWDOWN, Math.max(MIN_SLOWDOWN, actualMs / backlogMs));
    this.slowdown += EWMA_WEIGHT * (ratio - this.slowdown);
  }

  forget(ticket: Ticket): void {
    this.tickets.delete(ticket);
  }

  stats(): AdmissionStats {
    const queuedImages: Record<string, number> = {};
    let inFlightBytes = 0;
    const live = [...this.live()];
    for (const ticket of live) {
      inFlightBytes += ticket.bytes;
      if (ticket.model) queuedImages[ticket.model.key] = (queuedImages[ticket.model.key] ?? 0) + ticket.images;
    }
    return {
      budgetBytes: this.budget(),
      inFlightBytes,
      peakInFlightBytes: this.peak,
      backlogMs: Math.round(this.expectedWaitMs()),
      requests: live.length,
      queuedImages,
      decodeMsPerMiB: Object.fromEntries([["all", this.decodeRate] as const, ...this.decodeRates].map(([format, rate]) => [format, Math.round(rate * 10) / 10])),
      slowdown: Math.round(this.slowdown * 100) / 100,
      inferenceMsPerImage: Object.fromEntries([...this.inferenceRates].map(([model, rate]) => [model, Math.round(rate * 100) / 100])),
    };
  }

  /** Live tickets; lapsed ones are dropped on the way. */
  private *live(): Generator<Ticket> {
    for (const ticket of this.tickets) {
      if (ticket.live) yield ticket;
      else this.tickets.delete(ticket);
    }
  }
}
