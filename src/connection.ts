/**
 * One client's TCP connection: reads lines and runs them in order, batches what it writes.
 *
 * @module
 */
import { type LineSink, LineSplitter } from "./_line_reader.ts";
import { type OutputChunks, Span } from "./_output_chunks.ts";
import { dispatch, type Session } from "./commands.ts";
import { ErrorCode, Reply } from "./protocol.ts";
import { TokenBucket } from "./rate_limit.ts";

/** Where a connection stands with the directory. */
export type ConnectionState =
  /** Connected, no name. */
  | "anonymous"
  /** `JOIN` sent to the directory, answer not yet back. */
  | "joining"
  /** Holds a name. */
  | "joined"
  /** `LEAV` sent, waiting for the directory to free the name before `BYE`. */
  | "leaving"
  | "closed";

/** What a connection needs from the thread that serves it. */
export interface ConnectionHost {
  /** Asks the directory for `name` on behalf of `connection`. */
  claim(connection: Connection, name: string): void;
  /** Gives `connection`'s name back to the directory. */
  release(connection: Connection): void;
  direct(from: Connection, to: string, text: string): boolean;
  room(from: Connection, text: string): void;
  users(): readonly string[];
  /** Called once when the connection has closed, with the state it was in. */
  closed(connection: Connection, previous: ConnectionState): void;
  /** A handler threw while serving `connection`; the connection is closed. */
  failed(connection: Connection, error: unknown): void;
  /** `connection` is being dropped: it does not read what it is sent. */
  slowConsumer(connection: Connection): void;
  /**
   * Has {@linkcode Connection.flush} called in the thread's flush round at the end of this
   * turn, or with `paced` (only broadcast output is queued), in its next paced round.
   */
  wantsFlush(connection: Connection, paced: boolean): void;
  /** `FAULT <what>`: injects a fault when fault injection is on; false when it is off. */
  fault(connection: Connection, what: string): boolean;
}

/** Settings of a connection. */
export interface ConnectionOptions {
  maxLineBytes: number;
  /** Milliseconds to join before `ERR TIMEOUT`. */
  joinTimeoutMs: number;
  /** Lines per second before the connection is slowed down; 0 = no limit. */
  rate: number;
  /** Lines that may come at once before `rate` applies. */
  burst: number;
  /** Bytes queued for the client before it is dropped as a slow consumer. */
  maxSendQueue: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });
/**
 * Reads use a small buffer, since chat lines are short and most connections idle: a pending
 * read holds its buffer, so it is a good part of an idle connection's memory (256 B rather
 * than 1 KiB saves about 0.75 KiB a connection). A read that fills it switches the
 * connection to the large one, and a read that would have fitted the small one switches it
 * back, so a burst does not keep 16 KiB per connection for good.
 */
const READ_BUFFER_SMALL = 256;
const READ_BUFFER_LARGE = 16 * 1024;
/** How long a dropped slow consumer gets to take its `ERR SLOW_CONSUMER`. */
const SLOW_CONSUMER_GRACE_MS = 250;

/** A line as read: its text, or the error that replaced it. */
type Item = string | { error: string };

/** A client connection. Implements the {@linkcode Session} the command handlers see. */
export class Connection implements Session {
  readonly id: number;
  readonly #tcp: Deno.TcpConn;
  readonly #host: ConnectionHost;
  readonly #splitter: LineSplitter;
  readonly #options: ConnectionOptions;
  readonly #bucket: TokenBucket | undefined;
  #joinTimer: ReturnType<typeof setTimeout> | undefined;
  #state: ConnectionState = "anonymous";
  #name: string | undefined;
  /** The name asked for while joining or held while joined or leaving. */
  #claimedName: string | undefined;
  #joinSettled: (() => void) | undefined;
  /**
   * What arrived while joining, sent after `OK JOIN` or dropped on failure. Messages carry
   * seq Infinity; notices the seq of their directory change (see {@linkcode joined}).
   */
  #held: { line: Uint8Array; seq: number }[] = [];
  /** Queued output: lines of its own, and spans of the thread's shared broadcast chunks. */
  #out: (Uint8Array | Span)[] = [];
  #outBytes = 0;
  /** Waiting for the thread's flush round at the end of the turn ("soon") or a paced one. */
  #inRound: "no" | "paced" | "soon" = "no";
  /** `#out` holds more than broadcast spans: it is not paced. */
  #outUrgent = false;
  /** A TCP write is under way. */
  #writing = false;
  #closeWhenFlushed = false;

  constructor(id: number, tcp: Deno.TcpConn, host: ConnectionHost, options: ConnectionOptions) {
    this.id = id;
    this.#tcp = tcp;
    this.#host = host;
    this.#options = options;
    this.#splitter = new LineSplitter(options.maxLineBytes);
    if (options.rate > 0) this.#bucket = new TokenBucket(options);
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** The joined name; undefined unless joined. */
  get name(): string | undefined {
    return this.#name;
  }

  /** The name this connection claimed (joining, joined or leaving). */
  get claimedName(): string | undefined {
    return this.#claimedName;
  }

  /** Bytes written but not yet taken by the kernel. */
  get queuedBytes(): number {
    return this.#outBytes;
  }

  /** Reads and runs lines until the peer closes or the connection is closed. */
  async serve(greeting: string): Promise<void> {
    this.reply(greeting);
    this.#joinTimer = setTimeout(() => {
      if (this.#state !== "anonymous") return;
      this.reply(Reply.error(ErrorCode.TIMEOUT, "no JOIN in time"));
      this.end();
    }, this.#options.joinTimeoutMs);
    const small = new Uint8Array(READ_BUFFER_SMALL);
    let buffer = small;
    const items: Item[] = [];
    const sink: LineSink = {
      line(bytes) {
        try {
          items.push(decoder.decode(bytes));
        } catch {
          items.push({ error: Reply.error(ErrorCode.BAD_ENCODING, "lines must be UTF-8") });
        }
      },
      tooLong() {
        items.push({ error: Reply.error(ErrorCode.LINE_TOO_LONG) });
      },
    };
    try {
      while (this.#readable()) {
        const n = await this.#tcp.read(buffer);
        if (n === null) break;
        this.#splitter.push(buffer.subarray(0, n), sink);
        if (n === buffer.length && buffer === small) buffer = new Uint8Array(READ_BUFFER_LARGE);
        else if (n < READ_BUFFER_SMALL && buffer !== small) buffer = small;
        for (let i = 0; i < items.length && this.#readable(); i++) {
          // Over its rate, the client waits here; meanwhile nothing is read from it.
          const wait = this.#bucket?.take() ?? 0;
          if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
          const item = items[i]!;
          if (typeof item !== "string") {
            this.reply(item.error);
            continue;
          }
          let pending: void | Promise<void>;
          try {
            pending = dispatch(this, item);
          } catch (error: unknown) {
            this.#host.failed(this, error);
            this.close();
            return;
          }
          if (pending !== undefined) await pending;
        }
        items.length = 0;
      }
    } catch {
      // Reset by the peer, or closed under us: either way the connection is over.
    } finally {
      if (this.#state !== "leaving") this.close();
    }
  }

  /** `FAULT <what>`, when fault injection is on. */
  fault(what: string): boolean {
    return this.#host.fault(this, what);
  }

  #readable(): boolean {
    return this.#state !== "closed" && this.#state !== "leaving" && !this.#closeWhenFlushed;
  }

  // Session -----------------------------------------------------------------------------

  reply(line: string): void {
    this.write(encoder.encode(line));
  }

  join(name: string): Promise<void> {
    this.#state = "joining";
    this.#claimedName = name;
    const settled = new Promise<void>((resolve) => this.#joinSettled = resolve);
    this.#host.claim(this, name);
    return settled;
  }

  direct(to: string, text: string): boolean {
    return this.#host.direct(this, to, text);
  }

  room(text: string): void {
    this.#host.room(this, text);
  }

  users(): readonly string[] {
    return this.#host.users();
  }

  leave(): void {
    if (this.#state !== "joined") {
      this.reply(Reply.bye());
      this.end();
      return;
    }
    // BYE waits until the directory has freed the name: after BYE, the name is free.
    this.#state = "leaving";
    this.#host.release(this);
  }

  // Called by the thread ------------------------------------------------------------------

  /**
   * The directory confirmed the claim as its change `seq`. Held notices of earlier changes
   * are dropped: they happened before this client joined, and its `WHO` already shows them.
   * Later ones, and every held message, follow `OK JOIN`. So of two users who join at once,
   * the earlier hears `JOINED` of the later, and the later finds the earlier in `WHO`.
   */
  joined(seq: number): void {
    if (this.#state !== "joining") return;
    this.#state = "joined";
    clearTimeout(this.#joinTimer);
    // A cleared timer is still an object: drop it, a joined connection lives long.
    this.#joinTimer = undefined;
    this.#name = this.#claimedName;
    this.reply(Reply.joined(this.#name!));
    for (const held of this.#held) if (held.seq > seq) this.write(held.line);
    this.#held = [];
    this.#settleJoin();
  }

  /** The directory refused the claim. */
  refused(line: string): void {
    if (this.#state !== "joining") return;
    this.#state = "anonymous";
    this.#claimedName = undefined;
    this.#held = [];
    this.reply(line);
    this.#settleJoin();
  }

  /** The directory freed the name after `LEAV`. */
  left(): void {
    if (this.#state !== "leaving") return;
    this.reply(Reply.bye());
    this.end();
  }

  #settleJoin(): void {
    const settle = this.#joinSettled;
    this.#joinSettled = undefined;
    settle?.();
  }

  /** True when a delivery addressed to connection `this.id` under `name` is for this client. */
  owns(name: string): boolean {
    return (this.#state === "joined" || this.#state === "joining") && this.#claimedName === name;
  }

  /** Delivers a message meant for joined clients: written when joined, held while joining. */
  deliver(line: Uint8Array): void {
    if (this.#state === "joined") this.write(line);
    else if (this.#state === "joining") this.#held.push({ line, seq: Infinity });
  }

  /**
   * Delivers the line just appended to the thread's shared `chunks`: a message (`seq`
   * Infinity) or the notice of directory change `seq`. Written when joined, held while
   * joining. When this client's queue ends with the span of the line before, that span
   * grows instead (see `src/_output_chunks.ts`).
   */
  broadcast(chunks: OutputChunks, seq: number): void {
    if (this.#state === "joined") {
      const last = this.#out[this.#out.length - 1];
      if (last instanceof Span && last.chunk === chunks.chunk && last.end === chunks.start) {
        // A queue that is not empty already waits for a round or a write: only the count grows.
        last.end = chunks.end;
        this.#count(chunks.end - chunks.start);
      } else {
        this.#queue(new Span(chunks.chunk, chunks.start, chunks.end), true);
      }
    } else if (this.#state === "joining") {
      this.#held.push({ line: chunks.chunk.subarray(chunks.start, chunks.end), seq });
    }
  }

  /**
   * Queues bytes for the client. They are written in the thread's next flush round, together
   * with everything else queued for this client by then (see `src/_flush_rounds.ts`).
   */
  write(bytes: Uint8Array): void {
    this.#queue(bytes, false);
  }

  /** Queues output; only broadcast output (`paced`) may wait for a paced round. */
  #queue(bytes: Uint8Array | Span, paced: boolean): void {
    if (this.#state === "closed") return;
    this.#out.push(bytes);
    if (!paced) this.#outUrgent = true;
    if (this.#count(bytes.length)) this.#requestFlush();
  }

  /** Counts `bytes` more queued; false when that made this client a slow consumer. */
  #count(bytes: number): boolean {
    this.#outBytes += bytes;
    if (this.#outBytes <= this.#options.maxSendQueue) return true;
    this.#dropSlowConsumer();
    return false;
  }

  #requestFlush(): void {
    if (this.#writing || this.#inRound === "soon") return;
    const paced = !this.#outUrgent;
    if (paced && this.#inRound === "paced") return;
    this.#inRound = paced ? "paced" : "soon";
    this.#host.wantsFlush(this, paced);
  }

  /**
   * Writes what is queued, as one TCP write. Called by the thread's flush rounds.
   *
   * @returns false when there was nothing to write (or a write is still under way).
   */
  flush(): boolean {
    this.#inRound = "no";
    if (this.#writing || this.#state === "closed") return false;
    if (this.#out.length > 0) {
      this.#writeOut();
      return true;
    }
    if (this.#closeWhenFlushed) this.close();
    return false;
  }

  async #writeOut(): Promise<void> {
    this.#writing = true;
    const chunks = this.#out;
    this.#out = [];
    this.#outUrgent = false;
    const data = chunks.length === 1 ? bytesOf(chunks[0]!) : concat(chunks);
    try {
      let written = 0;
      while (written < data.length) written += await this.#tcp.write(data.subarray(written));
      this.#outBytes -= data.length;
    } catch {
      this.close();
      return;
    } finally {
      this.#writing = false;
    }
    // What came meanwhile goes in the next round.
    if (this.#out.length > 0) this.#requestFlush();
    else if (this.#closeWhenFlushed) this.close();
  }

  /**
   * The client does not read what it is sent. Its queue goes; it gets `ERR SLOW_CONSUMER`
   * if its socket takes it within a moment, and is closed either way.
   */
  #dropSlowConsumer(): void {
    if (this.#closeWhenFlushed) return;
    this.#host.slowConsumer(this);
    const line = encoder.encode(Reply.error(ErrorCode.SLOW_CONSUMER, "not reading"));
    this.#out = [line];
    this.#outBytes = line.length;
    this.#outUrgent = true;
    this.#requestFlush();
    this.end();
    setTimeout(() => this.close(), SLOW_CONSUMER_GRACE_MS);
  }

  /** Closes once what was written so far has been sent. */
  end(): void {
    this.#closeWhenFlushed = true;
    if (this.#inRound === "no" && !this.#writing) this.close();
  }

  /** Closes now. The thread is told once, through {@linkcode ConnectionHost.closed}. */
  close(): void {
    const previous = this.#state;
    if (previous === "closed") return;
    this.#state = "closed";
    clearTimeout(this.#joinTimer);
    this.#out = [];
    this.#held = [];
    try {
      this.#tcp.close();
    } catch {
      // Already closed.
    }
    this.#settleJoin();
    this.#host.closed(this, previous);
  }
}

function bytesOf(item: Uint8Array | Span): Uint8Array {
  return item instanceof Span ? item.bytes() : item;
}

function concat(chunks: (Uint8Array | Span)[]): Uint8Array {
  let size = 0;
  for (const chunk of chunks) size += chunk.length;
  const data = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    data.set(bytesOf(chunk), offset);
    offset += chunk.length;
  }
  return data;
}
