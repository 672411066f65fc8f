/**
 * The incremental head update behind POST /finetune.
 *
 * Each call continues from the current head: classes the call introduces are appended and
 * imprinted (their weights start at the nearest-class-mean solution for the call's examples),
 * then the whole head takes a fixed number of full-batch gradient steps of softmax
 * cross-entropy over the call's examples plus a class-balanced replay sample of stored
 * embeddings. The replay is what keeps old classes (and a served model's base classes, through
 * the exemplars in its head.bin) from being forgotten; its size follows the call's, so a
 * call's cost grows with its examples, never with the history. README.md explains the choice.
 */
import type { Head } from "./head";

export const HEAD_TRAINING = {
  /** Full-batch gradient steps per call. */
  steps: 60,
  /** Heavy-ball momentum. */
  momentum: 0.9,
  /** Replay examples drawn per example in the call, within [minReplay, maxReplay]. */
  replayPerExample: 2,
  minReplay: 64,
  maxReplay: 256,
} as const;

/** Labelled embeddings, row-major [labels.length, embeddingSize]. */
export interface LabelledEmbeddings {
  embeddings: Float32Array;
  labels: string[];
}

export interface UpdateMetrics {
  /** Mean cross-entropy of the updated head on the call's examples. */
  loss: number;
  /** Top-1 accuracy of the updated head on the call's examples. */
  accuracy: number;
  /** Top-1 accuracy of the previous head on them: how well it already knew what it was taught. */
  accuracyBefore: number;
  newClasses: string[];
  replayed: number;
  steps: number;
}

/**
 * How many stored examples to replay beside a call of `count` examples.
 *
 * @example
 * replaySize(10); // 64
 */
export function replaySize(count: number): number {
  const { replayPerExample, minReplay, maxReplay } = HEAD_TRAINING;
  return Math.min(maxReplay, Math.max(minReplay, replayPerExample * count));
}

/**
 * The head after learning from `taught` (the call's examples) with `replay` (stored ones)
 * beside them. The previous head is left untouched.
 *
 * @example
 * const { head, metrics } = updateHead(current, { embeddings, labels: ["cat", "dog"] }, replay);
 */
export function updateHead(previous: Head, taught: LabelledEmbeddings, replay: LabelledEmbeddings): { head: Head; metrics: UpdateMetrics } {
  const d = previous.embeddingSize;
  const newClasses = [...new Set(taught.labels)].filter((label) => !previous.labels.includes(label));
  const labels = [...previous.labels, ...newClasses];
  const classes = labels.length;
  const weight = new Float32Array(classes * d);
  const bias = new Float32Array(classes);
  weight.set(previous.weight);
  bias.set(previous.bias);
  imprint(weight, bias, labels, newClasses, taught, d);
  const head: Head = { labels, embeddingSize: d, weight, bias };

  const accuracyBefore = previous.labels.length ? evaluate(previous, taught).accuracy : 0;
  const all: LabelledEmbeddings = {
    embeddings: concat(taught.embeddings, replay.embeddings),
    labels: [...taught.labels, ...replay.labels],
  };
  descend(head, all);
  const { loss, accuracy } = evaluate(head, taught);
  return {
    head,
    metrics: { loss, accuracy, accuracyBefore, newClasses, replayed: replay.labels.length, steps: HEAD_TRAINING.steps },
  };
}

/**
 * New classes start as a nearest-class-mean classifier: logit_c = (μ_c·x − |μ_c|²/2) / τ is
 * linear in x, ranks examples by distance to each class mean, and gives few-shot classes a
 * sound start before any gradient step. τ puts these logits on the scale of the examples' norms.
 */
function imprint(weight: Float32Array, bias: Float32Array, labels: string[], newClasses: string[], taught: LabelledEmbeddings, d: number) {
  if (!newClasses.length) return;
  let squaredNorms = 0;
  for (let i = 0; i < taught.embeddings.length; i++) squaredNorms += taught.embeddings[i]! ** 2;
  const tau = Math.max(squaredNorms / taught.labels.length / 10, 1e-6);
  for (const label of newClasses) {
    const c = labels.indexOf(label);
    const mean = new Float64Array(d);
    let count = 0;
    taught.labels.forEach((l, i) => {
      if (l !== label) return;
      count++;
      for (let j = 0; j < d; j++) mean[j]! += taught.embeddings[i * d + j]!;
    });
    let norm2 = 0;
    for (let j = 0; j < d; j++) {
      mean[j]! /= count;
      norm2 += mean[j]! ** 2;
      weight[c * d + j] = mean[j]! / tau;
    }
    bias[c] = -norm2 / (2 * tau);
  }
}

/**
 * Full-batch gradient descent with momentum on mean cross-entropy, run in standardised
 * coordinates z = (x − m) / s (per dimension, from this call's data). Embeddings' dimensions
 * differ in scale by orders of magnitude, which makes plain gradient descent crawl along the
 * small ones; in z the problem is well conditioned, and mapping the head back to raw
 * coordinates is exact (W = W_z / s, b = b_z − W_z·(m / s)), so no statistics outlive the call.
 * The step is 1/L with L = (d + 1)/2 bounding the curvature in z (softmax's Hessian is at most
 * ½ in each direction and mean |z|² = d).
 */
function descend(head: Head, data: LabelledEmbeddings) {
  const d = head.embeddingSize;
  const classes = head.labels.length;
  const n = data.labels.length;
  const targets = data.labels.map((label) => head.labels.indexOf(label));
  const { mean, scale } = standardisation(data.embeddings, n, d);
  const z = new Float32Array(data.embeddings.length);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) z[i * d + j] = (data.embeddings[i * d + j]! - mean[j]!) / scale[j]!;
  // The head in z coordinates: W_z = W * s, b_z = b + W·m.
  const zHead: Head = { ...head, weight: new Float32Array(head.weight.length), bias: new Float32Array(classes) };
  for (let c = 0; c < classes; c++) {
    let shift = head.bias[c]!;
    for (let j = 0; j < d; j++) {
      zHead.weight[c * d + j] = head.weight[c * d + j]! * scale[j]!;
      shift += head.weight[c * d + j]! * mean[j]!;
    }
    zHead.bias[c] = shift;
  }

  const step = 2 / (d + 1);
  const velocityW = new Float32Array(head.weight.length);
  const velocityB = new Float32Array(classes);
  const gradW = new Float32Array(head.weight.length);
  const gradB = new Float32Array(classes);
  const p = new Float64Array(classes);
  for (let s = 0; s < HEAD_TRAINING.steps; s++) {
    gradW.fill(0);
    gradB.fill(0);
    for (let i = 0; i < n; i++) {
      const x = z.subarray(i * d, (i + 1) * d);
      probabilities(zHead, x, p);
      p[targets[i]!]! -= 1;
      for (let c = 0; c < classes; c++) {
        const g = p[c]! / n;
        if (Math.abs(g) < 1e-7) continue; // confident rows contribute nothing worth a pass over x
        gradB[c]! += g;
        const row = c * d;
        for (let j = 0; j < d; j++) gradW[row + j]! += g * x[j]!;
      }
    }
    const { momentum } = HEAD_TRAINING;
    for (let k = 0; k < gradW.length; k++) {
      velocityW[k] = momentum * velocityW[k]! - step * gradW[k]!;
      zHead.weight[k]! += velocityW[k]!;
    }
    for (let c = 0; c < classes; c++) {
      velocityB[c] = momentum * velocityB[c]! - step * gradB[c]!;
      zHead.bias[c]! += velocityB[c]!;
    }
  }

  for (let c = 0; c < classes; c++) {
    let shift = zHead.bias[c]!;
    for (let j = 0; j < d; j++) {
      head.weight[c * d + j] = zHead.weight[c * d + j]! / scale[j]!;
      shift -= head.weight[c * d + j]! * mean[j]!;
    }
    head.bias[c] = shift;
  }
}

/**
 * Per-dimension mean and standard deviation of n embeddings. A dimension that barely varies
 * here (a ReLU unit these images never fire) gets the typical scale instead, so that it is
 * neither amplified nor divided by zero.
 */
function standardisation(x: Float32Array, n: number, d: number): { mean: Float64Array; scale: Float64Array } {
  const mean = new Float64Array(d);
  const scale = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j]! += x[i * d + j]! / n;
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) scale[j]! += (x[i * d + j]! - mean[j]!) ** 2 / n;
  const sorted = Array.from(scale).sort((a, b) => a - b);
  const typical = Math.sqrt(sorted[Math.floor(d / 2)]!) || 1;
  for (let j = 0; j < d; j++) scale[j] = Math.max(Math.sqrt(scale[j]!), 1e-2 * typical);
  return { mean, scale };
}

/** Softmax of the head's logits for one embedding, into `out`. */
function probabilities(head: Head, x: Float32Array, out: Float64Array) {
  const d = head.embeddingSize;
  let max = -Infinity;
  for (let c = 0; c < head.labels.length; c++) {
    let z = head.bias[c]!;
    const row = c * d;
    for (let j = 0; j < d; j++) z += head.weight[row + j]! * x[j]!;
    out[c] = z;
    max = Math.max(max, z);
  }
  let sum = 0;
  for (let c = 0; c < head.labels.length; c++) sum += out[c] = Math.exp(out[c]! - max);
  for (let c = 0; c < head.labels.length; c++) out[c]! /= sum;
}

/**
 * Mean cross-entropy and top-1 accuracy of a head on labelled embeddings (a label the head
 * lacks counts as a miss).
 *
 * @example
 * evaluate(head, { embeddings, labels }); // { loss: 0.12, accuracy: 0.97 }
 */
export function evaluate(head: Head, data: LabelledEmbeddings): { loss: number; accuracy: number } {
  const d = head.embeddingSize;
  const p = new Float64Array(head.labels.length);
  let loss = 0;
  let correct = 0;
  data.labels.forEach((label, i) => {
    probabilities(head, data.embeddings.subarray(i * d, (i + 1) * d), p);
    const target = head.labels.indexOf(label);
    let best = 0;
    for (let c = 1; c < p.length; c++) if (p[c]! > p[best]!) best = c;
    if (best === target) correct++;
    loss -= Math.log(Math.max(target >= 0 ? p[target]! : 0, 1e-12));
  });
  const n = Math.max(data.labels.length, 1);
  return { loss: loss / n, accuracy: correct / n };
}

function concat(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
