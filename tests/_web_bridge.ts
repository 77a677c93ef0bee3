/**
 * A test-only stand-in for the web port, until the WebSocket transport plugs into the core:
 * serves the page through src/_http.ts and speaks WebSocket through src/_websocket.ts on a
 * plain `Deno.Conn`, relaying each text message as one line to a real chatd TCP connection
 * and each line back as one text frame. One upstream connection per WebSocket, so each page
 * is a chatd client like any `nc`.
 *
 * @module
 */
import {
  errorResponse,
  loadAssets,
  parseRequestHead,
  routeRequest,
  serializeResponse,
} from "../src/_http.ts";
import type { Assets } from "../src/_http.ts";
import { CloseCode, encodeClose, encodePong, encodeText, FrameDecoder } from "../src/_websocket.ts";

/** Options of {@linkcode WebBridge.start}. */
export interface WebBridgeOptions {
  /** The chatd line port to relay to. */
  upstreamPort: number;
  /** Origins besides the page's own allowed to open a WebSocket. */
  allowedOrigins?: string[];
  /** The longest text message taken. Default 4096 (chatd's default line limit). */
  maxMessageBytes?: number;
}

/** How long a closing WebSocket waits for the peer's close frame before the TCP close. */
const CLOSE_WAIT_MS = 1000;
/** How long a client may take to send its request head. */
const HEAD_TIMEOUT_MS = 10_000;

const encoder = new TextEncoder();

/** One relayed WebSocket: the browser's connection and its chatd connection. */
interface Relay {
  conn: Deno.Conn;
  upstream: Deno.TcpConn | undefined;
}

/** The bridge: `await using` stops it and closes every connection. */
export class WebBridge implements AsyncDisposable {
  readonly #listener: Deno.TcpListener;
  readonly #assets: Assets;
  readonly #options: WebBridgeOptions;
  readonly #relays = new Set<Relay>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #accepting: Promise<void>;
  /** The chatd port new WebSockets are relayed to (a test changes it after a restart). */
  upstreamPort: number;
  /** Every HELLO line chatd sent, in the order the WebSockets were opened. */
  readonly greetings: string[] = [];
  /** While set, new WebSockets wait for it before their chatd connection is made. */
  #held: PromiseWithResolvers<void> | undefined;
  /** How many WebSockets wait for {@linkcode release}. */
  waiting = 0;

  private constructor(listener: Deno.TcpListener, assets: Assets, options: WebBridgeOptions) {
    this.#listener = listener;
    this.#assets = assets;
    this.#options = options;
    this.upstreamPort = options.upstreamPort;
    this.#accepting = this.#accept();
  }

  /** Listens on 127.0.0.1, a free port. */
  static async start(options: WebBridgeOptions): Promise<WebBridge> {
    const assets = await loadAssets();
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    return new WebBridge(listener, assets, options);
  }

  /** The port the page is served on. */
  get port(): number {
    return this.#listener.addr.port;
  }

  /** The page's URL. */
  get url(): string {
    return `http://127.0.0.1:${this.port}/`;
  }

  /** Makes new WebSockets wait (upgraded, but not yet relayed) until {@linkcode release}. */
  hold(): void {
    this.#held ??= Promise.withResolvers();
  }

  /** Lets the WebSockets held by {@linkcode hold} go on. */
  release(): void {
    this.#held?.resolve();
    this.#held = undefined;
  }

  /** Cuts every relayed connection at once, without close frames, as a crash would. */
  dropAll(): void {
    for (const relay of this.#relays) {
      closeQuietly(relay.conn);
      if (relay.upstream) closeQuietly(relay.upstream);
    }
  }

  async #accept(): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return; // The listener was closed.
      }
      const task = this.#serve(conn).catch(() => {}).finally(() => this.#tasks.delete(task));
      this.#tasks.add(task);
    }
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    const relay: Relay = { conn, upstream: undefined };
    this.#relays.add(relay);
    const headTimer = setTimeout(() => closeQuietly(conn), HEAD_TIMEOUT_MS);
    try {
      let buffer: Uint8Array = new Uint8Array(0);
      const chunk = new Uint8Array(4096);
      for (;;) {
        const n = await conn.read(chunk);
        if (n === null) return;
        buffer = concat(buffer, chunk.subarray(0, n));
        const result = parseRequestHead(buffer);
        if (result.kind === "incomplete") continue;
        if (result.kind === "error") {
          await writeAll(conn, serializeResponse(errorResponse(result.status, result.reason)));
          return;
        }
        clearTimeout(headTimer);
        const route = await routeRequest(result.head, {
          assets: this.#assets,
          allowedOrigins: this.#options.allowedOrigins,
        });
        await writeAll(conn, serializeResponse(route.response));
        if (route.kind === "respond") return;
        await this.#relay(relay, buffer.subarray(result.end));
        return;
      }
    } finally {
      clearTimeout(headTimer);
      this.#relays.delete(relay);
      closeQuietly(conn);
      if (relay.upstream) closeQuietly(relay.upstream);
    }
  }

  async #relay(relay: Relay, early: Uint8Array): Promise<void> {
    const { conn } = relay;
    // Writes from both directions go through one chain, so frames never interleave.
    let tail = Promise.resolve();
    const send = (bytes: Uint8Array) => {
      tail = tail.then(() => writeAll(conn, bytes)).catch(() => closeQuietly(conn));
      return tail;
    };
    if (this.#held) {
      this.waiting++;
      await this.#held.promise;
      this.waiting--;
    }
    try {
      relay.upstream = await Deno.connect({ hostname: "127.0.0.1", port: this.upstreamPort });
    } catch {
      await send(encodeClose(CloseCode.INTERNAL_ERROR, "chat server unavailable"));
      return;
    }
    const upstream = relay.upstream;
    let closing = false;
    let peerClosed!: () => void;
    const peerClose = new Promise<void>((resolve) => peerClosed = resolve);

    const fromChat = (async () => {
      const decoder = new TextDecoder();
      const chunk = new Uint8Array(16384);
      let pending = "";
      let first = true;
      try {
        for (;;) {
          const n = await upstream.read(chunk);
          if (n === null) break;
          pending += decoder.decode(chunk.subarray(0, n), { stream: true });
          let newline: number;
          while ((newline = pending.indexOf("\n")) !== -1) {
            const line = pending.slice(0, newline).replace(/\r$/, "");
            pending = pending.slice(newline + 1);
            if (first) this.greetings.push(line);
            first = false;
            send(encodeText(line));
          }
        }
      } catch {
        // A reset counts as the end.
      }
      // chatd closed: close the WebSocket, and free it after a bounded wait for the answer.
      if (!closing) {
        closing = true;
        await send(encodeClose(CloseCode.NORMAL));
      }
      await Promise.race([peerClose, new Promise((resolve) => setTimeout(resolve, CLOSE_WAIT_MS))]);
      closeQuietly(conn);
    })();

    const frames = new FrameDecoder({ maxMessageBytes: this.#options.maxMessageBytes ?? 4096 });
    const handle = async (bytes: Uint8Array): Promise<boolean> => {
      for (const event of frames.push(bytes)) {
        switch (event.kind) {
          case "text":
            if (/[\r\n]/.test(event.text)) {
              await send(encodeClose(CloseCode.INVALID_DATA, "one line per message"));
              return false;
            }
            await writeAll(upstream, encoder.encode(event.text + "\n"));
            break;
          case "ping":
            send(encodePong(event.payload));
            break;
          case "pong":
            break;
          case "close":
            if (!closing) {
              closing = true;
              await send(encodeClose(event.code));
            }
            peerClosed();
            return false;
          case "error":
            closing = true;
            await send(encodeClose(event.code, event.reason));
            return false;
        }
      }
      return true;
    };
    try {
      if (early.length > 0 && !await handle(early)) return;
      const chunk = new Uint8Array(16384);
      for (;;) {
        const n = await conn.read(chunk);
        if (n === null) return;
        if (!await handle(chunk.subarray(0, n))) return;
      }
    } catch {
      // The browser's side went away.
    } finally {
      peerClosed();
      closeQuietly(upstream);
      await fromChat;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.release();
    closeQuietly(this.#listener);
    await this.#accepting;
    this.dropAll();
    await Promise.all([...this.#tasks]);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

function closeQuietly(closer: { close(): void }): void {
  try {
    closer.close();
  } catch {
    // Already closed.
  }
}
