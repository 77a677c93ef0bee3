/**
 * The lobby's history held for joining sessions. The supervisor sends a joining user's
 * history ahead of the confirmation of its name (history.ts); the thread keeps it here, as
 * the protocol lines it will write, until the confirmation hands it to the session (written
 * after `OK JOIN`, ended by `HISTORY * END`) or the claim fails or the session closes.
 *
 * @module
 */
import type { HistoryLine } from "./history.ts";
import { Reply, ROOM } from "./protocol.ts";

/** History lines waiting for each joining session's confirmation, by session id. */
export class JoinHistory {
  readonly #enabled: boolean;
  readonly #held = new Map<number, string>();

  /** With `enabled` false (`--history 0`), a confirmation gets no history, not even its end. */
  constructor(enabled: boolean) {
    this.#enabled = enabled;
  }

  /** Keeps `lines` for session `id`, after what it holds already. */
  hold(id: number, lines: readonly HistoryLine[]): void {
    let text = this.#held.get(id) ?? "";
    for (const line of lines) text += Reply.history(ROOM, line.time, line.sender, line.text);
    this.#held.set(id, text);
  }

  /**
   * What session `id` is to be written at its confirmation: its held lines and
   * `HISTORY * END`, or undefined with history off. It holds nothing afterwards.
   */
  take(id: number): string | undefined {
    const text = this.#held.get(id) ?? "";
    this.#held.delete(id);
    return this.#enabled ? text + Reply.historyEnd(ROOM) : undefined;
  }

  /** Forgets session `id`'s lines: its claim failed, or it closed. */
  drop(id: number): void {
    this.#held.delete(id);
  }

  /** Sessions with lines held. */
  get size(): number {
    return this.#held.size;
  }
}
