/**
 * A latency histogram with log-linear buckets (as HdrHistogram): exact below 128 µs, then 64
 * buckets per power of two, so every percentile is within 1.6 % of the true value, whatever
 * the number of samples. Loadgens send theirs to the runner, which merges them.
 *
 * @module
 */

const SUB_BUCKETS = 128;
const HALF = SUB_BUCKETS / 2;
/** Enough buckets for 2^31 µs (36 minutes). */
const BUCKETS = (31 - 6) * HALF + SUB_BUCKETS;

/** Percentiles of a histogram, in µs. */
export interface LatencySummary {
  count: number;
  mean: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

/** A histogram of microsecond values. */
export class Histogram {
  readonly #counts = new Float64Array(BUCKETS);
  #count = 0;
  #sum = 0;
  #max = 0;

  /** Adds one value in µs; negative values (clock skew) count as 0. */
  record(us: number): void {
    const value = us > 0 ? Math.min(Math.round(us), 2 ** 31 - 1) : 0;
    this.#counts[bucketOf(value)]!++;
    this.#count++;
    this.#sum += value;
    if (value > this.#max) this.#max = value;
  }

  /** Adds every value of `other`. */
  merge(other: HistogramData): void {
    for (const [bucket, count] of other.buckets) this.#counts[bucket]! += count;
    this.#count += other.count;
    this.#sum += other.sum;
    this.#max = Math.max(this.#max, other.max);
  }

  /** The value at quantile `q` (0..1), in µs: the middle of its bucket. */
  quantile(q: number): number {
    if (this.#count === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * this.#count));
    let seen = 0;
    for (let bucket = 0; bucket < BUCKETS; bucket++) {
      seen += this.#counts[bucket]!;
      if (seen >= rank) return Math.min(middleOf(bucket), this.#max);
    }
    return this.#max;
  }

  /** Count, mean and the percentiles the reports use. */
  summary(): LatencySummary {
    return {
      count: this.#count,
      mean: this.#count === 0 ? NaN : this.#sum / this.#count,
      p50: this.quantile(0.5),
      p99: this.quantile(0.99),
      p999: this.quantile(0.999),
      max: this.#count === 0 ? NaN : this.#max,
    };
  }

  /** The non-empty buckets, for JSON. */
  toJSON(): HistogramData {
    const buckets: [number, number][] = [];
    for (let bucket = 0; bucket < BUCKETS; bucket++) {
      const count = this.#counts[bucket]!;
      if (count > 0) buckets.push([bucket, count]);
    }
    return { count: this.#count, sum: this.#sum, max: this.#max, buckets };
  }
}

/** A histogram as JSON: `[bucket, count]` pairs of the non-empty buckets. */
export interface HistogramData {
  count: number;
  sum: number;
  max: number;
  buckets: [number, number][];
}

function bucketOf(value: number): number {
  if (value < SUB_BUCKETS) return value;
  // Shift so that the top 7 bits remain: value >>> shift lies in [64, 128).
  const shift = 31 - Math.clz32(value) - 6;
  return shift * HALF + (value >>> shift);
}

function middleOf(bucket: number): number {
  if (bucket < SUB_BUCKETS) return bucket;
  const shift = Math.floor(bucket / HALF) - 1;
  const mantissa = bucket - shift * HALF;
  return (mantissa + 0.5) * 2 ** shift;
}
