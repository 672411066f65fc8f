import { describe, expect, it } from "vitest";
import type { Head } from "./head";
import { headLogits } from "./head";
import { HEAD_TRAINING, evaluate, replaySize, updateHead, type LabelledEmbeddings } from "./head-trainer";

/** Points scattered around given centres, with a fixed pseudo-random noise. */
function cluster(centres: Record<string, number[]>, perClass: number, seed = 1): LabelledEmbeddings {
  let s = seed;
  const noise = () => ((s = (s * 16807) % 2147483647) / 2147483647 - 0.5) * 0.6;
  const labels: string[] = [];
  const rows: number[] = [];
  for (const [label, centre] of Object.entries(centres)) {
    for (let i = 0; i < perClass; i++) {
      labels.push(label);
      rows.push(...centre.map((v) => v + noise()));
    }
  }
  return { labels, embeddings: new Float32Array(rows) };
}

const empty: Head = { labels: [], embeddingSize: 3, weight: new Float32Array(0), bias: new Float32Array(0) };
const none: LabelledEmbeddings = { labels: [], embeddings: new Float32Array(0) };

describe("updateHead", () => {
  it("learns new classes on an empty head, in the order they first appear", () => {
    const taught = cluster({ cat: [2, 0, 0], dog: [0, 2, 0] }, 5);
    const { head, metrics } = updateHead(empty, taught, none);
    expect(head.labels).toEqual(["cat", "dog"]);
    expect(metrics).toMatchObject({ newClasses: ["cat", "dog"], accuracyBefore: 0, accuracy: 1, steps: HEAD_TRAINING.steps });
    expect(evaluate(head, cluster({ cat: [2, 0, 0], dog: [0, 2, 0] }, 20, 7)).accuracy).toBe(1);
  });

  it("adds a class while replay keeps the old ones, and leaves the previous head untouched", () => {
    const base = updateHead(empty, cluster({ cat: [2, 0, 0], dog: [0, 2, 0] }, 10), none).head;
    const snapshot = base.weight.slice();
    const replay = cluster({ cat: [2, 0, 0], dog: [0, 2, 0] }, 10, 3);
    const { head, metrics } = updateHead(base, cluster({ bird: [0, 0, 2] }, 5), replay);
    expect(base.weight).toEqual(snapshot);
    expect(head.labels).toEqual(["cat", "dog", "bird"]);
    expect(metrics.replayed).toBe(20);
    expect(evaluate(head, cluster({ cat: [2, 0, 0], dog: [0, 2, 0], bird: [0, 0, 2] }, 20, 11)).accuracy).toBe(1);
  });

  it("maps the head back to raw coordinates exactly: logits are those of the returned weights", () => {
    const taught = cluster({ a: [5, 0, 100], b: [0, 5, 100] }, 4);
    const { head } = updateHead(empty, taught, none);
    const logits = headLogits(head, taught.embeddings.subarray(0, 3));
    expect(logits[0]!).toBeGreaterThan(logits[1]!);
  });
});

describe("replaySize", () => {
  it("follows the call's size within its bounds", () => {
    expect(replaySize(1)).toBe(HEAD_TRAINING.minReplay);
    expect(replaySize(100)).toBe(200);
    expect(replaySize(10_000)).toBe(HEAD_TRAINING.maxReplay);
  });
});
