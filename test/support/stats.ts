/** Summaries the benchmarks print. */

/**
 * The q-quantile of some values (nearest rank).
 *
 * @example
 * quantile([3, 1, 2], 0.5); // 2
 */
export function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}
