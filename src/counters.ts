/**
 * A child process's counters, shared by its threads in a SharedArrayBuffer and updated with
 * Atomics, so the process sees one total however many threads accept.
 *
 * @module
 */

const OPEN = 0;
const ACCEPTED = 1;
const REJECTED = 2;
const SLOTS = 3;

/** Process-wide counters. */
export class Counters {
  readonly buffer: SharedArrayBuffer;
  readonly #cells: Int32Array;

  /** Wraps `buffer`, or makes a new one. */
  constructor(buffer = new SharedArrayBuffer(SLOTS * Int32Array.BYTES_PER_ELEMENT)) {
    this.buffer = buffer;
    this.#cells = new Int32Array(buffer);
  }

  /**
   * Counts a new client if fewer than `cap` are open in the process, atomically across its
   * threads: returns how many the process has accepted, this one included, or 0 when full.
   */
  tryAccept(cap: number): number {
    if (Atomics.add(this.#cells, OPEN, 1) >= cap) {
      Atomics.sub(this.#cells, OPEN, 1);
      return 0;
    }
    return Atomics.add(this.#cells, ACCEPTED, 1) + 1;
  }

  /** Counts a client that went away. */
  closed(): void {
    Atomics.sub(this.#cells, OPEN, 1);
  }

  /** Counts a malformed datagram dropped by a thread's bus endpoint. */
  rejected(): void {
    Atomics.add(this.#cells, REJECTED, 1);
  }

  /** Malformed datagrams dropped since the process started, by every thread. */
  get rejectedDatagrams(): number {
    return Atomics.load(this.#cells, REJECTED);
  }

  /** Clients open now, in every thread. */
  get open(): number {
    return Atomics.load(this.#cells, OPEN);
  }

  /** Clients accepted since the process started. */
  get handled(): number {
    return Atomics.load(this.#cells, ACCEPTED);
  }
}

/**
 * What each thread counts for `/metrics`, in the order of a thread's row. `open`, `joined`,
 * `heap_used` and `heap_total` are gauges the thread sets at each heartbeat; the others only
 * grow.
 */
export const THREAD_METRICS = [
  "accepted",
  "refused_server_full",
  "refused_shutting_down",
  "open",
  "joined",
  "received_join",
  "received_chat",
  "received_who",
  "received_ping",
  "received_leav",
  "received_help",
  "received_other",
  "deliveries",
  "bytes_out",
  "slow_consumers",
  "datagrams_rejected",
  "records_dropped",
  "heap_used",
  "heap_total",
] as const;

/** The name of a thread metric. */
export type ThreadMetric = typeof THREAD_METRICS[number];

/** A thread metric's place in its row. */
export const M: Readonly<Record<ThreadMetric, number>> = Object.fromEntries(
  THREAD_METRICS.map((name, index) => [name, index]),
) as Record<ThreadMetric, number>;

/**
 * The rows of a process's threads, one Float64 row each, in a SharedArrayBuffer: each thread
 * adds to its own row only (a plain `+=`, no Atomics: one writer per cell), and the process
 * reads every row at a heartbeat. Float64 counts exactly up to 2^53.
 */
export class ThreadMetrics {
  readonly buffer: SharedArrayBuffer;
  readonly #cells: Float64Array;

  /** Wraps `buffer`, or makes one for `threads` rows. */
  constructor(threads: number, buffer?: SharedArrayBuffer) {
    this.buffer = buffer ??
      new SharedArrayBuffer(threads * THREAD_METRICS.length * Float64Array.BYTES_PER_ELEMENT);
    this.#cells = new Float64Array(this.buffer);
  }

  /** Thread `tId`'s row, to add to. */
  row(tId: number): Float64Array {
    const start = tId * THREAD_METRICS.length;
    return this.#cells.subarray(start, start + THREAD_METRICS.length);
  }

  /** Every row, back to back: what a child reports on its heartbeat. */
  snapshot(): number[] {
    return Array.from(this.#cells);
  }
}
