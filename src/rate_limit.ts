/**
 * Flood control: a token bucket per client. A client over its rate is slowed down, never
 * disconnected: the connection stops reading until a token is due, so TCP pushes back on
 * the sender and nothing it sent is dropped.
 *
 * @module
 */

/** Options of {@linkcode TokenBucket}. */
export interface TokenBucketOptions {
  /** Tokens (lines) added per second. */
  rate: number;
  /** The most tokens the bucket holds: lines a client may send at once. */
  burst: number;
  /** The clock, in milliseconds. Defaults to `performance.now`. */
  now?: () => number;
}

/** The default clock: one function for every bucket, not a closure each (one per client). */
const performanceNow = () => performance.now();

/**
 * A token bucket that lends ahead: {@linkcode take} always succeeds and says how long the
 * caller must wait first, so waits queue up in order.
 *
 * @example
 * ```ts
 * const bucket = new TokenBucket({ rate: 10, burst: 2 });
 * bucket.take(); // 0: the first two are free
 * bucket.take(); // 0
 * bucket.take(); // 100: wait 100 ms before handling this line
 * ```
 */
export class TokenBucket {
  readonly #rate: number;
  readonly #burst: number;
  readonly #now: () => number;
  #tokens: number;
  #last: number;

  constructor(options: TokenBucketOptions) {
    if (!(options.rate > 0)) {
      throw new RangeError(`Cannot make a token bucket: rate ${options.rate}`);
    }
    this.#rate = options.rate;
    this.#burst = options.burst;
    this.#now = options.now ?? performanceNow;
    this.#tokens = options.burst;
    this.#last = this.#now();
  }

  /** Takes one token; returns the milliseconds to wait before using it (0 = now). */
  take(): number {
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) * this.#rate) / 1000);
    this.#last = now;
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : (-this.#tokens * 1000) / this.#rate;
  }
}
