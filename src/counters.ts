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
