import { afterEach, describe, expect, it, vi } from "vitest";
import { DeadlineExceededError, OverloadedError } from "../problems/problems";
import { AdmissionController, TICKET_TTL_MS } from "./admission";
import { DEFAULT_ADMISSION, admissionPolicy } from "./policy";

const MIB = 1024 * 1024;
const policy = { maxQueueImages: 4, maxQueueMs: 1_000 };

/** The refusal `fn` throws, or undefined. */
function refusal(fn: () => unknown): OverloadedError | DeadlineExceededError | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof OverloadedError || err instanceof DeadlineExceededError) return err;
    throw err;
  }
  return undefined;
}

describe("AdmissionController", () => {
  afterEach(() => vi.useRealTimers());

  it("holds request bodies within the budget and refuses the one that would pass it, before it is read", () => {
    const controller = new AdmissionController(() => 10 * MIB);
    const a = controller.admit({ bytes: 4 * MIB });
    controller.admit({ bytes: 4 * MIB });
    const refused = refusal(() => controller.admit({ bytes: 3 * MIB }));
    expect(refused).toMatchObject({ status: 503, slug: "overloaded", reason: "memory" });
    expect(refused!.headers["retry-after"]).toMatch(/^\d+$/);
    expect(controller.stats()).toMatchObject({ inFlightBytes: 8 * MIB, peakInFlightBytes: 8 * MIB, requests: 2 });
    a.release();
    a.release(); // idempotent
    controller.admit({ bytes: 3 * MIB });
    expect(controller.stats()).toMatchObject({ inFlightBytes: 7 * MIB, requests: 2 });
  });

  it("admits a request alone in the isolate whatever its size (the request limits bound it), and holds its decode buffers", () => {
    const controller = new AdmissionController(() => 10 * MIB);
    const big = controller.admit({ bytes: 12 * MIB });
    big.hold(20 * MIB);
    expect(controller.stats().inFlightBytes).toBe(32 * MIB);
    expect(refusal(() => controller.admit({ bytes: 0 }))).toMatchObject({ reason: "memory" });
    big.free(20 * MIB);
    big.free(6 * MIB);
    const other = controller.admit({ bytes: 0 });
    expect(refusal(() => other.hold(5 * MIB))).toMatchObject({ reason: "memory" });
    other.hold(4 * MIB);
  });

  it("refuses a request when its model's queue is full, counting the images each request brings", () => {
    const controller = new AdmissionController(() => 100 * MIB);
    const a = controller.admit({ bytes: 1000 });
    a.forModel("m@1", policy);
    a.ready([{ bytes: 1000, format: "png" }, { bytes: 1000, format: "png" }, { bytes: 1000, format: "png" }], 1);
    controller.admit({ bytes: 1000 }).forModel("m@1", policy);
    expect(controller.stats().queuedImages).toEqual({ "m@1": 4 });
    expect(refusal(() => controller.admit({ bytes: 1000 }).forModel("m@1", policy))).toMatchObject({ reason: "queue-full" });
    controller.admit({ bytes: 1000 }).forModel("other@1", policy); // another model's queue is its own
    a.running();
    controller.admit({ bytes: 1000 }).forModel("m@1", policy);
  });

  it("refuses a request predicted to wait past its model's maxQueueMs or its own deadline, never one with nothing ahead", () => {
    const controller = new AdmissionController(() => 100 * MIB);
    // 10 MiB of encoded images at the initial 40 ms/MiB: 400 ms of decoding ahead each.
    const first = controller.admit({ bytes: 10 * MIB });
    first.forModel("m@1", { maxQueueImages: 100, maxQueueMs: 100 }); // nothing ahead: admitted whatever its own cost
    controller.admit({ bytes: 10 * MIB }).forModel("m@1", { maxQueueImages: 100, maxQueueMs: 1_000 });
    // 820 ms ahead (two decodes, two model runs): its own 410 ms of work is no queue, so 1,000 ms admits it and 800 does not.
    const admitted = controller.admit({ bytes: 10 * MIB });
    admitted.forModel("m@1", { maxQueueImages: 100, maxQueueMs: 1_000 });
    admitted.release();
    const late = refusal(() => controller.admit({ bytes: 10 * MIB }).forModel("m@1", { maxQueueImages: 100, maxQueueMs: 800 }));
    expect(late).toMatchObject({ slug: "overloaded", reason: "queue-time" });
    expect(Number(late!.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    const deadline = refusal(() => controller.admit({ bytes: 1000, deadline: performance.now() + 100 }).forModel("small@1", { maxQueueImages: 100, maxQueueMs: 10_000 }));
    expect(deadline).toMatchObject({ status: 503, slug: "deadline-exceeded", reason: "deadline" });
    expect(controller.stats().backlogMs).toBeGreaterThan(800);
  });

  it("learns the decode and model rates it predicts with from what it measured", () => {
    const controller = new AdmissionController(() => 100 * MIB);
    const ticket = controller.admit({ bytes: 4 * MIB });
    ticket.forModel("m@1", policy);
    for (let i = 0; i < 30; i++) ticket.decoded({ bytes: 4 * MIB, format: "jpeg" }, 100.5);
    for (let i = 0; i < 30; i++) ticket.decoded({ bytes: 1 * MIB, format: "png" }, 400.5);
    for (let i = 0; i < 30; i++) ticket.ran(8, 16);
    const { decodeMsPerMiB } = controller.stats();
    expect(decodeMsPerMiB.jpeg).toBeCloseTo(25, 0); // each format at its own rate
    expect(decodeMsPerMiB.png).toBeCloseTo(400, 0);
    expect(decodeMsPerMiB.all).toBeGreaterThan(25); // over all of them, for a body of unknown format
    expect(controller.stats().inferenceMsPerImage["m@1"]).toBeCloseTo(2, 1);
    expect(controller.decodeEstimateMs(2 * MIB, "jpeg")).toBeCloseTo(50.5, 0);
    expect(controller.decodeEstimateMs(2 * MIB, "png")).toBeCloseTo(800.5, 0);
    expect(controller.decodeEstimateMs(2 * MIB, "webp")).toBeCloseTo(controller.decodeEstimateMs(2 * MIB), 5); // not measured yet: the overall rate
    // Decodes slowed by congestion (an asynchronous PNG waits for everything else) move the rate little; fast ones at once.
    for (let i = 0; i < 10; i++) ticket.decoded({ bytes: 1 * MIB, format: "png" }, 4000.5);
    expect(controller.stats().decodeMsPerMiB.png).toBeLessThan(3 * 400); // ten times slower ten times: not yet three times the rate
    for (let i = 0; i < 10; i++) ticket.decoded({ bytes: 1 * MIB, format: "png" }, 100.5);
    expect(controller.stats().decodeMsPerMiB.png).toBeLessThan(250);
  });

  it("says a request is overdue once it waited past maxQueueMs after its body arrived (its own decoding not counted), or past its deadline", () => {
    vi.useFakeTimers({ toFake: ["performance"] });
    const controller = new AdmissionController(() => 100 * MIB);
    const ticket = controller.admit({ bytes: 1000, deadline: performance.now() + 5_000 });
    ticket.forModel("m@1", policy);
    vi.advanceTimersByTime(3_000); // a slow upload does not count
    ticket.ready([{ bytes: 1000, format: "png" }], 1);
    vi.advanceTimersByTime(600);
    ticket.decoded({ bytes: 1000, format: "png" }, 600);
    expect(ticket.overdue()).toBeUndefined();
    vi.advanceTimersByTime(900);
    expect(ticket.overdue()).toBeUndefined();
    vi.advanceTimersByTime(200);
    expect(ticket.overdue()).toMatchObject({ reason: "queue-time" });
    const other = controller.admit({ bytes: 1000, deadline: performance.now() + 100 });
    vi.advanceTimersByTime(101);
    expect(other.overdue()).toMatchObject({ reason: "deadline" });
  });

  it("scales its predictions by how long admitted requests really waited, measured as the limit is: from the end of the upload", () => {
    vi.useFakeTimers({ toFake: ["performance"] });
    const controller = new AdmissionController(() => 100 * MIB);
    const ahead = controller.admit({ bytes: 10 * MIB }); // 400 ms of decoding ahead of the next
    ahead.forModel("m@1", policy);
    const waits = (uploadMs: number, waitMs: number) => {
      const ticket = controller.admit({ bytes: 1000 });
      ticket.forModel("m@1", policy);
      vi.advanceTimersByTime(uploadMs);
      ticket.ready([{ bytes: 1000, format: "png" }], 1);
      vi.advanceTimersByTime(waitMs);
      ticket.running();
      ticket.release();
    };
    const backlog = ahead.decodeMs + ahead.inferenceMs;
    for (let i = 0; i < 30; i++) waits(2_000, backlog); // slow uploads, then waits as predicted: uploads are not queueing
    expect(controller.stats().slowdown).toBeCloseTo(1, 1);
    for (let i = 0; i < 30; i++) waits(0, 2 * backlog);
    expect(controller.stats().slowdown).toBeCloseTo(2, 1);
    expect(controller.expectedWaitMs()).toBeCloseTo(2 * controller.backlogMs(), -1);
  });

  it("does not hold the wait behind its model's cold start against a request", () => {
    vi.useFakeTimers({ toFake: ["performance"] });
    const controller = new AdmissionController(() => 100 * MIB);
    const ticket = controller.admit({ bytes: 1000 });
    ticket.forModel("m@1", policy);
    ticket.modelIsCold();
    ticket.ready([{ bytes: 1000, format: "png" }], 1);
    vi.advanceTimersByTime(5_000);
    expect(ticket.overdue()).toBeUndefined();
  });

  it("holds a body that declares no length at the limit until it is read, then at its size", () => {
    const controller = new AdmissionController(() => 100 * MIB);
    const ticket = controller.admit({ bytes: 32 * MIB, declared: false });
    expect(controller.stats().inFlightBytes).toBe(32 * MIB);
    expect(controller.backlogMs()).toBeLessThan(20); // its decoding is not estimated as 32 MiB of images
    ticket.forModel("m@1", policy);
    ticket.ready([{ bytes: 2 * MIB, format: "jpeg" }], 1);
    expect(controller.stats().inFlightBytes).toBe(2 * MIB);
  });

  it("says a request whose client hung up is overdue", () => {
    const controller = new AdmissionController(() => 100 * MIB);
    const abort = new AbortController();
    const ticket = controller.admit({ bytes: 1000, signal: abort.signal });
    expect(ticket.overdue()).toBeUndefined();
    abort.abort();
    expect(ticket.overdue()).toMatchObject({ slug: "deadline-exceeded" });
  });

  it("forgets a ticket whose request vanished without releasing it, after TICKET_TTL_MS", () => {
    vi.useFakeTimers({ toFake: ["performance"] });
    const controller = new AdmissionController(() => 10 * MIB);
    controller.admit({ bytes: 8 * MIB }).forModel("m@1", policy);
    expect(refusal(() => controller.admit({ bytes: 8 * MIB }))).toMatchObject({ reason: "memory" });
    vi.advanceTimersByTime(TICKET_TTL_MS);
    controller.admit({ bytes: 8 * MIB });
    expect(controller.stats()).toMatchObject({ requests: 1, queuedImages: {} });
  });
});

it("a model's admission policy is its config's settings over the defaults", () => {
  expect(admissionPolicy(undefined)).toEqual(DEFAULT_ADMISSION);
  expect(admissionPolicy({ maxQueueMs: 500 })).toEqual({ ...DEFAULT_ADMISSION, maxQueueMs: 500 });
});
