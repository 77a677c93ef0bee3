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

/** A running nats-server; `await using` stops it and removes its storage. */
export class NatsServer implements AsyncDisposable {
  readonly url: string;
  #process: Deno.ChildProcess;
  readonly #dir: string;
  readonly #port: number;

  private constructor(port: number, process: Deno.ChildProcess, dir: string) {
    this.url = `nats://127.0.0.1:${port}`;
    this.#port = port;
    this.#process = process;
    this.#dir = dir;
  }

  /** Starts nats-server -js and waits for its ready line. */
  static async start(): Promise<NatsServer> {
    const dir = await Deno.makeTempDir({ prefix: "chatd-nats-" });
    // nats-server 2.9 takes no port 0: a port just seen free, then its ready line.
    const port = freePort();
    let process: Deno.ChildProcess | undefined;
    try {
      process = await launch(port, dir);
    } finally {
      if (process === undefined) await Deno.remove(dir, { recursive: true });
    }
    return new NatsServer(port, process, dir);
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
    this.#process = await launch(this.#port, this.#dir);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
    await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
  }
}

/** Runs nats-server -js on `port` with storage in `dir`, and waits for its ready line. */
async function launch(port: number, dir: string): Promise<Deno.ChildProcess> {
  const process = new Deno.Command("nats-server", {
    args: ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", dir, "-m", "0"],
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
