/**
 * The TCP transport: a {@linkcode Transport} on a `Deno.Conn`, and the {@linkcode Acceptor}
 * that listens for them. Lines are LF-terminated (a CR before the LF is dropped), cut by
 * {@linkcode LineSplitter}. A `Deno.TlsConn` is a `Deno.Conn` too, so TLS is an option of
 * this file: {@linkcode ListenAddress.tls}.
 *
 * @module
 */
import { LineSplitter } from "./_line_reader.ts";
import { allocate } from "./_slab.ts";
import { closeQuietly } from "./_quietly.ts";
import type { Acceptor, LineReceiver, Transport, WriteDone } from "./transport.ts";

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
const LF = 10;
const CR = 13;

/** Options of {@linkcode TcpTransport}. */
export interface TcpTransportOptions {
  /** The longest line, in bytes, line ending excluded. */
  maxLineBytes: number;
}

/**
 * The line splitter's sink, one per thread rather than one (with two closures) per connection:
 * {@linkcode TcpTransport.lines} points it at its receiver for the length of one synchronous
 * `push`, and a receiver only records lines (it never reads another connection meanwhile).
 */
const sink = {
  receiver: undefined as LineReceiver | undefined,
  line(bytes: Uint8Array): void {
    let text: string;
    try {
      text = decoder.decode(bytes);
    } catch {
      return sink.receiver!.invalid("BAD_ENCODING");
    }
    sink.receiver!.line(text);
  },
  tooLong(): void {
    sink.receiver!.invalid("LINE_TOO_LONG");
  },
};

/**
 * Passes the lines in `bytes[0, end)`, which ends with an LF, decoded at once, to `receiver`.
 * False, having passed on nothing, when they are not valid UTF-8: the splitter then finds the
 * line at fault.
 */
function decodeLines(bytes: Uint8Array, end: number, receiver: LineReceiver): boolean {
  let text: string;
  try {
    text = decoder.decode(bytes.subarray(0, end));
  } catch {
    return false;
  }
  let start = 0;
  while (start < text.length) {
    const lf = text.indexOf("\n", start);
    const stop = text.charCodeAt(lf - 1) === CR && lf > start ? lf - 1 : lf;
    receiver.line(text.slice(start, stop));
    start = lf + 1;
  }
  return true;
}

/** One client over TCP (or TLS). */
export class TcpTransport implements Transport {
  readonly #conn: Deno.Conn;
  readonly #maxLineBytes: number;
  readonly #splitter: LineSplitter;
  readonly #small = new Uint8Array(READ_BUFFER_SMALL);
  #buffer = this.#small;

  constructor(conn: Deno.Conn, options: TcpTransportOptions) {
    this.#conn = conn;
    this.#maxLineBytes = options.maxLineBytes;
    this.#splitter = new LineSplitter(options.maxLineBytes);
    setSocketOptions(conn);
  }

  /** Made when a log asks for it: most connections never log a line, and each would keep it. */
  get peer(): string {
    return peerName(this.#conn.remoteAddr);
  }

  read(): Promise<number | null> {
    return this.#conn.read(this.#buffer);
  }

  lines(count: number, receiver: LineReceiver): boolean {
    const buffer = this.#buffer;
    const bytes = buffer.subarray(0, count);
    const whole = this.#splitter.idle ? bytes.lastIndexOf(LF) + 1 : 0;
    sink.receiver = receiver;
    try {
      // The common case: the read holds whole lines, together no longer than one line may be
      // (so none is too long), in valid UTF-8: one decode for all of them, not one per line.
      if (whole > 0 && whole <= this.#maxLineBytes + 1 && decodeLines(bytes, whole, receiver)) {
        if (whole < count) this.#splitter.push(bytes.subarray(whole), sink);
      } else this.#splitter.push(bytes, sink);
    } finally {
      // Not kept past the call: a closed session is not held alive by the sink.
      sink.receiver = undefined;
    }
    if (count === buffer.length && buffer === this.#small) {
      this.#buffer = new Uint8Array(READ_BUFFER_LARGE);
    } else if (count < READ_BUFFER_SMALL && buffer !== this.#small) this.#buffer = this.#small;
    return true;
  }

  write(chunks: Uint8Array[], done: WriteDone): void {
    this.#write(chunks.length === 1 ? chunks[0]! : concat(chunks), done);
  }

  async #write(data: Uint8Array, done: WriteDone): Promise<void> {
    try {
      let written = 0;
      // Most writes go in one call: no view is made for them (one object less per write).
      while (written < data.length) {
        written += await this.#conn.write(written === 0 ? data : data.subarray(written));
      }
    } catch (error: unknown) {
      return done.failed(error);
    }
    done.written();
  }

  close(): void {
    closeQuietly(this.#conn);
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const chunk of chunks) size += chunk.length;
  // Not changed until written, and never after: a slab's slice will do.
  const data = allocate(size);
  let offset = 0;
  for (const chunk of chunks) {
    data.set(chunk, offset);
    offset += chunk.length;
  }
  return data;
}

/** A certificate chain and its private key, PEM text. */
export interface TlsKeyPair {
  cert: string;
  key: string;
}

/**
 * Reads a certificate chain and its key from PEM files.
 *
 * @throws {Deno.errors.NotFound} and the like when a file cannot be read.
 */
export function readKeyPair(certFile: string, keyFile: string): TlsKeyPair {
  return { cert: Deno.readTextFileSync(certFile), key: Deno.readTextFileSync(keyFile) };
}

/** Where to listen, for {@linkcode listenTcp} and the web port. */
export interface ListenAddress {
  hostname: string;
  port: number;
  /** Lets every thread of every process bind the same port; the kernel spreads connections. */
  reusePort?: boolean;
  /** Speak TLS with this certificate. Default: plain TCP. */
  tls?: TlsKeyPair;
}

/** Options of {@linkcode listenTcp}. */
export interface TcpListenOptions extends TcpTransportOptions, ListenAddress {}

/**
 * Binds a TCP or, with `tls`, a TLS listener. `Deno.listenTls` takes `reusePort` as
 * `Deno.listen` does (Deno 2.9.6), so TLS ports are shared by every thread too.
 *
 * @throws {Deno.errors.AddrInUse} when the port is taken (and `reusePort` is off).
 * @throws {Error} when `tls` holds a certificate or key that cannot be used.
 */
export function bindListener(address: ListenAddress): Deno.Listener<Deno.Conn, Deno.NetAddr> {
  const options = {
    hostname: address.hostname,
    port: address.port,
    reusePort: address.reusePort ?? false,
    transport: "tcp" as const,
  };
  if (address.tls === undefined) return Deno.listen(options);
  return Deno.listenTls({ ...options, cert: address.tls.cert, key: address.tls.key });
}

/**
 * Listens on TCP (or TLS) and accepts {@linkcode TcpTransport}s.
 *
 * @throws as {@linkcode bindListener}.
 */
export function listenTcp(options: TcpListenOptions): Acceptor {
  const listener = bindListener(options);
  return {
    accept: async () => new TcpTransport(await listener.accept(), options),
    close: () => closeQuietly(listener),
  };
}

/**
 * Binds `hostname:port` for a moment and closes it again: the port the listeners will get
 * (`port` 0 picks a free one). With `tls`, binds a TLS listener, which checks the
 * certificate and key.
 *
 * @throws {Deno.errors.AddrInUse} when the port is taken; other errors of `Deno.listen` and
 *   `Deno.listenTls`.
 */
export function probeTcpPort(hostname: string, port: number, tls?: TlsKeyPair): number {
  const probe = bindListener({ hostname, port, tls });
  const bound = probe.addr.port;
  probe.close();
  return bound;
}

/**
 * Sets up a client's socket for chat (TCP_NODELAY: a line goes out at once; keepalive: a dead
 * peer is found, see README "Dead peers") and names its peer for the logs.
 *
 * @returns the peer as `HOST:PORT`.
 */
export function prepareClientConn(conn: Deno.Conn): string {
  setSocketOptions(conn);
  return peerName(conn.remoteAddr);
}

function setSocketOptions(conn: Deno.Conn): void {
  const tcp = conn as Partial<Deno.TcpConn>;
  try {
    tcp.setNoDelay?.(true);
    tcp.setKeepAlive?.(true);
  } catch {
    // The peer is already gone; the first read finds out.
  }
}

/** A peer's address for logs: `HOST:PORT`, or the transport's name when it has no port. */
export function peerName(remote: Deno.Addr): string {
  return remote.transport === "tcp" ? `${remote.hostname}:${remote.port}` : remote.transport;
}
