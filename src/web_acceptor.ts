/**
 * The web port's {@linkcode Acceptor}: reads each connection's HTTP request head
 * (`_http.ts`), answers the page, its assets and every error (404, 405, 403, ...) itself and
 * closes, and hands the connections upgraded to WebSocket on to the {@linkcode Listener} as
 * {@linkcode WsTransport}s. A browser user is then a session like any `nc` user.
 *
 * Heads are read concurrently, each within {@linkcode HEAD_TIMEOUT_MS}, so a slow client
 * does not hold up the others; at most {@linkcode MAX_HANDSHAKES} at once: past that the
 * acceptor stops accepting until one ends, and further connections wait in the kernel's
 * backlog, as TCP clients do when a thread is busy.
 *
 * @module
 */
import { type Assets, errorResponse, loadAssets, parseRequestHead, routeRequest } from "./_http.ts";
import { serializeResponse } from "./_http.ts";
import { closeQuietly } from "./_quietly.ts";
import { bindListener, type ListenAddress } from "./tcp_transport.ts";
import type { Acceptor, Transport } from "./transport.ts";
import { WsTransport } from "./ws_transport.ts";

/** How long a client may take to send its request head. */
export const HEAD_TIMEOUT_MS = 10_000;
/** Connections whose head is being read at once, per acceptor. */
export const MAX_HANDSHAKES = 256;

/** Options of {@linkcode listenWeb}. */
export interface WebListenOptions extends ListenAddress {
  /** The longest line a WebSocket message may carry, in bytes. */
  maxLineBytes: number;
  /** Origins besides the page's own allowed to open a WebSocket (`--web-origin`). */
  allowedOrigins?: readonly string[];
  /** The page's files. Default: {@linkcode loadAssets}. */
  assets?: Promise<Assets>;
}

/**
 * Listens on the web port: http and ws, or with `tls` https and wss.
 *
 * @throws as `bindListener` of tcp_transport.ts.
 */
export function listenWeb(options: WebListenOptions): Acceptor {
  return new WebAcceptor(bindListener(options), options);
}

class WebAcceptor implements Acceptor {
  readonly #listener: Deno.Listener;
  readonly #options: WebListenOptions;
  readonly #assets: Promise<Assets>;
  /** Upgraded connections the listener has not taken yet. */
  readonly #ready: Transport[] = [];
  /** The accept waiting for the next upgraded connection. */
  #waiting: PromiseWithResolvers<Transport> | undefined;
  /** Connections whose head is being read. */
  readonly #handshaking = new Set<Deno.Conn>();
  /** Resolved when a handshake ends while the loop waits for a free slot. */
  #slotFreed: (() => void) | undefined;
  #closed = false;

  constructor(listener: Deno.Listener, options: WebListenOptions) {
    this.#listener = listener;
    this.#options = options;
    this.#assets = options.assets ?? loadAssets();
    // A failure shows when a request needs the assets; not an unhandled rejection now.
    this.#assets.catch(() => {});
    this.#loop();
  }

  accept(): Promise<Transport> {
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("web acceptor closed"));
    const transport = this.#ready.shift();
    if (transport !== undefined) return Promise.resolve(transport);
    this.#waiting = Promise.withResolvers();
    return this.#waiting.promise;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeQuietly(this.#listener);
    for (const conn of this.#handshaking) closeQuietly(conn);
    this.#slotFreed?.();
    for (const transport of this.#ready.splice(0)) transport.close();
    this.#waiting?.reject(new Deno.errors.BadResource("web acceptor closed"));
    this.#waiting = undefined;
  }

  async #loop(): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return this.close(); // Closed, or failed: either way no more connections.
      }
      this.#handshake(conn);
      if (this.#handshaking.size >= MAX_HANDSHAKES) {
        await new Promise<void>((resolve) => this.#slotFreed = resolve);
        if (this.#closed) return;
      }
    }
  }

  async #handshake(conn: Deno.Conn): Promise<void> {
    this.#handshaking.add(conn);
    const timer = setTimeout(() => closeQuietly(conn), HEAD_TIMEOUT_MS);
    let upgraded: WsTransport | undefined;
    try {
      upgraded = await this.#readHead(conn);
    } catch {
      // Reset, closed by the head timeout or by close(): nothing to answer.
    } finally {
      clearTimeout(timer);
      this.#handshaking.delete(conn);
      this.#slotFreed?.();
      this.#slotFreed = undefined;
    }
    if (upgraded === undefined) return closeQuietly(conn);
    if (this.#closed) return upgraded.close();
    const waiting = this.#waiting;
    this.#waiting = undefined;
    if (waiting !== undefined) waiting.resolve(upgraded);
    else this.#ready.push(upgraded);
  }

  /** Reads the head and answers it; returns the transport when the connection upgraded. */
  async #readHead(conn: Deno.Conn): Promise<WsTransport | undefined> {
    let head = new Uint8Array(1024);
    let size = 0;
    for (;;) {
      if (size === head.length) {
        const bigger = new Uint8Array(head.length * 2);
        bigger.set(head);
        head = bigger;
      }
      const count = await conn.read(head.subarray(size));
      if (count === null) return undefined;
      size += count;
      const result = parseRequestHead(head.subarray(0, size));
      if (result.kind === "incomplete") continue;
      if (result.kind === "error") {
        await writeAll(conn, serializeResponse(errorResponse(result.status, result.reason)));
        return undefined;
      }
      const route = routeRequest(result.head, {
        assets: await this.#assets,
        allowedOrigins: this.#options.allowedOrigins,
        secure: this.#options.tls !== undefined,
      });
      await writeAll(conn, serializeResponse(route.response));
      if (route.kind === "respond") return undefined;
      return new WsTransport(conn, {
        maxLineBytes: this.#options.maxLineBytes,
        early: head.slice(result.end, size),
      });
    }
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}
