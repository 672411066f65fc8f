/**
 * The `Server-Timing` header of a classify or fine-tune answer, so browser devtools and load
 * balancers show where its time went (the same figures as the body's `timing`).
 */

/** The parts of a request's `timing` the header reports, in milliseconds. */
export interface TimingFigures {
  decodeMs?: number;
  queueMs?: number;
  inferenceMs?: number;
  updateMs?: number;
  totalMs?: number;
}

const METRICS: [keyof TimingFigures, string, string][] = [
  ["decodeMs", "decode", "image decoding and preprocessing"],
  ["queueMs", "queue", "waiting for the batch"],
  ["inferenceMs", "inference", "model run"],
  ["updateMs", "update", "head training"],
  ["totalMs", "total", "whole request"],
];

/**
 * The header's value: one metric per figure present, with its description.
 *
 * @example
 * serverTiming({ decodeMs: 0.4, queueMs: 0, inferenceMs: 1.2 });
 * // 'decode;dur=0.4;desc="image decoding and preprocessing", queue;dur=0;desc="waiting for the batch", inference;dur=1.2;desc="model run"'
 */
export function serverTiming(timing: TimingFigures): string {
  return METRICS.filter(([key]) => Number.isFinite(timing[key]))
    .map(([key, name, desc]) => `${name};dur=${Math.round(timing[key]! * 1000) / 1000};desc="${desc}"`)
    .join(", ");
}
