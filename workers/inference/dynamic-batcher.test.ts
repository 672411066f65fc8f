import { afterEach, describe, expect, it, vi } from "vitest";
import { ABANDON_AFTER_MS, ANNOUNCEMENT_TTL_MS, DynamicBatcher, batchingPolicy, type BatchRunner } from "./dynamic-batcher";

/** A model of two-wide rows whose logits are twice its inputs, recording the batches it ran. */
function doubling(): { run: BatchRunner; batches: number[] } {
  const batches: number[] = [];
  const run: BatchRunner = async (input, count) => {
    batches.push(count);
    return { outputs: { logits: input.map((v) => v * 2) }, sizes: { logits: input.length / count } };
  };
  return { run, batches };
}

const rows = (...values: number[]) => Float32Array.from(values);

describe("DynamicBatcher", () => {
  afterEach(() => vi.useRealTimers());

  it("runs a lone request at once, without waiting for its window", async () => {
    const { run, batches } = doubling();
    const batcher = new DynamicBatcher(run, { maxBatch: 32, windowMs: 10_000 });
    const result = await batcher.expect().submit(rows(1, 2), 1, ["logits"]);
    expect(batches).toEqual([1]);
    expect([...result.outputs.logits!]).toEqual([2, 4]);
    expect(result.batch).toMatchObject({ images: 1, requests: 1 });
  });

  it("runs requests announced together as one batch and gives each its own rows", async () => {
    const { run, batches } = doubling();
    const batcher = new DynamicBatcher(run, { maxBatch: 32, windowMs: 10_000 });
    const slots = [batcher.expect(), batcher.expect(), batcher.expect()];
    const results = Promise.all([
      slots[0]!.submit(rows(1, 1), 1, ["logits"]),
      slots[1]!.submit(rows(2, 2, 3, 3), 2, ["logits"]),
      slots[2]!.submit(rows(4, 4), 1, ["logits"]),
    ]);
    const [a, b, c] = await results;
    expect(batches).toEqual([4]);
    expect([...a.outputs.logits!]).toEqual([2, 2]);
    expect([...b.outputs.logits!]).toEqual([4, 4, 6, 6]);
    expect([...c.outputs.logits!]).toEqual([8, 8]);
    expect(b.batch).toMatchObject({ images: 4, requests: 3 });
  });

  it("answers a request whose gate says it is overdue with that refusal, and runs its batch without it", async () => {
    const { run, batches } = doubling();
    const batcher = new DynamicBatcher(run, { maxBatch: 32, windowMs: 10_000 });
    const slots = [batcher.expect(), batcher.expect(), batcher.expect()];
    const started: string[] = [];
    const gate = (name: string, overdue?: Error) => ({ overdue: () => overdue, running: () => started.push(name) });
    const late = new Error("waited too long");
    const results = Promise.allSettled([
      slots[0]!.submit(rows(1, 1), 1, ["logits"], gate("a")),
      slots[1]!.submit(rows(2, 2), 1, ["logits"], gate("b", late)),
      slots[2]!.submit(rows(3, 3), 1, ["logits"], gate("c")),
    ]);
    const [a, b, c] = await results;
    expect(batches).toEqual([2]);
    expect(started).toEqual(["a", "c"]);
    expect(b).toEqual({ status: "rejected", reason: late });
    expect(a.status === "fulfilled" && [...a.value.outputs.logits!]).toEqual([2, 2]);
    expect(c.status === "fulfilled" && [...c.value.outputs.logits!]).toEqual([6, 6]);
    expect(c.status === "fulfilled" && c.value.batch).toMatchObject({ images: 2, requests: 2 });
  });

  it("runs nothing when every request of a batch is overdue, and serves the next batch", async () => {
    const { run, batches } = doubling();
    const batcher = new DynamicBatcher(run, { maxBatch: 32, windowMs: 10_000 });
    const late = new Error("deadline passed");
    await expect(batcher.expect().submit(rows(1, 1), 1, ["logits"], { overdue: () => late, running: () => undefined })).rejects.toBe(late);
    expect(batches).toEqual([]);
    await new Promise((r) => setTimeout(r, 5));
    expect([...(await batcher.expect().submit(rows(2, 2), 1, ["logits"])).outputs.logits!]).toEqual([4, 4]);
    await new Promise((r) => setTimeout(r, 5)); // a batch leaves the queue a task after it ran
    expect(batcher.stats()).toEqual({ announced: 0, batches: 0 });
  });

  it("starts a batch once the waiting images reach maxBatch, and keeps arrival order", async () => {
    const { run, batches } = doubling();
    const batcher = new DynamicBatcher(run, { maxBatch: 2, windowMs: 10_000 });
    const slots = Array.from({ length: 6 }, () => batcher.expect());
    const results = slots.slice(0, 5).map((slot, i) => slot.submit(rows(i, i), 1, ["logits"]));
    const firsts = await Promise.all(results.slice(0, 4));
    expect(batches).toEqual([2, 2]);
    expect(firsts.map((r) => r.outputs.logits![0])).toEqual([0, 2, 4, 6]);
    slots[5]!.cancel(); // nothing more is coming: the fifth runs without its window
    expect((await results[4]!).outputs.logits![0]).toBe(8);
    expect(batches).toEqual([2, 2, 1]);
  });

  it("waits for a request still decoding no longer than the window", async () => {
    vi.useFakeTimers();
    const { run, batches } = doubling();
    const batcher = new DynamicBatcher(run, { maxBatch: 32, windowMs: 5 });
    const early = batcher.expect();
    const late = batcher.expect();
    const first = early.submit(rows(1, 1), 1, ["logits"]);
    await vi.advanceTimersByTimeAsync(4);
    expect(batches).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(batches).toEqual([1]);
    expect((await first).batch.requests).toBe(1);
    const second = late.submit(rows(2, 2), 1, ["logits"]);
    // The batch before leaves the queue a task after it finished, and the next starts a task after that.
    await vi.advanceTimersByTimeAsync(1);
    await vi.advanceTimersByTimeAsync(1);
    await second;
    expect(batches).toEqual([1, 1]);
  });

  it("stops waiting for a request that cancels", async () => {
    const { run, batches } = doubling();
    const batcher = new DynamicBatcher(run, { maxBatch: 32, windowMs: 10_000 });
    const ok = batcher.expect();
    const failed = batcher.expect();
    const result = ok.submit(rows(1, 1), 1, ["logits"]);
    failed.cancel();
    await result;
    expect(batches).toEqual([1]);
  });

  it("rejects every request of a failed batch and runs the next", async () => {
    let calls = 0;
    const batcher = new DynamicBatcher(async (input, count) => {
      if (calls++ === 0) throw new Error("out of memory");
      return { outputs: { logits: input }, sizes: { logits: input.length / count } };
    }, { maxBatch: 2, windowMs: 10_000 });
    const slots = [batcher.expect(), batcher.expect(), batcher.expect()];
    const results = slots.map((slot) => slot.submit(rows(1), 1, ["logits"]));
    await expect(results[0]).rejects.toThrow("out of memory");
    await expect(results[1]).rejects.toThrow("out of memory");
    expect((await results[2]!).batch.images).toBe(1);
  });
});

/**
 * A request whose context the runtime ended: from now on its code never runs again, as when
 * workerd cancels a request's continuations. `lead`/`follow` are where a request waits.
 */
function endContextsOfNextRequests(batcher: DynamicBatcher): () => void {
  const target = batcher as unknown as Record<"lead" | "follow", unknown>;
  target.lead = target.follow = () => new Promise(() => {});
  return () => {
    delete target.lead;
    delete target.follow;
  };
}

describe("DynamicBatcher when requests' contexts end while they wait", () => {
  afterEach(() => vi.useRealTimers());

  it("another request of the batch runs it when its leader is gone", async () => {
    vi.useFakeTimers();
    const { run, batches } = doubling();
    const batcher = new DynamicBatcher(run, { maxBatch: 32, windowMs: 5 });
    const [gone, waiting] = [batcher.expect(), batcher.expect()];
    const restore = endContextsOfNextRequests(batcher);
    void gone.submit(rows(1, 1), 1, ["logits"]); // leads, then its context ends
    restore();
    const result = waiting.submit(rows(2, 2), 1, ["logits"]);
    await vi.advanceTimersByTimeAsync(500);
    expect(batches).toEqual([]); // not yet: the leader may only be slow
    await vi.advanceTimersByTimeAsync(2_500);
    expect(batches).toEqual([2]);
    expect((await result).outputs.logits![0]).toBe(4);
    expect(batcher.stats()).toEqual({ announced: 0, batches: 0 });
  });

  it("drops a batch none of whose requests is left, so that the model serves the next", async () => {
    vi.useFakeTimers();
    const { run, batches } = doubling();
    const batcher = new DynamicBatcher(run, { maxBatch: 2, windowMs: 5 }); // a and b fill a batch: the next request starts another
    const [a, b] = [batcher.expect(), batcher.expect()];
    const restore = endContextsOfNextRequests(batcher);
    void a.submit(rows(1, 1), 1, ["logits"]);
    void b.submit(rows(2, 2), 1, ["logits"]);
    restore();
    const next = batcher.expect().submit(rows(3, 3), 1, ["logits"]);
    await vi.advanceTimersByTimeAsync(ABANDON_AFTER_MS - 5_000);
    expect(batches).toEqual([]);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(batches).toEqual([1]);
    expect((await next).outputs.logits![0]).toBe(6);
    expect(batcher.stats()).toEqual({ announced: 0, batches: 0 });
  });

  it("forgets an announced request that never submits nor cancels", async () => {
    vi.useFakeTimers();
    const batcher = new DynamicBatcher(doubling().run, { maxBatch: 32, windowMs: 5 });
    batcher.expect(); // its request ended before its images were read
    expect(batcher.stats().announced).toBe(1);
    await vi.advanceTimersByTimeAsync(ANNOUNCEMENT_TTL_MS + 1);
    expect(batcher.stats().announced).toBe(0);
  });
});

describe("batchingPolicy", () => {
  it("takes the model's settings over the defaults, and 'off' over both", () => {
    expect(batchingPolicy(undefined, undefined)).toEqual({ maxBatch: 32, windowMs: 2 });
    expect(batchingPolicy({ maxBatch: 1 }, "on")).toEqual({ maxBatch: 1, windowMs: 2 });
    expect(batchingPolicy({ maxBatch: 8, windowMs: 5 }, "off")).toEqual({ maxBatch: 1, windowMs: 0 });
  });
});
