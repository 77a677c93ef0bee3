/**
 * The loadgen's connection storm: many clients connect and JOIN, then stay idle. Each client
 * only reads its `JOINED` notices (one for every user who joins after it) and counts them. In
 * IRC mode the clients join one channel and the notices are the other users' `JOIN` lines.
 *
 * @module
 */
import type { ConnsResult, ConnsWorkload } from "./_messages.ts";
import { connectAs, handleIrcLine, joinNick } from "./_irc.ts";
import type { TcpClient, TextSink } from "./_tcp_client.ts";

/** Small read buffers: thousands of idle clients each hold one. */
const READ_BUFFER_BYTES = 4096;
/** With several loadgens the notice count is unknown: done once none came for this long. */
const QUIET_MS = 500;
/** With one loadgen it is known; this long without one means the rest were lost. */
const GIVE_UP_MS = 1500;
const MAX_ERROR_SAMPLES = 5;
/** Under the storm of notices a JOIN can wait long for its turn. */
const REPLY_TIMEOUT_MS = 120_000;

/** One loadgen's share of the connection storm. */
export class ConnStorm implements TextSink {
  readonly #w: ConnsWorkload;
  readonly #clients: TcpClient[] = [];
  #notices = 0;
  #lastReadAt = 0;
  #errors = 0;
  readonly #errorSamples: string[] = [];
  #closedByServer = 0;
  #closing = false;
  #joinMs = 0;

  constructor(workload: ConnsWorkload) {
    this.#w = workload;
  }

  /** Warm-up: connects and joins the warm-up clients, then closes them. */
  async warmup(): Promise<number> {
    const clients = await this.#connectAll(this.#share(this.#w.warmupClients), "w");
    this.#closing = true;
    for (const client of clients) client.close();
    this.#closing = false;
    return clients.length;
  }

  /**
   * Connects and joins this loadgen's clients; resolves once every notice has arrived, or
   * none came for a while.
   *
   * @returns the time from the first connect to the last `OK JOIN`, and to the last read, ms.
   */
  async storm(timeoutMs: number): Promise<{ joinMs: number; noticesMs: number }> {
    const count = this.#share(this.#w.clients);
    this.#notices = 0;
    const start = performance.now();
    this.#clients.push(...await this.#connectAll(count, "c"));
    this.#joinMs = performance.now() - start;
    // Every client hears of every client that joins after it.
    const expected = this.#w.loadgens === 1 ? count * (count - 1) / 2 : Infinity;
    const quietMs = expected === Infinity ? QUIET_MS : GIVE_UP_MS;
    const deadline = performance.now() + timeoutMs;
    this.#lastReadAt = Math.max(this.#lastReadAt, start);
    while (this.#notices < expected && performance.now() < deadline) {
      if (performance.now() - this.#lastReadAt > quietMs) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return { joinMs: this.#joinMs, noticesMs: this.#lastReadAt - start };
  }

  #share(total: number): number {
    const { loadgen, loadgens } = this.#w;
    return Math.floor(total / loadgens) + (loadgen < total % loadgens ? 1 : 0);
  }

  async #connectAll(count: number, prefix: string): Promise<TcpClient[]> {
    const clients: TcpClient[] = new Array(count);
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const i = next++;
        clients[i] = await connectAs(
          {
            host: this.#w.host,
            port: this.#w.port,
            index: i,
            sink: this,
            readBufferBytes: READ_BUFFER_BYTES,
            replyTimeoutMs: REPLY_TIMEOUT_MS,
          },
          this.#w.protocol,
          `${prefix}${this.#w.loadgen}_${i}`,
          true,
        );
      }
    };
    await Promise.all(Array.from({ length: Math.min(count, this.#w.concurrency) }, worker));
    return clients;
  }

  /** The counts so far. */
  result(): ConnsResult {
    return {
      kind: "result",
      workload: "conns",
      clients: this.#clients.length,
      joinMs: this.#joinMs,
      notices: this.#notices,
      errors: this.#errors,
      errorSamples: this.#errorSamples,
      closed: this.#closedByServer,
    };
  }

  /** Closes every connection. */
  close(): void {
    this.#closing = true;
    for (const client of this.#clients) client.close();
  }

  onText(client: TcpClient, text: string): void {
    const irc = this.#w.protocol === "irc";
    let start = 0;
    for (;;) {
      const lf = text.indexOf("\n", start);
      if (lf === -1) break;
      const end = lf > start && text.charCodeAt(lf - 1) === 13 ? lf - 1 : lf;
      if (irc) {
        // The server echoes a client's own JOIN to it: not a notice of someone else's.
        const nick = joinNick(text, start, end);
        if (nick !== undefined) {
          if (nick !== client.name) this.#notices++;
        } else this.#ircLine(client, text.slice(start, end));
      } // Notices are the bulk: look at one character before anything else.
      else if (text.charCodeAt(start) === 74 /* J */ && text.startsWith("JOINED ", start)) {
        this.#notices++;
      } else {
        this.#otherLine(client, text.slice(start, end));
      }
      start = lf + 1;
    }
    this.#lastReadAt = performance.now();
  }

  #ircLine(client: TcpClient, line: string): void {
    if (handleIrcLine(client, line) === "ok") return;
    this.#errors++;
    if (this.#errorSamples.length < MAX_ERROR_SAMPLES) this.#errorSamples.push(line.slice(0, 120));
  }

  #otherLine(client: TcpClient, line: string): void {
    if (line.startsWith("LEFT ")) return;
    // The replay after a JOIN of what was said before (chatd's --history, on by default): not
    // live traffic, neither counted nor an error.
    if (line.startsWith("HISTORY ")) return;
    if (line.startsWith("HELLO ") || line.startsWith("OK ")) return client.answer(line);
    if (line.startsWith("ERR ") && !client.joined) return client.answer(line);
    this.#errors++;
    if (this.#errorSamples.length < MAX_ERROR_SAMPLES) this.#errorSamples.push(line.slice(0, 120));
  }

  onClose(client: TcpClient): void {
    if (!this.#closing && client.joined) this.#closedByServer++;
  }
}
