/**
 * Splits a byte stream into lines without ever holding more than one line's limit.
 *
 * @module
 */

/** What the splitter found in the bytes it was given. */
export interface LineSink {
  /** A complete line, without its LF or CRLF. The view is valid only during the call. */
  line(bytes: Uint8Array): void;
  /** A line longer than the limit began; its bytes are discarded up to the next LF. */
  tooLong(): void;
}

const LF = 10;
const CR = 13;

/**
 * Cuts chunks of a stream into lines of at most `maxLineBytes` bytes (line ending excluded).
 * A longer line is reported once through {@linkcode LineSink.tooLong} as soon as it passes
 * the limit, then skipped up to its LF, so a line that never ends costs no more memory than
 * the limit.
 */
export class LineSplitter {
  readonly #max: number;
  /**
   * Holds the start of a line cut between two chunks; made when needed and dropped when the
   * line is complete, so an idle connection does not keep a buffer of the line limit.
   */
  #partial: Uint8Array | undefined;
  #partialLength = 0;
  #discarding = false;

  constructor(maxLineBytes: number) {
    this.#max = maxLineBytes;
  }

  /** The buffer for partial lines: the limit plus one byte for a CR before the LF. */
  #buffer(): Uint8Array {
    return this.#partial ??= new Uint8Array(this.#max + 1);
  }

  /** True when no line is under way: neither the start of one held nor a long one skipped. */
  get idle(): boolean {
    return this.#partialLength === 0 && !this.#discarding;
  }

  /** True while the start of an unfinished line is held. */
  get hasPartial(): boolean {
    return this.#partialLength > 0;
  }

  /** Feeds the next chunk; calls `sink` for every line it completes. */
  push(chunk: Uint8Array, sink: LineSink): void {
    let start = 0;
    while (start < chunk.length) {
      const lf = chunk.indexOf(LF, start);
      const end = lf === -1 ? chunk.length : lf;
      if (this.#discarding) {
        if (lf !== -1) this.#discarding = false;
      } else if (this.#partialLength + (end - start) > this.#max + 1) {
        this.#partialLength = 0;
        this.#partial = undefined;
        this.#discarding = lf === -1;
        sink.tooLong();
      } else if (lf === -1) {
        this.#buffer().set(chunk.subarray(start, end), this.#partialLength);
        this.#partialLength += end - start;
      } else if (this.#partialLength === 0) {
        this.#emit(chunk.subarray(start, end), sink);
      } else {
        const buffer = this.#buffer();
        buffer.set(chunk.subarray(start, end), this.#partialLength);
        const whole = buffer.subarray(0, this.#partialLength + end - start);
        this.#partialLength = 0;
        this.#partial = undefined;
        this.#emit(whole, sink);
      }
      start = end + 1;
    }
  }

  #emit(line: Uint8Array, sink: LineSink): void {
    const length = line.length > 0 && line[line.length - 1] === CR ? line.length - 1 : line.length;
    if (length > this.#max) sink.tooLong();
    else sink.line(length === line.length ? line : line.subarray(0, length));
  }
}
