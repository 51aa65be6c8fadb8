/**
 * A log-bucketed latency histogram: values in milliseconds, buckets 1 % wide (so any percentile is
 * within 1 % of the true value), mergeable across processes, small enough to send over IPC and to
 * keep in the results file. Values below 0.01 ms count as 0.01 ms.
 */
const GROWTH = 1.01;
const MIN_MS = 0.01;
const LOG_GROWTH = Math.log(GROWTH);

/** Bucket index → count, as a plain object (JSON). */
export type Buckets = Record<string, number>;

export class Histogram {
  readonly buckets = new Map<number, number>();
  count = 0;
  max = 0;
  sum = 0;

  record(ms: number): void {
    const v = Math.max(MIN_MS, ms);
    const i = Math.floor(Math.log(v / MIN_MS) / LOG_GROWTH);
    this.buckets.set(i, (this.buckets.get(i) ?? 0) + 1);
    this.count++;
    this.sum += v;
    if (v > this.max) this.max = v;
  }

  merge(other: HistogramJson | Histogram): void {
    const json = other instanceof Histogram ? other.toJSON() : other;
    for (const [k, n] of Object.entries(json.buckets)) {
      const i = Number(k);
      this.buckets.set(i, (this.buckets.get(i) ?? 0) + n);
    }
    this.count += json.count;
    this.sum += json.sum;
    this.max = Math.max(this.max, json.max);
  }

  /** The value at quantile q (0–1): the upper edge of the bucket holding it, capped at the maximum. */
  quantile(q: number): number {
    if (this.count === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (const i of [...this.buckets.keys()].sort((a, b) => a - b)) {
      seen += this.buckets.get(i)!;
      if (seen >= rank) return Math.min(this.max, MIN_MS * GROWTH ** (i + 1));
    }
    return this.max;
  }

  mean(): number {
    return this.count === 0 ? NaN : this.sum / this.count;
  }

  toJSON(): HistogramJson {
    return { count: this.count, sum: this.sum, max: this.max, buckets: Object.fromEntries(this.buckets) };
  }

  static from(json: HistogramJson): Histogram {
    const h = new Histogram();
    h.merge(json);
    return h;
  }
}

export interface HistogramJson {
  count: number;
  sum: number;
  max: number;
  buckets: Buckets;
}
