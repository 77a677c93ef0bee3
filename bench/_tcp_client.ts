/**
 * The loadgen's TCP client, built to cost little per line: one read buffer per connection,
 * one shared TextDecoder, whole lines handed on as one string per read, and everything sent
 * within one turn of the event loop written with one `write`.
 *
 * @module
 */

/** Receives what a {@linkcode TcpClient} reads. */
export interface TextSink {
  /** `text` holds one or more whole lines, each ending in LF. */
  onText(client: TcpClient, text: string): void;
  /** The connection ended (closed by the server, reset, or closed by us). */
  onClose(client: TcpClient): void;
}

/** Options of {@linkcode TcpClient.connect}. */
export interface TcpClientOptions {
  host: string;
  port: number;
  /** A number the owner chooses, handed back with every callback. */
  index: number;
  sink: TextSink;
  /** Size of the read buffer. Default 16 KiB. */
  readBufferBytes?: number;
  /** How long {@linkcode connectAndJoin} waits for the greeting and for `OK JOIN`. Default 10 s. */
  replyTimeoutMs?: number;
}

// Reads are handed on cut after their last LF, so a chunk never ends inside a UTF-8
// sequence and one decoder without stream state serves every connection.
const decoder = new TextDecoder();
const encoder = new TextEncoder();
const LF = 10;

/** One TCP connection to the server. */
export class TcpClient {
  /** The owner's number for this client (it may change it), handed back with every callback. */
  index: number;
  readonly #tcp: Deno.TcpConn;
  readonly #sink: TextSink;
  /** Bytes after the last LF of the previous read. */
  #tail: Uint8Array | undefined;
  #out = "";
  #flushQueued = false;
  #writing = false;
  #closed = false;
  #reply: PromiseWithResolvers<string> | undefined;
  /** Answers that came before anyone waited for them. */
  readonly #answers: string[] = [];
  readonly #flush = () => this.#write();
  /** The p_id and t_id of the thread serving this client, from the greeting. */
  pId = -1;
  tId = -1;
  /** True once `OK JOIN` came: from then on an `ERR` is an error, not an answer. */
  joined = false;
  /** The name it joined (chatd) or registered (IRC) with. */
  name = "";

  private constructor(tcp: Deno.TcpConn, options: TcpClientOptions) {
    this.#tcp = tcp;
    this.index = options.index;
    this.#sink = options.sink;
    this.#readLoop(options.readBufferBytes ?? 16 * 1024);
  }

  /** Connects with TCP_NODELAY and starts reading. */
  static async connect(options: TcpClientOptions): Promise<TcpClient> {
    const tcp = await Deno.connect({ hostname: options.host, port: options.port });
    tcp.setNoDelay(true);
    return new TcpClient(tcp, options);
  }

  /** True once the connection has closed, either way. */
  get closed(): boolean {
    return this.#closed;
  }

  async #readLoop(bufferBytes: number): Promise<void> {
    const buffer = new Uint8Array(bufferBytes);
    for (;;) {
      let n: number | null;
      try {
        n = await this.#tcp.read(buffer);
      } catch {
        n = null;
      }
      if (n === null) break;
      const chunk = buffer.subarray(0, n);
      const lastLf = chunk.lastIndexOf(LF);
      if (lastLf === -1) {
        this.#tail = join(this.#tail, chunk);
        continue;
      }
      const lines = chunk.subarray(0, lastLf + 1);
      const text = decoder.decode(this.#tail ? join(this.#tail, lines) : lines);
      this.#tail = lastLf + 1 < n ? chunk.slice(lastLf + 1) : undefined;
      this.#sink.onText(this, text);
    }
    this.close();
  }

  /**
   * Waits for the next line the sink hands to {@linkcode answer}: the greeting, `OK JOIN`,
   * an error.
   *
   * @throws {Error} after `timeoutMs`, or when the connection closes first.
   */
  async reply(timeoutMs = 10_000): Promise<string> {
    const early = this.#answers.shift();
    if (early !== undefined) return early;
    if (this.#closed) throw new Error("Cannot wait for a reply: the connection is closed");
    this.#reply = Promise.withResolvers<string>();
    const timer = setTimeout(
      () => this.#reply?.reject(new Error(`No reply within ${timeoutMs} ms`)),
      timeoutMs,
    );
    try {
      return await this.#reply.promise;
    } finally {
      clearTimeout(timer);
      this.#reply = undefined;
    }
  }

  /** Settles a pending {@linkcode reply}, or keeps `line` for the next one. */
  answer(line: string): void {
    if (this.#reply === undefined) this.#answers.push(line);
    else this.#reply.resolve(line);
  }

  /** Queues `text` (whole lines); it leaves with the rest of this turn's output. */
  send(text: string): void {
    if (this.#closed) return;
    this.#out += text;
    if (!this.#writing && !this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(this.#flush);
    }
  }

  async #write(): Promise<void> {
    this.#flushQueued = false;
    this.#writing = true;
    try {
      while (this.#out !== "" && !this.#closed) {
        const data = encoder.encode(this.#out);
        this.#out = "";
        let written = 0;
        while (written < data.length) written += await this.#tcp.write(data.subarray(written));
      }
    } catch {
      this.close();
    } finally {
      this.#writing = false;
    }
  }

  /** Closes the connection; the sink hears of it once. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#tcp.close();
    } catch {
      // Already closed.
    }
    this.#reply?.reject(new Error("The connection closed"));
    this.#sink.onClose(this);
  }
}

function join(a: Uint8Array | undefined, b: Uint8Array): Uint8Array {
  if (a === undefined) return b.slice();
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a);
  joined.set(b, a.length);
  return joined;
}

/** Parses `HELLO chatd <version> p=<p_id> t=<t_id> ...` into `client.pId`/`tId`. */
export function readGreeting(client: TcpClient, line: string): void {
  const match = /^HELLO chatd \S+ p=(\d+) t=(\d+)/.exec(line);
  if (!match) throw new Error(`Not a greeting: ${JSON.stringify(line.slice(0, 80))}`);
  client.pId = Number(match[1]);
  client.tId = Number(match[2]);
}

/** Connects, reads the greeting, JOINs as `name` and waits for `OK JOIN`. */
export async function connectAndJoin(
  options: TcpClientOptions,
  name: string | undefined,
): Promise<TcpClient> {
  const client = await TcpClient.connect(options);
  try {
    readGreeting(client, await client.reply(options.replyTimeoutMs));
    if (name !== undefined) await joinAs(client, name, options.replyTimeoutMs);
    return client;
  } catch (error: unknown) {
    client.close();
    throw error;
  }
}

/**
 * Sends `JOIN name` and waits for `OK JOIN name`.
 *
 * @throws {Error} with the server's reply when it is anything else.
 */
export async function joinAs(client: TcpClient, name: string, timeoutMs?: number): Promise<void> {
  client.name = name;
  client.send(`JOIN ${name}\n`);
  const answer = await client.reply(timeoutMs);
  if (answer !== `OK JOIN ${name}`) throw new Error(`JOIN ${name} answered ${answer}`);
  client.joined = true;
}
