/**
 * Small statistics for benchmark figures: medians and percentiles.
 *
 * @module
 */

/**
 * The `p`-th percentile by nearest rank.
 *
 * @param values The samples (not changed).
 * @param p From 0 to 100.
 * @returns The percentile, or NaN without samples.
 */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/**
 * The median (the mean of the middle two for an even count).
 *
 * @param values The samples (not changed).
 * @returns The median, or NaN without samples.
 */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? sorted[middle]
    : (sorted[middle - 1] + sorted[middle]) / 2;
}
