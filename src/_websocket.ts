/**
 * The server side of RFC 6455 (WebSocket), written by hand and free of I/O: the handshake's
 * accept key, a frame decoder that takes bytes in chunks split anywhere and yields whole text
 * messages, and an encoder for the frames a server sends.
 *
 * Why not `Deno.upgradeWebSocket`: its `send()` returns nothing and never pushes back (the
 * bytes queue inside the runtime and `bufferedAmount` grows without bound for a peer that
 * does not read), and a socket closed by the server whose peer never answers the close frame
 * stays in CLOSING and is not freed (denoland/deno#27924, open). tests/_deno_websocket_probe.ts
 * measures both on Deno 2.9.6: 48 MiB sent to a peer that never reads left 44 MiB in
 * `bufferedAmount` and no error; after `close()`, no `close` event within 30 s. With the
 * framing in our own hands a WebSocket client is bytes on a `Deno.Conn` like a TCP client:
 * the same send queue limit, and a close that ends in `conn.close()` after a bounded wait.
 *
 * @module
 */
import { sha1 } from "@noble/hashes/legacy.js";

/** The GUID RFC 6455 section 1.3 appends to the client's key. */
export const WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** Close status codes (RFC 6455 section 7.4.1) this server sends. */
export const CloseCode = {
  /** The conversation is over. */
  NORMAL: 1000,
  /** The server is going away (shutdown). */
  GOING_AWAY: 1001,
  /** A frame broke the protocol: bad opcode, reserved bit, unmasked, bad length. */
  PROTOCOL_ERROR: 1002,
  /** A data type we do not take (binary frames: the chat protocol is text). */
  UNSUPPORTED_DATA: 1003,
  /** A text message that is not UTF-8, or a close reason that is not. */
  INVALID_DATA: 1007,
  /** A policy reason (a slow consumer, a join timeout). */
  POLICY_VIOLATION: 1008,
  /** A message longer than the line limit. */
  MESSAGE_TOO_BIG: 1009,
  /** Something went wrong on the server. */
  INTERNAL_ERROR: 1011,
} as const;

/** Frame opcodes (RFC 6455 section 5.2). */
export const Opcode = {
  CONTINUATION: 0x0,
  TEXT: 0x1,
  BINARY: 0x2,
  CLOSE: 0x8,
  PING: 0x9,
  PONG: 0xa,
} as const;

/** What the decoder found in the bytes it was given. */
export type WebSocketEvent =
  /** A complete text message (all its fragments), checked to be UTF-8. */
  | { kind: "text"; text: string }
  /** A ping: answer with {@linkcode encodePong} of the same payload. */
  | { kind: "ping"; payload: Uint8Array }
  /** A pong (unsolicited ones are allowed and mean nothing). */
  | { kind: "pong"; payload: Uint8Array }
  /**
   * The peer's close frame. `code` is undefined when the frame had no payload. Answer with
   * {@linkcode encodeClose} (the same code, or none) and close the connection; the decoder
   * yields nothing more.
   */
  | { kind: "close"; code: number | undefined; reason: string }
  /**
   * The peer broke the protocol or a limit. Send {@linkcode encodeClose}`(code)` and close
   * the connection; the decoder yields nothing more.
   */
  | { kind: "error"; code: number; reason: string };

/** Options of {@linkcode FrameDecoder}. */
export interface FrameDecoderOptions {
  /**
   * The longest text message, in bytes, summed over its fragments. A longer one is an
   * `error` event with code 1009 as soon as a frame header announces it, before its bytes
   * are held. Default 4096, the line limit's default.
   */
  maxMessageBytes?: number;
}

const textDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const textEncoder = new TextEncoder();
const EMPTY = new Uint8Array(0);
/** The accept key's input, reused (the keys {@linkcode isValidWebSocketKey} passes fit). */
const keyBytes = new Uint8Array(96);

/**
 * Turns the bytes a client sends into {@linkcode WebSocketEvent}s. Chunks may be split
 * anywhere, even inside a frame header. Holds at most one frame (at most the message limit
 * plus 14 header bytes) and the fragments of one message.
 *
 * @example
 * ```ts
 * const decoder = new FrameDecoder({ maxMessageBytes: 4096 });
 * for (const event of decoder.push(chunk)) {
 *   if (event.kind === "text") handleLine(event.text);
 * }
 * ```
 */
export class FrameDecoder {
  readonly #max: number;
  /** Bytes of an incomplete frame carried over from earlier chunks. */
  #pending: Uint8Array = EMPTY;
  /** Payloads of the message being fragmented, or undefined when none is open. */
  #fragments: Uint8Array[] | undefined;
  #fragmentBytes = 0;
  /** True after a close or an error: nothing more is decoded. */
  #done = false;

  constructor(options: FrameDecoderOptions = {}) {
    this.#max = options.maxMessageBytes ?? 4096;
    if (!Number.isInteger(this.#max) || this.#max < 0) {
      throw new RangeError(`Cannot decode WebSocket frames: bad message limit ${this.#max}`);
    }
  }

  /** True once a close frame or a protocol error ended the stream. */
  get done(): boolean {
    return this.#done;
  }

  /**
   * Decodes what `chunk` completes. Payloads are unmasked in place, so the chunk's bytes
   * change; the decoder keeps no view of it, and the caller may reuse it afterwards.
   */
  push(chunk: Uint8Array): WebSocketEvent[] {
    const events: WebSocketEvent[] = [];
    if (this.#done || chunk.length === 0) return events;
    let bytes: Uint8Array;
    if (this.#pending.length === 0) bytes = chunk;
    else {
      bytes = new Uint8Array(this.#pending.length + chunk.length);
      bytes.set(this.#pending);
      bytes.set(chunk, this.#pending.length);
    }
    let offset = 0;
    while (!this.#done) {
      const used = this.#frame(bytes, offset, events);
      if (used === 0) break;
      offset += used;
    }
    // Copy what is left: the caller may reuse its chunk.
    this.#pending = this.#done || offset === bytes.length ? EMPTY : bytes.slice(offset);
    return events;
  }

  /** Ends the stream with an error event. */
  #fail(events: WebSocketEvent[], code: number, reason: string): number {
    events.push({ kind: "error", code, reason });
    this.#done = true;
    this.#fragments = undefined;
    return 0;
  }

  /**
   * Decodes the frame at `offset` if it is complete; returns the bytes it used, or 0 when it
   * needs more bytes (or the stream just ended).
   */
  #frame(bytes: Uint8Array, offset: number, events: WebSocketEvent[]): number {
    const available = bytes.length - offset;
    if (available < 2) return 0;
    const b0 = bytes[offset]!;
    const b1 = bytes[offset + 1]!;
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    // Header checks come first, so a bad frame is refused before its payload arrives.
    if ((b0 & 0x70) !== 0) {
      return this.#fail(events, CloseCode.PROTOCOL_ERROR, "reserved bits set");
    }
    const control = opcode >= 0x8;
    if (
      opcode !== Opcode.CONTINUATION && opcode !== Opcode.TEXT && opcode !== Opcode.BINARY &&
      opcode !== Opcode.CLOSE && opcode !== Opcode.PING && opcode !== Opcode.PONG
    ) {
      return this.#fail(events, CloseCode.PROTOCOL_ERROR, `unknown opcode ${opcode}`);
    }
    if ((b1 & 0x80) === 0) {
      return this.#fail(events, CloseCode.PROTOCOL_ERROR, "client frames must be masked");
    }
    let length = b1 & 0x7f;
    if (control && (!fin || length > 125)) {
      return this.#fail(
        events,
        CloseCode.PROTOCOL_ERROR,
        fin ? "control frame over 125 bytes" : "fragmented control frame",
      );
    }
    if (!control) {
      if (opcode === Opcode.CONTINUATION && this.#fragments === undefined) {
        return this.#fail(events, CloseCode.PROTOCOL_ERROR, "continuation without a message");
      }
      if (opcode !== Opcode.CONTINUATION && this.#fragments !== undefined) {
        return this.#fail(events, CloseCode.PROTOCOL_ERROR, "new message inside a fragmented one");
      }
      if (opcode === Opcode.BINARY) {
        return this.#fail(events, CloseCode.UNSUPPORTED_DATA, "binary messages are not accepted");
      }
    }
    let header = 2;
    if (length === 126) {
      if (available < 4) return 0;
      length = (bytes[offset + 2]! << 8) | bytes[offset + 3]!;
      header = 4;
    } else if (length === 127) {
      if (available < 10) return 0;
      if ((bytes[offset + 2]! & 0x80) !== 0) {
        return this.#fail(events, CloseCode.PROTOCOL_ERROR, "payload length over 2^63");
      }
      // Anything over 2^32 is over every limit; only the low word needs reading exactly.
      const high = new DataView(bytes.buffer, bytes.byteOffset + offset + 2, 4).getUint32(0);
      const low = new DataView(bytes.buffer, bytes.byteOffset + offset + 6, 4).getUint32(0);
      length = high > 0 ? Number.MAX_SAFE_INTEGER : low;
      header = 10;
    }
    if (!control && this.#fragmentBytes + length > this.#max) {
      return this.#fail(
        events,
        CloseCode.MESSAGE_TOO_BIG,
        `message over ${this.#max} bytes`,
      );
    }
    const maskAt = header;
    header += 4;
    if (available < header + length) return 0;
    // Unmasked in place and read through a view: a copy per message would be a backing store
    // of its own (outside V8's heap past 64 bytes), made and dropped for every line.
    const mask = offset + maskAt;
    const start = offset + header;
    for (let i = 0; i < length; i++) bytes[start + i] = bytes[start + i]! ^ bytes[mask + (i & 3)]!;
    const view = bytes.subarray(start, start + length);
    const used = header + length;
    switch (opcode) {
      case Opcode.PING:
        // Copies: the events outlive the chunk, which the caller reuses.
        events.push({ kind: "ping", payload: view.slice() });
        return used;
      case Opcode.PONG:
        events.push({ kind: "pong", payload: view.slice() });
        return used;
      case Opcode.CLOSE:
        this.#close(view, events);
        return used;
    }
    // TEXT or CONTINUATION.
    if (fin && this.#fragments === undefined) {
      this.#text(view, events);
      return used;
    }
    const payload = view.slice(); // Kept past this chunk.
    this.#fragments ??= [];
    this.#fragments.push(payload);
    this.#fragmentBytes += payload.length;
    if (fin) {
      const whole = new Uint8Array(this.#fragmentBytes);
      let at = 0;
      for (const part of this.#fragments) {
        whole.set(part, at);
        at += part.length;
      }
      this.#fragments = undefined;
      this.#fragmentBytes = 0;
      this.#text(whole, events);
    }
    return used;
  }

  #text(payload: Uint8Array, events: WebSocketEvent[]): void {
    let text: string;
    try {
      text = textDecoder.decode(payload);
    } catch {
      this.#fail(events, CloseCode.INVALID_DATA, "text message is not UTF-8");
      return;
    }
    events.push({ kind: "text", text });
  }

  #close(payload: Uint8Array, events: WebSocketEvent[]): void {
    if (payload.length === 0) {
      events.push({ kind: "close", code: undefined, reason: "" });
      this.#done = true;
      return;
    }
    if (payload.length === 1) {
      this.#fail(events, CloseCode.PROTOCOL_ERROR, "close frame with a 1-byte payload");
      return;
    }
    const code = (payload[0]! << 8) | payload[1]!;
    if (!isValidCloseCode(code)) {
      this.#fail(events, CloseCode.PROTOCOL_ERROR, `bad close code ${code}`);
      return;
    }
    let reason: string;
    try {
      reason = textDecoder.decode(payload.subarray(2));
    } catch {
      this.#fail(events, CloseCode.INVALID_DATA, "close reason is not UTF-8");
      return;
    }
    events.push({ kind: "close", code, reason });
    this.#done = true;
  }
}

/**
 * True for a close code a peer may send (RFC 6455 section 7.4): 1000–1003, 1007–1014 and
 * 3000–4999. 1004–1006 and 1015 are reserved never to appear on the wire.
 */
export function isValidCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
    (code >= 3000 && code <= 4999);
}

/** Options of {@linkcode encodeFrame}. */
export interface EncodeFrameOptions {
  /** False for a fragment that more fragments follow. Default true. */
  fin?: boolean;
  /** A 4-byte masking key: set by clients (tests), never by a server. Default none. */
  mask?: Uint8Array;
}

/**
 * One frame: `opcode` and `payload`, unmasked unless `options.mask` is given.
 *
 * @throws {RangeError} for a control frame over 125 bytes or a mask that is not 4 bytes.
 */
export function encodeFrame(
  opcode: number,
  payload: Uint8Array,
  options: EncodeFrameOptions = {},
): Uint8Array {
  const { fin = true, mask } = options;
  if (opcode >= 0x8 && payload.length > 125) {
    throw new RangeError(`Cannot encode a control frame of ${payload.length} bytes: over 125`);
  }
  if (mask !== undefined && mask.length !== 4) {
    throw new RangeError(`Cannot mask a frame with a ${mask.length}-byte key`);
  }
  const length = payload.length;
  const lengthBytes = length < 126 ? 0 : length < 65536 ? 2 : 8;
  const header = 2 + lengthBytes + (mask ? 4 : 0);
  const frame = new Uint8Array(header + length);
  frame[0] = (fin ? 0x80 : 0) | (opcode & 0x0f);
  const maskBit = mask ? 0x80 : 0;
  if (lengthBytes === 0) frame[1] = maskBit | length;
  else if (lengthBytes === 2) {
    frame[1] = maskBit | 126;
    frame[2] = length >>> 8;
    frame[3] = length & 0xff;
  } else {
    frame[1] = maskBit | 127;
    const view = new DataView(frame.buffer);
    view.setUint32(2, Math.floor(length / 2 ** 32));
    view.setUint32(6, length >>> 0);
  }
  if (mask) {
    frame.set(mask, 2 + lengthBytes);
    for (let i = 0; i < length; i++) frame[header + i] = payload[i]! ^ mask[i & 3]!;
  } else frame.set(payload, header);
  return frame;
}

/** A server text frame holding `text` (one protocol line, without its LF). */
export function encodeText(text: string): Uint8Array {
  return encodeFrame(Opcode.TEXT, textEncoder.encode(text));
}

/** A server pong answering a ping with `payload`. */
export function encodePong(payload: Uint8Array): Uint8Array {
  return encodeFrame(Opcode.PONG, payload);
}

/**
 * A server close frame. Without `code` the frame has no payload (the answer to a close that
 * had none). The reason is cut to fit 123 bytes without splitting a character.
 *
 * @throws {RangeError} for a code a close frame may not carry.
 */
export function encodeClose(code?: number, reason = ""): Uint8Array {
  if (code === undefined) return encodeFrame(Opcode.CLOSE, EMPTY);
  if (!isValidCloseCode(code)) throw new RangeError(`Cannot send close code ${code}`);
  let reasonBytes = textEncoder.encode(reason);
  if (reasonBytes.length > 123) {
    let end = 123;
    // Back up to a character start (a byte that is not 10xxxxxx).
    while (end > 0 && (reasonBytes[end]! & 0xc0) === 0x80) end--;
    reasonBytes = reasonBytes.subarray(0, end);
  }
  const payload = new Uint8Array(2 + reasonBytes.length);
  payload[0] = code >>> 8;
  payload[1] = code & 0xff;
  payload.set(reasonBytes, 2);
  return encodeFrame(Opcode.CLOSE, payload);
}

/**
 * True when `key` is a valid `Sec-WebSocket-Key`: base64 of exactly 16 bytes (RFC 6455
 * section 4.1), which is 22 base64 characters and `==`.
 */
export function isValidWebSocketKey(key: string): boolean {
  return /^[A-Za-z0-9+/]{21}[AQgw]==$/.test(key);
}

/**
 * The `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key`: base64 of the SHA-1
 * of the key and {@linkcode WEBSOCKET_GUID}. Synchronous, on the calling thread, with
 * `@noble/hashes` (plain JavaScript). Not `crypto.subtle.digest`: Deno 2.9.6 runs each digest on
 * a thread of the runtime's blocking pool, so a burst of handshakes starts OS threads (40 in a
 * 1×1 child during 2000 upgrades, 8 without), each leaving a malloc arena behind. Not
 * `node:crypto`, which hashes synchronously but loads its Node compatibility modules into every
 * thread's heap (1 MiB more heap in the one run measured). Nothing here is secret.
 *
 * @example
 * ```ts
 * acceptKey("dGhlIHNhbXBsZSBub25jZQ=="); // "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
 * ```
 */
export function acceptKey(key: string): string {
  // Encoded into a reused array when it fits, as a valid key (24 characters) does.
  const input = key + WEBSOCKET_GUID;
  const { read, written } = textEncoder.encodeInto(input, keyBytes);
  const bytes = read === input.length ? keyBytes.subarray(0, written) : textEncoder.encode(input);
  let binary = "";
  for (const byte of sha1(bytes)) {
    binary += String.fromCharCode(byte);
  }
  return btoa(binary);
}
