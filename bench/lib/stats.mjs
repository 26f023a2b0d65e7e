/** Small statistics helpers: summaries of repeated runs, percentiles of samples. */

/** Percentile (0..100) of an ascending-sorted array, nearest-rank with linear interpolation. */
export function percentileSorted(sorted, p) {
  if (sorted.length === 0) return NaN;
  if (sorted.length === 1) return sorted[0];
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
}

export function percentile(values, p) {
  return percentileSorted([...values].sort((a, b) => a - b), p);
}

export function median(values) {
  return percentile(values, 50);
}

/** { min, median, max, runs } of a list of run results (NaN/undefined dropped). */
export function summarize(values) {
  const runs = values.filter((v) => typeof v === "number" && Number.isFinite(v));
  if (runs.length === 0) return { min: NaN, median: NaN, max: NaN, runs: [] };
  const sorted = [...runs].sort((a, b) => a - b);
  return { min: sorted[0], median: percentileSorted(sorted, 50), max: sorted[sorted.length - 1], runs };
}

/** Latency samples (ms) to { n, p50, p90, p99, max }. */
export function latencySummary(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    n: sorted.length,
    p50: percentileSorted(sorted, 50),
    p90: percentileSorted(sorted, 90),
    p99: percentileSorted(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1] : NaN,
  };
}

/** Ratio a/b of two medians, or NaN. */
export function ratio(a, b) {
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : NaN;
}
