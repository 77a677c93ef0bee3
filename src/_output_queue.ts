/**
 * One client's send queue: its own lines and spans of the thread's shared broadcast chunks,
 * written through its {@linkcode Transport} in the thread's flush rounds
 * (`_flush_rounds.ts`), one write at a time, with the slow-consumer limit and
 * end-after-flush.
 *
 * @module
 */
import { type OutputChunks, Span } from "./_output_chunks.ts";
import type { Transport, WriteDone } from "./transport.ts";
import { type Clock, SYSTEM_CLOCK } from "./_clock.ts";

/** What the queue needs from the client it belongs to. */
export interface OutputOwner {
  /** Has {@linkcode OutputQueue.flush} called in the thread's round at the end of this turn. */
  wantsFlush(queue: OutputQueue): void;
  /**
   * More than the limit is queued: the client does not read. Returns the last line to send
   * it (`ERR SLOW_CONSUMER`); the queue then ends, and closes after a grace period at most.
   */
  overflowed(): Uint8Array;
  /** The queue is done: ended and flushed, the grace period passed, or a write failed. */
  finished(): void;
}

/** Options of {@linkcode OutputQueue}. */
export interface OutputQueueOptions {
  /** Bytes queued (held lines and writes under way included) before the client is dropped. */
  maxBytes: number;
  /** How long a dropped slow consumer gets to take its last line. Default 250 ms. */
  graceMs?: number;
  /** Default {@linkcode SYSTEM_CLOCK}. */
  clock?: Clock;
}

/** How long a dropped slow consumer gets to take its `ERR SLOW_CONSUMER`. */
export const SLOW_CONSUMER_GRACE_MS = 250;

/** One client's output. */
export class OutputQueue implements WriteDone {
  readonly #transport: Transport;
  readonly #owner: OutputOwner;
  readonly #options: OutputQueueOptions;
  /** Queued output: lines of its own, and spans of the thread's shared broadcast chunks. */
  #out: (Uint8Array | Span)[] = [];
  /** The span `#out` ends with, if it ends with one: the one a following line may grow. */
  #tail: Span | undefined;
  /** Bytes in `#out`, plus bytes charged for lines held elsewhere (see {@linkcode charge}). */
  #bytes = 0;
  /** Bytes of the write under way. */
  #writingBytes = 0;
  /** Waiting for the thread's flush round at the end of the turn. */
  #inRound = false;
  #writing = false;
  #ending = false;
  /** Past its limit: nothing more is queued. */
  #overflowed = false;
  #closed = false;

  /**
   * @param options shared by every queue of a thread: each holds a reference, not a copy.
   */
  constructor(transport: Transport, owner: OutputOwner, options: OutputQueueOptions) {
    this.#transport = transport;
    this.#owner = owner;
    this.#options = options;
  }

  /** Bytes queued and not yet taken by the kernel, held lines charged included. */
  get queuedBytes(): number {
    return this.#bytes + this.#writingBytes;
  }

  /** True once {@linkcode end} was called (or the client overflowed). */
  get ending(): boolean {
    return this.#ending;
  }

  /** Queues bytes (whole lines) for the next round at the end of this turn. */
  write(bytes: Uint8Array): void {
    if (this.#closed || this.#overflowed) return;
    this.#out.push(bytes);
    this.#tail = undefined;
    if (this.#count(bytes.length)) this.#requestFlush();
  }

  /**
   * Queues the line just appended to the thread's shared `chunks`. When
   * the queue ends with the span of the line before, that span grows instead (see
   * `src/_output_chunks.ts`).
   */
  broadcast(chunks: OutputChunks): void {
    if (this.#closed || this.#overflowed) return;
    const tail = this.#tail;
    if (tail !== undefined && tail.chunk === chunks.chunk && tail.end === chunks.start) {
      // A queue that is not empty already waits for a round or a write: only the count grows.
      tail.end = chunks.end;
      this.#count(chunks.end - chunks.start);
      return;
    }
    const span = new Span(chunks.chunk, chunks.start, chunks.end);
    this.#out.push(span);
    this.#tail = span;
    if (this.#count(chunks.end - chunks.start)) this.#requestFlush();
  }

  /**
   * Counts `bytes` held for this client elsewhere (lines held while it joins) against the
   * limit. False when that made the client a slow consumer.
   */
  charge(bytes: number): boolean {
    if (this.#closed || this.#overflowed) return false;
    return this.#count(bytes);
  }

  /** Takes back a {@linkcode charge}: the held lines were queued or dropped. */
  discharge(bytes: number): void {
    if (!this.#overflowed) this.#bytes -= bytes;
  }

  /** Counts `bytes` more queued; false when that made this client a slow consumer. */
  #count(bytes: number): boolean {
    this.#bytes += bytes;
    if (this.#bytes + this.#writingBytes <= this.#options.maxBytes) return true;
    // An ending client's last output is already on its way.
    if (!this.#ending) this.#overflow();
    return false;
  }

  #overflow(): void {
    this.#overflowed = true;
    const line = this.#owner.overflowed();
    if (this.#closed) return;
    this.#out = [line];
    this.#tail = undefined;
    this.#bytes = line.length;
    this.#ending = true;
    this.#requestFlush();
    (this.#options.clock ?? SYSTEM_CLOCK).setTimeout(
      () => this.#finish(),
      this.#options.graceMs ?? SLOW_CONSUMER_GRACE_MS,
    );
  }

  #requestFlush(): void {
    // A write under way asks again when it is done: what came meanwhile goes in the next one.
    if (this.#writing || this.#inRound) return;
    this.#inRound = true;
    this.#owner.wantsFlush(this);
  }

  /**
   * Writes what is queued, as one transport write. Called by the thread's flush rounds.
   *
   * @returns false when there was nothing to write (or a write is still under way).
   */
  flush(): boolean {
    this.#inRound = false;
    if (this.#writing || this.#closed) return false;
    if (this.#out.length > 0) {
      this.#writeOut();
      return true;
    }
    if (this.#ending) this.#finish();
    return false;
  }

  #writeOut(): void {
    this.#writing = true;
    const out = this.#out;
    this.#out = [];
    this.#tail = undefined;
    // Spans become views of their chunk, in place: the transport takes plain bytes.
    let bytes = 0;
    for (let i = 0; i < out.length; i++) {
      const part = out[i]!;
      if (part instanceof Span) out[i] = part.bytes();
      bytes += part.length;
    }
    this.#bytes -= bytes;
    this.#writingBytes = bytes;
    this.#transport.write(out as Uint8Array[], this);
  }

  /** @internal The transport took the last write. */
  written(): void {
    this.#writing = false;
    this.#writingBytes = 0;
    // What came meanwhile goes in the next round.
    if (this.#out.length > 0) this.#requestFlush();
    else if (this.#ending) this.#finish();
  }

  /** @internal The last write failed: the connection is gone. */
  failed(): void {
    this.#writing = false;
    this.#writingBytes = 0;
    this.#finish();
  }

  /** Finishes once what was queued so far has been written. */
  end(): void {
    this.#ending = true;
    if (!this.#inRound && !this.#writing) this.#finish();
  }

  #finish(): void {
    if (this.#closed) return;
    this.#owner.finished();
  }

  /** Drops what is queued; nothing more is queued or written. */
  close(): void {
    this.#closed = true;
    this.#out = [];
    this.#tail = undefined;
    this.#bytes = 0;
  }
}
