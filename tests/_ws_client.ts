/**
 * A WebSocket client on a raw TCP (or TLS) connection, for tests that need what a browser
 * will not do: stop reading, never answer a close, send a bad frame, look at the bytes.
 * Frames are made with src/_websocket.ts's encoder (masked, as a client must) and the
 * server's frames are parsed here, independently of the server's decoder.
 *
 * @module
 */
import { encodeFrame, Opcode } from "../src/_websocket.ts";
import { withTimeout } from "./test_util.ts";

/** A frame the server sent. */
export type ServerFrame =
  | { kind: "text"; text: string }
  | { kind: "close"; code: number | undefined; reason: string }
  | { kind: "ping" | "pong"; payload: Uint8Array };

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const MASK = new Uint8Array([1, 2, 3, 4]);

/** Options of {@linkcode RawWebSocket.connect}. */
export interface RawWebSocketOptions {
  hostname?: string;
  path?: string;
  /** The `Origin` field; none by default (not a browser). */
  origin?: string;
  /** Connects with TLS trusting these CA certificates (PEM). */
  caCerts?: string[];
  timeoutMs?: number;
}

/** One client; `await using` closes it. */
export class RawWebSocket implements AsyncDisposable {
  readonly conn: Deno.Conn;
  /** The 101 response head. */
  readonly head: string;
  #buffer: Uint8Array;

  private constructor(conn: Deno.Conn, head: string, rest: Uint8Array) {
    this.conn = conn;
    this.head = head;
    this.#buffer = rest;
  }

  /**
   * Connects and upgrades.
   *
   * @throws when the answer is not `101`.
   */
  static async connect(port: number, options: RawWebSocketOptions = {}): Promise<RawWebSocket> {
    const hostname = options.hostname ?? "127.0.0.1";
    const timeoutMs = options.timeoutMs ?? 10_000;
    const conn = options.caCerts
      ? await Deno.connectTls({ hostname, port, caCerts: options.caCerts })
      : await Deno.connect({ hostname, port });
    try {
      const lines = [
        `GET ${options.path ?? "/ws"} HTTP/1.1`,
        `Host: ${hostname}:${port}`,
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        ...(options.origin ? [`Origin: ${options.origin}`] : []),
      ];
      await writeAll(conn, encoder.encode(lines.join("\r\n") + "\r\n\r\n"));
      let bytes: Uint8Array = new Uint8Array(0);
      for (;;) {
        const chunk = new Uint8Array(4096);
        const n = await withTimeout(conn.read(chunk), timeoutMs, "the 101 response");
        if (n === null) throw new Error("closed before the response");
        bytes = concat(bytes, chunk.subarray(0, n));
        const text = decoder.decode(bytes);
        const end = text.indexOf("\r\n\r\n");
        if (end === -1) continue;
        const head = text.slice(0, end);
        if (!head.startsWith("HTTP/1.1 101 ")) throw new Error(`not upgraded: ${head}`);
        return new RawWebSocket(conn, head, bytes.slice(end + 4));
      }
    } catch (error: unknown) {
      conn.close();
      throw error;
    }
  }

  /** Sends one text frame (masked). */
  send(text: string): Promise<void> {
    return this.sendBytes(encodeFrame(Opcode.TEXT, encoder.encode(text), { mask: MASK }));
  }

  /** Sends a frame of `opcode` (masked). */
  sendFrame(opcode: number, payload: Uint8Array): Promise<void> {
    return this.sendBytes(encodeFrame(opcode, payload, { mask: MASK }));
  }

  sendBytes(bytes: Uint8Array): Promise<void> {
    return writeAll(this.conn, bytes);
  }

  /** The next frame; null at the end of the stream. */
  async next(timeoutMs = 10_000): Promise<ServerFrame | null> {
    for (;;) {
      const frame = this.#parse();
      if (frame !== undefined) return frame;
      const chunk = new Uint8Array(16384);
      const n = await withTimeout(this.conn.read(chunk), timeoutMs, "a WebSocket frame");
      if (n === null) return null;
      this.#buffer = concat(this.#buffer, chunk.subarray(0, n));
    }
  }

  /** The next frame, which must be a text frame. */
  async text(timeoutMs = 10_000): Promise<string> {
    const frame = await this.next(timeoutMs);
    if (frame?.kind !== "text") {
      throw new Error(`expected a text frame, got ${JSON.stringify(frame)}`);
    }
    return frame.text;
  }

  #parse(): ServerFrame | undefined {
    const bytes = this.#buffer;
    if (bytes.length < 2) return undefined;
    if ((bytes[1]! & 0x80) !== 0) throw new Error("the server masked a frame");
    let length = bytes[1]! & 0x7f;
    let at = 2;
    if (length === 126) {
      if (bytes.length < 4) return undefined;
      length = (bytes[2]! << 8) | bytes[3]!;
      at = 4;
    } else if (length === 127) {
      if (bytes.length < 10) return undefined;
      length = new DataView(bytes.buffer, bytes.byteOffset + 6, 4).getUint32(0);
      at = 10;
    }
    if (bytes.length < at + length) return undefined;
    const payload = bytes.slice(at, at + length);
    this.#buffer = bytes.slice(at + length);
    if ((bytes[0]! & 0x80) === 0) throw new Error("the server fragmented a message");
    switch (bytes[0]! & 0x0f) {
      case Opcode.TEXT:
        return { kind: "text", text: decoder.decode(payload) };
      case Opcode.CLOSE:
        return {
          kind: "close",
          code: payload.length >= 2 ? (payload[0]! << 8) | payload[1]! : undefined,
          reason: decoder.decode(payload.subarray(2)),
        };
      case Opcode.PING:
        return { kind: "ping", payload };
      case Opcode.PONG:
        return { kind: "pong", payload };
      default:
        throw new Error(`unexpected opcode ${bytes[0]! & 0x0f}`);
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
    return Promise.resolve();
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
