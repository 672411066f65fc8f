import { describe, expect, it } from "vitest";
import { softmax, topK } from "./topk";

describe("softmax", () => {
  it("sums to 1 and keeps the order of the logits", () => {
    const p = softmax([1, 2, 3]);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(p[2]! / p[1]!).toBeCloseTo(Math.E, 10);
  });

  it("does not overflow on large logits", () => {
    const p = softmax([1000, 1000, -1000]);
    expect(Array.from(p)).toEqual([0.5, 0.5, 0]);
  });
});

describe("topK", () => {
  const labels = ["a", "b", "c", "d"];

  it("returns the k most probable labels, most probable first", () => {
    const top = topK([0.1, 3, -2, 1.5], labels, 2);
    expect(top.map((p) => p.label)).toEqual(["b", "d"]);
    expect(top[0]!.index).toBe(1);
    expect(top[0]!.probability).toBeGreaterThan(top[1]!.probability);
  });

  it("returns every label when k exceeds their number", () => {
    expect(topK([1, 2, 3, 4], labels, 10)).toHaveLength(4);
  });

  it("breaks ties by label order", () => {
    expect(topK([1, 1, 1, 1], labels, 4).map((p) => p.label)).toEqual(labels);
  });

  it("refuses logits that do not match the labels", () => {
    expect(() => topK([1, 2], labels, 1)).toThrow();
  });
});
