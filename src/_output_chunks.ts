/**
 * Shared output: a line sent to many clients of a thread is copied once, into a chunk, and
 * each client's queue holds a {@linkcode Span} of that chunk instead of its own copy.
 *
 * Why: under a join storm or a busy room, a thread appends the same line to hundreds of
 * queues between two flush rounds. When each queue keeps its own list of lines, every
 * client costs an array slot per line and a copy per round to join them up. Broadcast lines
 * are appended one after another to the same chunk, so a client that gets all of them has
 * one span whose end just moves forward, and its write is a view of the chunk: no copy.
 * A client that must skip a line (the sender of a room message) simply starts a new span.
 * A thread keeps its lines for one client (replies, direct messages) in chunks of their own
 * (`Thread.#replyChunks`), so that they do not lie between its broadcast lines and split every
 * member's span.
 *
 * @module
 */

const encoder = new TextEncoder();

/** Chunk size: many short lines, and room for the longest line a client may send. */
export const CHUNK_BYTES = 64 * 1024;

/** Bytes `start` to `end` of a shared chunk; `end` grows while the span is the queue's last. */
export class Span {
  readonly chunk: Uint8Array;
  readonly start: number;
  end: number;

  constructor(chunk: Uint8Array, start: number, end: number) {
    this.chunk = chunk;
    this.start = start;
    this.end = end;
  }

  /** The bytes, as a view (no copy). */
  bytes(): Uint8Array {
    return this.chunk.subarray(this.start, this.end);
  }

  get length(): number {
    return this.end - this.start;
  }
}

/**
 * Append-only chunks for one thread's broadcast lines. Bytes once written never change, so
 * spans and writes under way can keep pointing into a chunk after it is full; a full chunk
 * is left to the garbage collector once nothing points into it.
 */
export class OutputChunks {
  readonly #chunkBytes: number;
  #chunk: Uint8Array;
  #used = 0;
  /** The chunk of the last {@linkcode append}. */
  chunk: Uint8Array;
  /** Where the last appended line starts and ends in {@linkcode chunk}. */
  start = 0;
  end = 0;

  constructor(chunkBytes = CHUNK_BYTES) {
    this.#chunkBytes = chunkBytes;
    this.#chunk = new Uint8Array(chunkBytes);
    this.chunk = this.#chunk;
  }

  /** Copies `line` into the current chunk (a new one when it does not fit); see the fields. */
  append(line: Uint8Array): void {
    this.#room(line.length);
    this.#chunk.set(line, this.#used);
    this.#appended(line.length);
  }

  /**
   * Encodes `line` straight into the current chunk; see the fields. A typed array of its own
   * for each line costs several times the encoding (V8 allocates its backing store outside
   * the heap), and most lines are sent once: this is how every line is made.
   */
  appendText(line: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 code unit.
    this.#room(line.length * 3);
    const { written } = encoder.encodeInto(line, this.#chunk.subarray(this.#used));
    this.#appended(written);
  }

  /** The current chunk as a view of the last appended line (a copy-free `Uint8Array`). */
  line(): Uint8Array {
    return this.chunk.subarray(this.start, this.end);
  }

  /** Makes sure `bytes` fit after what the current chunk holds. */
  #room(bytes: number): void {
    if (this.#used + bytes > this.#chunk.length) {
      this.#chunk = new Uint8Array(Math.max(this.#chunkBytes, bytes));
      this.#used = 0;
    }
  }

  #appended(bytes: number): void {
    this.chunk = this.#chunk;
    this.start = this.#used;
    this.#used += bytes;
    this.end = this.#used;
  }
}
