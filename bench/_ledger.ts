/**
 * The receivers' ledger: for every stream (one receiver, one sender) which sequence numbers
 * arrived, so that loss, reordering and duplicates can be told apart. Each stream keeps the
 * next sequence number it expects and the set of numbers it skipped (usually empty), so a
 * delivery costs a comparison and an increment.
 *
 * @module
 */
import type { DeliveryCounts } from "./_messages.ts";

/**
 * What a delivery turned out to be: the next one or a later one (`in-order`: what it skipped
 * may still come), one that had been skipped (`reordered`), one that came before (`duplicate`).
 */
export type Arrival = "in-order" | "reordered" | "duplicate";

/** The ledger of `receivers × senders` streams. */
export class Ledger {
  readonly #senders: number;
  readonly #next: Float64Array;
  readonly #distinct: Float64Array;
  /** Sequence numbers skipped so far, per stream that has any. */
  readonly #gaps = new Map<number, Set<number>>();
  #reordered = 0;
  #duplicates = 0;

  constructor(receivers: number, senders: number) {
    this.#senders = senders;
    this.#next = new Float64Array(receivers * senders);
    this.#distinct = new Float64Array(receivers * senders);
  }

  /** Enters a delivery of message `seq` of `sender` to `receiver`. */
  record(receiver: number, sender: number, seq: number): Arrival {
    const stream = receiver * this.#senders + sender;
    const next = this.#next[stream]!;
    let arrival: Arrival = "in-order";
    if (seq > next) {
      let gap = this.#gaps.get(stream);
      if (gap === undefined) this.#gaps.set(stream, gap = new Set());
      for (let missing = next; missing < seq; missing++) gap.add(missing);
    } else if (seq < next) {
      if (!this.#gaps.get(stream)?.delete(seq)) {
        this.#duplicates++;
        return "duplicate";
      }
      this.#reordered++;
      arrival = "reordered";
    }
    if (seq >= next) this.#next[stream] = seq + 1;
    this.#distinct[stream]!++;
    return arrival;
  }

  /** Sets how many messages of `sender` `receiver` should get, for {@linkcode counts}. */
  static expectation(
    receivers: number,
    senders: number,
    expect: (receiver: number, sender: number) => number,
  ): Float64Array {
    const expected = new Float64Array(receivers * senders);
    for (let receiver = 0; receiver < receivers; receiver++) {
      for (let sender = 0; sender < senders; sender++) {
        expected[receiver * senders + sender] = expect(receiver, sender);
      }
    }
    return expected;
  }

  /** True when every expected delivery has arrived. */
  complete(expected: Float64Array): boolean {
    for (let stream = 0; stream < expected.length; stream++) {
      if (this.#distinct[stream]! < expected[stream]!) return false;
    }
    return true;
  }

  /**
   * The counts against `expected` (per stream, from {@linkcode expectation}); deliveries on
   * streams beyond what they expect are returned as `extra`.
   */
  counts(expected: Float64Array): DeliveryCounts & { extra: number } {
    let want = 0, distinct = 0, lost = 0, extra = 0;
    for (let stream = 0; stream < expected.length; stream++) {
      const got = this.#distinct[stream]!, exp = expected[stream]!;
      want += exp;
      distinct += Math.min(got, exp);
      lost += Math.max(0, exp - got);
      extra += Math.max(0, got - exp);
    }
    return {
      expected: want,
      distinct,
      lost,
      reordered: this.#reordered,
      duplicates: this.#duplicates,
      extra,
    };
  }
}
