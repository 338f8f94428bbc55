// The machine the benchmarks run on is shared and noisy, so repeated runs are summarised by
// their median, which one disturbed run cannot drag around the way it drags a mean.

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  // values is not empty: 0 <= middle < length, and an even length has middle - 1 >= 0.
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}
