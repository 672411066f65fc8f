/** Summaries the load test and the benchmarks print. */

/**
 * The q-quantile (0..1) of some values, nearest rank; 0 for none.
 *
 * @example
 * quantile([3, 1, 2, 4], 0.5); // 2
 */
export function quantile(values: readonly number[], q: number): number {
  if (!values.length) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}
