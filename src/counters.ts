/**
 * A child process's counters, shared by its threads in a SharedArrayBuffer and updated with
 * Atomics, so the process sees one total however many threads accept.
 *
 * @module
 */

const OPEN = 0;
const ACCEPTED = 1;
const SLOTS = 2;

/** Process-wide client counters. */
export class Counters {
  readonly buffer: SharedArrayBuffer;
  readonly #cells: Int32Array;

  /** Wraps `buffer`, or makes a new one. */
  constructor(buffer = new SharedArrayBuffer(SLOTS * Int32Array.BYTES_PER_ELEMENT)) {
    this.buffer = buffer;
    this.#cells = new Int32Array(buffer);
  }

  /** Counts a new client; returns how many the process has accepted, this one included. */
  accepted(): number {
    Atomics.add(this.#cells, OPEN, 1);
    return Atomics.add(this.#cells, ACCEPTED, 1) + 1;
  }

  /** Counts a client that went away. */
  closed(): void {
    Atomics.sub(this.#cells, OPEN, 1);
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
