/**
 * The WebSocket transport: a {@linkcode Transport} speaking RFC 6455 on a `Deno.Conn` through
 * the hand-written codec of `_websocket.ts` (why by hand: see that module), one protocol line
 * per text frame both ways. The HTTP side (the request head, the page, the upgrade) is
 * `web_acceptor.ts`; this file starts after the 101 response.
 *
 * Queued bytes are real: a write is reported done only when `conn.write` has taken every
 * byte of its frames, so a peer that never reads leaves its output in the session's queue,
 * which drops it at `--max-send-queue` as it drops a TCP client.
 *
 * Closing: {@linkcode WsTransport.close} sends a close frame (after the write under way, never
 * inside it), then reads what the peer still sends until its close frame, and closes the
 * connection then, or after {@linkcode WS_CLOSE_TIMEOUT_MS} at the latest: a peer that never
 * answers (or never reads, so that even the close frame cannot be written) is freed within
 * that bound.
 *
 * @module
 */
import { type Clock, SYSTEM_CLOCK } from "./_clock.ts";
import { closeQuietly } from "./_quietly.ts";
import { allocate } from "./_slab.ts";
import { CloseCode, encodeClose, encodePong, FrameDecoder } from "./_websocket.ts";
import { peerName, prepareClientConn } from "./tcp_transport.ts";
import type { LineReceiver, Transport, WriteDone } from "./transport.ts";

/** The longest a closing WebSocket waits for the peer's close frame before the TCP close. */
export const WS_CLOSE_TIMEOUT_MS = 2000;

const READ_BUFFER_SMALL = 256;
const READ_BUFFER_LARGE = 16 * 1024;
const LF = 10;

/** Options of {@linkcode WsTransport}. */
export interface WsTransportOptions {
  /** The longest text message (one line), in bytes; a longer one is closed with 1009. */
  maxLineBytes: number;
  /** Bytes that arrived after the request head: the first frames. Default none. */
  early?: Uint8Array;
  /** Default {@linkcode WS_CLOSE_TIMEOUT_MS}. */
  closeTimeoutMs?: number;
  /** Default {@linkcode SYSTEM_CLOCK}. */
  clock?: Clock;
}

/** One write waiting its turn: a data write reports to `done`, a control frame to nobody. */
interface Pending {
  bytes: Uint8Array;
  done: WriteDone | undefined;
}

/** One client over WebSocket. */
export class WsTransport implements Transport {
  readonly #conn: Deno.Conn;
  readonly #decoder: FrameDecoder;
  readonly #clock: Clock;
  readonly #closeTimeoutMs: number;
  readonly #small = new Uint8Array(READ_BUFFER_SMALL);
  #buffer: Uint8Array = this.#small;
  /** What the caller's last read filled: {@linkcode #buffer}, or the early bytes. */
  #readInto: Uint8Array = this.#small;
  #early: Uint8Array | undefined;
  /** Writes in order, one at a time: data writes and the transport's own control frames. */
  #queue: Pending[] = [];
  #writing = false;
  /** A write failed: the connection takes nothing more. */
  #broken = false;
  /** The caller's read is under way (its bytes reach {@linkcode lines} next). */
  #callerReading = false;
  /** Our close frame is queued or sent: no data frame may follow it. */
  #closeSent = false;
  /**
   * The peer broke the protocol (an oversized message, a bad frame): the decoder stopped, so
   * its close frame cannot be recognised. Closing then reads and discards until the peer
   * closes or the close timeout: a TCP close with its bytes unread would send a reset, which
   * can overtake our close frame and leave the peer without its code (1009, 1002, ...).
   */
  #protocolError = false;
  /** {@linkcode close} was called: waiting for the peer's close, then the TCP close. */
  #closing = false;
  #shut = false;
  #timer: unknown;

  constructor(conn: Deno.Conn, options: WsTransportOptions) {
    this.#conn = conn;
    this.#decoder = new FrameDecoder({ maxMessageBytes: options.maxLineBytes });
    this.#clock = options.clock ?? SYSTEM_CLOCK;
    this.#closeTimeoutMs = options.closeTimeoutMs ?? WS_CLOSE_TIMEOUT_MS;
    if (options.early !== undefined && options.early.length > 0) this.#early = options.early;
    prepareClientConn(conn);
  }

  /** Made when a log asks for it, as TCP's: most connections never log a line. */
  get peer(): string {
    return peerName(this.#conn.remoteAddr);
  }

  read(): Promise<number | null> {
    if (this.#shut) return Promise.resolve(null);
    this.#callerReading = true;
    const early = this.#early;
    if (early !== undefined) {
      this.#early = undefined;
      this.#readInto = early;
      return Promise.resolve(early.length);
    }
    this.#readInto = this.#buffer;
    return this.#conn.read(this.#buffer);
  }

  lines(count: number, receiver: LineReceiver): boolean {
    this.#callerReading = false;
    const buffer = this.#readInto;
    const events = this.#decoder.push(buffer.subarray(0, count));
    if (buffer !== this.#buffer) {
      // The early bytes: the read buffers stay as they were.
    } else if (count === buffer.length && buffer === this.#small) {
      this.#buffer = new Uint8Array(READ_BUFFER_LARGE);
    } else if (count < READ_BUFFER_SMALL && buffer !== this.#small) this.#buffer = this.#small;
    if (this.#closing) {
      // Closed while this read was under way: only the peer's close frame matters now.
      this.#afterClosingRead(this.#handshakeOver());
      return false;
    }
    for (const event of events) {
      switch (event.kind) {
        case "text":
          if (event.text.includes("\n") || event.text.includes("\r")) {
            this.#sendClose(CloseCode.INVALID_DATA, "one line per message");
            return false;
          }
          receiver.line(event.text);
          break;
        case "ping":
          if (!this.#closeSent) this.#enqueue(encodePong(event.payload), undefined);
          break;
        case "pong":
          break;
        case "close":
          // Echo the peer's code (none when it sent none), as RFC 6455 section 5.5.1 asks.
          if (!this.#closeSent) {
            this.#closeSent = true;
            this.#enqueue(encodeClose(event.code), undefined);
          }
          return false;
        case "error":
          this.#protocolError = true;
          this.#sendClose(event.code, event.reason);
          return false;
      }
    }
    return true;
  }

  #sendClose(code: number, reason: string): void {
    if (this.#closeSent) return;
    this.#closeSent = true;
    this.#enqueue(encodeClose(code, reason), undefined);
  }

  write(chunks: Uint8Array[], done: WriteDone): void {
    if (this.#closeSent || this.#broken || this.#shut) {
      // Nothing may follow a close frame: the connection takes no more data.
      queueMicrotask(() => done.failed(new Deno.errors.BrokenPipe("WebSocket closed")));
      return;
    }
    this.#enqueue(frameLines(chunks), done);
  }

  #enqueue(bytes: Uint8Array, done: WriteDone | undefined): void {
    this.#queue.push({ bytes, done });
    if (!this.#writing) this.#pump();
  }

  async #pump(): Promise<void> {
    this.#writing = true;
    let item: Pending | undefined;
    while ((item = this.#queue.shift()) !== undefined) {
      try {
        const bytes = item.bytes;
        let written = 0;
        // Most writes go in one call: no view is made for them (one object less per write).
        while (written < bytes.length) {
          written += await this.#conn.write(written === 0 ? bytes : bytes.subarray(written));
        }
      } catch (error: unknown) {
        this.#broken = true;
        const failed = [item, ...this.#queue];
        this.#queue = [];
        for (const each of failed) each.done?.failed(error);
        break;
      }
      item.done?.written();
    }
    this.#writing = false;
    // A closing connection whose close handshake is complete (or failed) goes now.
    if (this.#closing && (this.#handshakeOver() || this.#broken)) this.#close();
  }

  /** The peer's close frame came (and ours is queued, see {@linkcode lines}). */
  #handshakeOver(): boolean {
    return this.#decoder.done && !this.#protocolError;
  }

  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#sendClose(CloseCode.NORMAL, "");
    this.#timer = this.#clock.setTimeout(() => this.#close(), this.#closeTimeoutMs);
    if (this.#handshakeOver() || this.#broken) {
      if (!this.#writing) this.#close();
      return;
    }
    // The peer's close frame is still to come: read for it, unless the caller's read is
    // under way (its bytes come to lines(), which carries on from there).
    if (!this.#callerReading) this.#readForClose();
  }

  async #readForClose(): Promise<void> {
    let ended = false;
    try {
      const early = this.#early;
      this.#early = undefined;
      if (early !== undefined) this.#decoder.push(early);
      // After a protocol error the decoder takes nothing more: this reads on to the end.
      while (!this.#handshakeOver() && !this.#shut) {
        const count = await this.#conn.read(this.#buffer);
        if (count === null) {
          ended = true;
          break;
        }
        this.#decoder.push(this.#buffer.subarray(0, count));
      }
    } catch {
      ended = true;
    }
    this.#afterClosingRead(ended || this.#handshakeOver(), true);
  }

  /** After a read while closing: close when the handshake is over, else read on. */
  #afterClosingRead(over: boolean, fromOwnLoop = false): void {
    if (this.#shut) return;
    if (over) {
      if (!this.#writing) this.#close();
      return;
    }
    if (!fromOwnLoop) this.#readForClose();
  }

  /** The TCP close: pending reads and writes settle. */
  #close(): void {
    if (this.#shut) return;
    this.#shut = true;
    this.#clock.clearTimeout(this.#timer);
    closeQuietly(this.#conn);
  }
}

/** The frames of `chunks`: one unmasked text frame per LF-terminated line, LF excluded. */
export function frameLines(chunks: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const chunk of chunks) {
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      if (chunk[i] !== LF) continue;
      size += headerSize(i - start) + (i - start);
      start = i + 1;
    }
  }
  // Cut from a slab, as TCP's concatenated writes are: a typed array of its own per write is
  // a backing store allocated (and later freed) outside V8's heap, which a join storm makes
  // one per notice per member.
  const out = allocate(size);
  let at = 0;
  for (const chunk of chunks) {
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      if (chunk[i] !== LF) continue;
      const length = i - start;
      out[at++] = 0x81; // FIN, text
      if (length < 126) out[at++] = length;
      else if (length < 65536) {
        out[at++] = 126;
        out[at++] = length >>> 8;
        out[at++] = length & 0xff;
      } else {
        out[at++] = 127;
        out.set([0, 0, 0, 0], at);
        at += 4;
        out[at++] = (length >>> 24) & 0xff;
        out[at++] = (length >>> 16) & 0xff;
        out[at++] = (length >>> 8) & 0xff;
        out[at++] = length & 0xff;
      }
      out.set(chunk.subarray(start, i), at);
      at += length;
      start = i + 1;
    }
  }
  return out;
}

function headerSize(length: number): number {
  return length < 126 ? 2 : length < 65536 ? 4 : 10;
}
