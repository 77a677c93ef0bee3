/**
 * A thread's flush rounds: when its queued output is written to the clients.
 *
 * Replies and direct messages are written at the end of the turn that made them. Broadcast
 * output (room messages, `JOINED`/`LEFT` notices) is written in paced rounds: after a round
 * that took {@linkcode PACE_FROM_MS} or more, the next one waits
 * {@linkcode PAUSE_PER_CLIENT_MS} for each client the round wrote to. Quicker rounds are not
 * paced: a thread that is not busy writing keeps its latency.
 *
 * Why: a TCP write costs about 7 µs of CPU on loopback (two thirds of it in the kernel)
 * however little it carries. Under a join storm every `JOIN` is a `JOINED` line for everyone
 * already there; a thread with 1,250 members that writes each of them once per incoming
 * datagram spends nearly all its time in `write` (65% of its CPU, before this), which leaves
 * little for the joins themselves, so few arrive per round and the batches stay small. With
 * the pause, what arrives meanwhile piles up and one write carries many lines. The first
 * round after a quiet spell is never held back.
 *
 * Order is not affected: each connection has one queue, and a round only decides when it is
 * written. A connection whose queue holds a reply is written at the end of the turn, with
 * the broadcast output before it.
 *
 * @module
 */

/** Something a round can write out. */
export interface Flushable {
  /** Starts writing what is queued; false when there was nothing to write. */
  flush(): boolean;
}

/** Paced rounds that take less time than this are not followed by a pause. */
export const PACE_FROM_MS = 2;
/**
 * The pause after a long paced round, per client it wrote to: at most 5,000 broadcast writes
 * a second while a thread is busy, each costing ~7 µs, so writing takes a few percent of it.
 */
export const PAUSE_PER_CLIENT_MS = 0.2;

/** Options of {@linkcode FlushRounds}. */
export interface FlushRoundsOptions {
  /** The clock, in milliseconds. Default `performance.now`. */
  now?: () => number;
  /** Runs `callback` after `ms`. Default `setTimeout`. */
  delay?: (callback: () => void, ms: number) => void;
  /** Runs `callback` at the end of this turn. Default `queueMicrotask`. */
  soon?: (callback: () => void) => void;
}

/**
 * Collects connections with output waiting and writes them: those with replies or direct
 * messages at the end of the turn, those with only broadcast output in paced rounds.
 */
export class FlushRounds<T extends Flushable> {
  #soonItems: T[] = [];
  #pacedItems: T[] = [];
  #soonScheduled = false;
  #pacedScheduled = false;
  /** No paced round starts before this time. */
  #notBefore = 0;
  readonly #now: () => number;
  readonly #delay: (callback: () => void, ms: number) => void;
  readonly #soon: (callback: () => void) => void;
  readonly #runSoon = () => this.#soonRound();
  readonly #runPaced = () => this.#pacedRound();

  constructor(options: FlushRoundsOptions = {}) {
    this.#now = options.now ?? (() => performance.now());
    this.#delay = options.delay ?? ((callback, ms) => setTimeout(callback, ms));
    this.#soon = options.soon ?? queueMicrotask;
  }

  /** Connections waiting for a round. */
  get waiting(): number {
    return this.#soonItems.length + this.#pacedItems.length;
  }

  /**
   * Puts `item` in the round at the end of this turn, or with `paced`, in the next paced
   * round. An item may be in both; its second flush finds nothing left to write.
   */
  add(item: T, paced = false): void {
    if (!paced) {
      this.#soonItems.push(item);
      if (!this.#soonScheduled) {
        this.#soonScheduled = true;
        this.#soon(this.#runSoon);
      }
      return;
    }
    this.#pacedItems.push(item);
    if (!this.#pacedScheduled) this.#schedulePaced();
  }

  #schedulePaced(): void {
    this.#pacedScheduled = true;
    const wait = this.#notBefore - this.#now();
    if (wait > 0) this.#delay(this.#runPaced, wait);
    else this.#soon(this.#runPaced);
  }

  #soonRound(): void {
    const items = this.#soonItems;
    this.#soonItems = [];
    this.#soonScheduled = false;
    for (const item of items) item.flush();
  }

  #pacedRound(): void {
    const items = this.#pacedItems;
    this.#pacedItems = [];
    let written = 0;
    const start = this.#now();
    for (const item of items) if (item.flush()) written++;
    const end = this.#now();
    this.#notBefore = end - start >= PACE_FROM_MS ? end + written * PAUSE_PER_CLIENT_MS : 0;
    this.#pacedScheduled = false;
    if (this.#pacedItems.length > 0) this.#schedulePaced();
  }
}
