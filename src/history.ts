/**
 * The last lines said in each room, kept by the supervisor.
 *
 * Every thread sends the supervisor a copy of each room message (the same `ROOM` or `NAMED`
 * record it sends the other threads), so one place sees them all. Order: the order in
 * which the supervisor received them, each stamped with its receive time; one sender's
 * lines keep the order it sent them (one thread → supervisor socket is FIFO). Every reader
 * therefore gets the same lines in the same order, whichever process served the senders.
 * The supervisor takes a copy when it orders a user's entry and sends it to the user's
 * thread ahead of the confirmation, which writes it between `OK JOIN` and `USERS`.
 *
 * @module
 */
import { nameKey, ROOM } from "./protocol.ts";

/** One line of history. */
export interface HistoryLine {
  /** Milliseconds since the epoch, as the supervisor received it. */
  time: number;
  sender: string;
  text: string;
}

/** Options of {@linkcode History}. */
export interface HistoryOptions {
  /** Lines kept per room (`--history`); 0 keeps none. */
  lines: number;
  /** Rooms whose history is kept, the lobby included; the least recently used goes first. */
  maxRooms: number;
  /**
   * Bytes of history kept in all, roughly (text and sender as UTF-16 length, plus 32 a line);
   * beyond, the least recently used rooms are forgotten. Default 64 MiB.
   */
  maxBytes?: number;
}

/** The bytes a line is counted for against {@linkcode HistoryOptions.maxBytes}. */
export function lineBytes(line: HistoryLine): number {
  return line.text.length + line.sender.length + 32;
}

/** The last lines of every room, the lobby (`*`) included. */
export class History {
  readonly #limit: number;
  readonly #maxRooms: number;
  readonly #maxBytes: number;
  #bytes = 0;
  /** By room key; in order of last use. Each array is at most `#limit` long. */
  readonly #rooms = new Map<string, { lines: HistoryLine[]; bytes: number }>();

  constructor(options: HistoryOptions) {
    this.#limit = options.lines;
    this.#maxRooms = Math.max(1, options.maxRooms);
    this.#maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
  }

  /** Bytes kept, as counted by {@linkcode lineBytes}. */
  get bytes(): number {
    return this.#bytes;
  }

  #forgetOldestRoom(): void {
    const [key, room] = this.#rooms.entries().next().value!;
    this.#rooms.delete(key);
    this.#bytes -= room.bytes;
  }

  /** True when history is kept at all. */
  get enabled(): boolean {
    return this.#limit > 0;
  }

  /** Adds a line to `room` (`*` or `#name`, any letter case), dropping the oldest beyond the limit. */
  add(room: string, line: HistoryLine): void {
    if (this.#limit === 0) return;
    const key = room === ROOM ? ROOM : nameKey(room);
    let kept = this.#rooms.get(key);
    if (kept === undefined) {
      kept = { lines: [], bytes: 0 };
      if (this.#rooms.size >= this.#maxRooms) this.#forgetOldestRoom();
    } else this.#rooms.delete(key);
    this.#rooms.set(key, kept);
    kept.lines.push(line);
    const size = lineBytes(line);
    kept.bytes += size;
    this.#bytes += size;
    if (kept.lines.length > this.#limit) {
      const gone = lineBytes(kept.lines.shift()!);
      kept.bytes -= gone;
      this.#bytes -= gone;
    }
    // The room just used is the last in the map: it goes only when it is alone and too big.
    while (this.#bytes > this.#maxBytes && this.#rooms.size > 1) this.#forgetOldestRoom();
    while (this.#bytes > this.#maxBytes && kept.lines.length > 0) {
      const gone = lineBytes(kept.lines.shift()!);
      kept.bytes -= gone;
      this.#bytes -= gone;
    }
  }

  /** A copy of `room`'s lines, oldest first. */
  lines(room: string): HistoryLine[] {
    return [...this.#rooms.get(room === ROOM ? ROOM : nameKey(room))?.lines ?? []];
  }

  /** Loads lines (oldest first) kept elsewhere, as at start-up. */
  load(room: string, lines: readonly HistoryLine[]): void {
    for (const line of lines) this.add(room, line);
  }
}

/**
 * The sender and text of a room message line, `ALL <sender> <text>\n` or
 * `ROOM #room <sender> <text>\n`, or undefined when `line` is neither.
 */
export function parseRoomLine(line: string): { sender: string; text: string } | undefined {
  const match = /^(?:ALL|ROOM #[A-Za-z0-9_-]+) ([A-Za-z0-9_-]+) ([^\n]*)\n$/.exec(line);
  return match ? { sender: match[1]!, text: match[2]! } : undefined;
}

/** The newest of `lines` that together count at most `maxBytes` (see {@linkcode lineBytes}). */
export function newestWithin(lines: HistoryLine[], maxBytes: number): HistoryLine[] {
  let bytes = 0;
  let first = lines.length;
  while (first > 0 && bytes + lineBytes(lines[first - 1]!) <= maxBytes) {
    bytes += lineBytes(lines[--first]!);
  }
  return first === 0 ? lines : lines.slice(first);
}

/**
 * Splits `lines` into groups whose JSON stays well inside a datagram. A line too long to
 * fit alone even so (only a 64 KiB line of characters JSON escapes could be) is left out.
 */
export function historyBatches(
  lines: readonly HistoryLine[],
  maxBytes = 96 * 1024,
): HistoryLine[][] {
  const batches: HistoryLine[][] = [];
  let batch: HistoryLine[] = [];
  let size = 0;
  for (const line of lines) {
    const bytes = JSON.stringify(line).length * 3;
    if (bytes > maxBytes) continue;
    if (size + bytes > maxBytes) {
      batches.push(batch);
      batch = [];
      size = 0;
    }
    batch.push(line);
    size += bytes;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}
