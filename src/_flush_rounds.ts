/**
 * A thread's flush rounds: when its queued output is written to the clients.
 *
 * Everything queued in a turn (replies, direct messages, room messages, `JOINED`/`LEFT`
 * notices) is written at the end of that turn, one write per connection: nothing is held
 * back to make writing cheaper.
 *
 * What keeps a join storm cheap is the connection's own queue (`_output_queue.ts`): it has at
 * most one write under way, and what arrives while a write is under way goes in the next
 * write, so a busy connection gets fewer, larger writes. A round takes everything a turn
 * queued, so the lines of all the commands and datagrams handled in that turn share one write.
 *
 * Order is not affected: each connection has one queue, and a round only decides when it is
 * written.
 *
 * @module
 */

/** Something a round can write out. */
export interface Flushable {
  /** Starts writing what is queued; false when there was nothing to write. */
  flush(): boolean;
}

/** Options of {@linkcode FlushRounds}. */
export interface FlushRoundsOptions {
  /** Runs `callback` at the end of this turn. Default `queueMicrotask`. */
  soon?: (callback: () => void) => void;
}

/** Collects connections with output waiting and writes them at the end of the turn. */
export class FlushRounds<T extends Flushable> {
  #items: T[] = [];
  #scheduled = false;
  readonly #soon: (callback: () => void) => void;
  readonly #run = () => this.#round();

  constructor(options: FlushRoundsOptions = {}) {
    this.#soon = options.soon ?? queueMicrotask;
  }

  /** Connections waiting for a round. */
  get waiting(): number {
    return this.#items.length;
  }

  /** Puts `item` in the round at the end of this turn. */
  add(item: T): void {
    this.#items.push(item);
    if (!this.#scheduled) {
      this.#scheduled = true;
      this.#soon(this.#run);
    }
  }

  #round(): void {
    const items = this.#items;
    this.#items = [];
    this.#scheduled = false;
    for (const item of items) item.flush();
  }
}
