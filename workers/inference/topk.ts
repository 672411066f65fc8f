/** Turning a model's logits into the ranked labels the API returns. */

export interface Prediction {
  label: string;
  index: number;
  probability: number;
}

/**
 * Softmax over one row of logits, computed in float64 with the max subtracted so that large
 * logits cannot overflow.
 *
 * @example
 * softmax([0, 0]); // Float64Array [0.5, 0.5]
 */
export function softmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]!);
  const out = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    out[i] = Math.exp(logits[i]! - max);
    sum += out[i]!;
  }
  for (let i = 0; i < out.length; i++) out[i]! /= sum;
  return out;
}

/**
 * The k most probable labels, most probable first; ties keep label order. k larger than the
 * number of labels returns them all.
 *
 * @example
 * topK([1, 3, 2], ["a", "b", "c"], 2); // [{ label: "b", ... }, { label: "c", ... }]
 */
export function topK(logits: ArrayLike<number>, labels: readonly string[], k: number): Prediction[] {
  if (logits.length !== labels.length) throw new Error(`${logits.length} logits for ${labels.length} labels`);
  const probabilities = softmax(logits);
  return Array.from(probabilities.keys())
    .sort((a, b) => probabilities[b]! - probabilities[a]! || a - b)
    .slice(0, k)
    .map((index) => ({ label: labels[index]!, index, probability: probabilities[index]! }));
}
