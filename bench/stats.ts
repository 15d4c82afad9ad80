/** Summaries of repeated measurements: median and mean with min and max, and percentiles of samples. */

export interface Spread {
  median: number;
  /** Unbiased where each value is quantised (CPU in 10 ms ticks) at a random phase, as a median is not. */
  mean: number;
  min: number;
  max: number;
  n: number;
}

/** Nearest-rank percentile (p in 0..100) of unsorted samples; NaN when there are none. */
export function percentile(samples: ArrayLike<number>, p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = Float64Array.from(samples).sort();
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] as number;
}

/** Median, mean, min and max of the finite values; null when no value is finite. */
export function spread(values: readonly number[]): Spread | null {
  const finite = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (finite.length === 0) return null;
  const mid = finite.length >> 1;
  const median = finite.length % 2 === 1 ? (finite[mid] as number) : ((finite[mid - 1] as number) + (finite[mid] as number)) / 2;
  const mean = finite.reduce((a, b) => a + b, 0) / finite.length;
  return { median, mean, min: finite[0] as number, max: finite[finite.length - 1] as number, n: finite.length };
}

/** Spread of one field over a list of run results. */
export function spreadOf<T>(runs: readonly T[], pick: (run: T) => number | null | undefined): Spread | null {
  return spread(runs.map(pick).filter((v): v is number => typeof v === 'number'));
}
