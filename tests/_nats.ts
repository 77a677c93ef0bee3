/**
 * A nats-server with JetStream for the cluster tests, on a free port, in a temp dir.
 *
 * @module
 */
import { withTimeout } from "./test_util.ts";

/** Why the cluster tests cannot run here, or undefined when nats-server is installed. */
export function natsMissing(): string | undefined {
  try {
    new Deno.Command("nats-server", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync();
    return undefined;
  } catch {
    return "nats-server is not installed (apt-get install nats-server)";
  }
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Options of {@linkcode NatsServer.start}. */
export interface NatsServerOptions {
  /**
   * Configuration added to the server's file (`tls { ... }`, `authorization { ... }`,
   * `operator: ...`); default none: then it runs on flags alone, as before.
   */
  config?: string;
  /** The URL's scheme: `tls` for a server configured with TLS. Default `nats`. */
  scheme?: "nats" | "tls";
}

/** A running nats-server; `await using` stops it and removes its storage. */
export class NatsServer implements AsyncDisposable {
  readonly url: string;
  #process: Deno.ChildProcess;
  readonly #dir: string;
  readonly #port: number;
  readonly #config: string | undefined;

  private constructor(
    port: number,
    process: Deno.ChildProcess,
    dir: string,
    options: NatsServerOptions,
  ) {
    this.url = `${options.scheme ?? "nats"}://127.0.0.1:${port}`;
    this.#config = options.config;
    this.#port = port;
    this.#process = process;
    this.#dir = dir;
  }

  /** Starts nats-server -js and waits for its ready line. */
  static async start(options: NatsServerOptions = {}): Promise<NatsServer> {
    const dir = await Deno.makeTempDir({ prefix: "chatd-nats-" });
    // nats-server 2.9 takes no port 0: a port just seen free, then its ready line.
    const port = freePort();
    let process: Deno.ChildProcess | undefined;
    try {
      process = await launch(port, dir, options.config);
    } finally {
      if (process === undefined) await Deno.remove(dir, { recursive: true });
    }
    return new NatsServer(port, process, dir, options);
  }

  /** The port it listens on. */
  get port(): number {
    return this.#port;
  }

  /** The server's process id (for CPU time in the bench). */
  get pid(): number {
    return this.#process.pid;
  }

  /** Kills the server (SIGKILL). */
  async stop(): Promise<void> {
    try {
      this.#process.kill("SIGKILL");
    } catch { /* gone */ }
    await this.#process.status;
  }

  /**
   * Starts it again on the same port, with the same storage or, `fresh`, with none (a
   * server that lost its disk, or another server in its place).
   */
  async restart(options: { fresh?: boolean } = {}): Promise<void> {
    if (options.fresh) {
      await Deno.remove(this.#dir, { recursive: true });
      await Deno.mkdir(this.#dir);
    }
    this.#process = await launch(this.#port, this.#dir, this.#config);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
    await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
  }
}

/**
 * Runs nats-server -js on `port` with storage in `dir` (and `config` in a file there), and
 * waits for its ready line.
 */
async function launch(port: number, dir: string, config?: string): Promise<Deno.ChildProcess> {
  const flags = ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", dir, "-m", "0"];
  if (config !== undefined) {
    const file = `${dir}/nats.conf`;
    await Deno.writeTextFile(file, config + "\n");
    flags.push("-c", file);
  }
  const process = new Deno.Command("nats-server", {
    args: flags,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const ready = Promise.withResolvers<void>();
  // Its log is read to the end, so that the pipe never fills.
  (async () => {
    let text = "";
    for await (const chunk of process.stderr.pipeThrough(new TextDecoderStream())) {
      if (text.length < 100_000) text += chunk;
      if (text.includes("Server is ready")) ready.resolve();
      if (text.includes("[FTL]")) ready.reject(new Error(`nats-server failed: ${text}`));
    }
    ready.reject(new Error(`nats-server ended: ${text}`));
  })();
  try {
    await withTimeout(ready.promise, 10_000, "nats-server ready");
    return process;
  } catch (error: unknown) {
    try {
      process.kill("SIGKILL");
    } catch { /* gone */ }
    await process.status;
    throw error;
  }
}

/**
 * A TCP proxy in front of a nats-server, for one node: {@linkcode cut} partitions that node
 * from NATS (its connections closed, new ones refused) while others stay connected.
 */
export class NatsProxy implements AsyncDisposable {
  readonly url: string;
  readonly #port: number;
  readonly #target: number;
  #listener: Deno.TcpListener | undefined;
  readonly #conns = new Set<Deno.TcpConn>();

  private constructor(port: number, target: number) {
    this.#port = port;
    this.#target = target;
    this.url = `nats://127.0.0.1:${port}`;
  }

  /** Starts a proxy to `nats`. */
  static start(nats: NatsServer): NatsProxy {
    const target = Number(new URL(nats.url.replace("nats:", "http:")).port);
    const proxy = new NatsProxy(freePort(), target);
    proxy.restore();
    return proxy;
  }

  /** Closes every proxied connection and refuses new ones. */
  cut(): void {
    this.#listener?.close();
    this.#listener = undefined;
    for (const conn of this.#conns) {
      try {
        conn.close();
      } catch { /* closed */ }
    }
    this.#conns.clear();
  }

  /** Accepts connections again, on the same port. */
  restore(): void {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: this.#port });
    this.#listener = listener;
    (async () => {
      try {
        for await (const client of listener) this.#pipe(client);
      } catch { /* closed by cut */ }
    })();
  }

  async #pipe(client: Deno.TcpConn): Promise<void> {
    let server: Deno.TcpConn;
    try {
      server = await Deno.connect({ hostname: "127.0.0.1", port: this.#target });
    } catch {
      client.close();
      return;
    }
    this.#conns.add(client);
    this.#conns.add(server);
    const copy = async (from: Deno.TcpConn, to: Deno.TcpConn) => {
      try {
        await from.readable.pipeTo(to.writable);
      } catch { /* either side closed */ }
      for (const conn of [from, to]) {
        this.#conns.delete(conn);
        try {
          conn.close();
        } catch { /* closed */ }
      }
    };
    copy(client, server);
    copy(server, client);
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.cut();
    return Promise.resolve();
  }
}
