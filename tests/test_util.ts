/**
 * Test helpers: start the real server as a separate process on an ephemeral port and wait
 * for its ready line; talk to it over real TCP with a line client whose every wait has a
 * timeout.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { CHILD_DENO_FLAGS } from "../src/child_command.ts";
import { BLOCK_SIGUSR1 } from "../src/inspector_guard.ts";

/** The repository root. */
export const ROOT = fileURLToPath(new URL("..", import.meta.url));
const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Rejects with `what timed out after N ms` unless `promise` settles first. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` every 20 ms until it returns true; rejects after `ms`. */
export async function waitUntil(check: () => boolean | Promise<boolean>, ms: number, what: string) {
  const deadline = performance.now() + ms;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`${what}: not true after ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Parses a logfmt line: `a=1 b="x y"` → `{ a: "1", b: "x y" }`. */
export function parseLogfmt(line: string): Record<string, string> {
  const fields: Record<string, string> = {};
  const pattern = /(\w+)=("(?:[^"\\]|\\.)*"|\S*)/g;
  for (const match of line.matchAll(pattern)) {
    const raw = match[2]!;
    fields[match[1]!] = raw.startsWith('"') ? JSON.parse(raw) : raw;
  }
  return fields;
}

/** Options of {@linkcode startServer}. */
export interface StartOptions {
  /** Environment variables added for the server. */
  env?: Record<string, string>;
  /** How long to wait for the ready line. */
  timeoutMs?: number;
  /** Run this executable (a compiled chatd) instead of main.ts under deno. */
  binary?: string;
  /**
   * A command that runs the server command given as its arguments, such as `["setsid"]` (a
   * process group of its own, which the test may signal as Ctrl-C does). It must exec the
   * server in place, so that the process the test holds is the supervisor.
   */
  prefix?: string[];
}

/** The command that runs chatd with `args`: from source, or the given compiled binary. */
export function serverCommand(
  args: string[],
  env: Record<string, string> = {},
  binary?: string,
  prefix: string[] = [],
): Deno.Command {
  // Under deno run SIGUSR1 must be blocked, else chatd refuses to serve (src/inspector_guard.ts).
  const command = binary ? [binary, ...args] : [
    ...BLOCK_SIGUSR1,
    Deno.execPath(),
    "run",
    "--quiet",
    ...CHILD_DENO_FLAGS,
    "--allow-run",
    MAIN,
    ...args,
  ];
  const [program, ...rest] = [...prefix, ...command];
  return new Deno.Command(program!, {
    args: rest,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env,
  });
}

/**
 * Runs `command` (stdout and stderr piped) to its end and returns what it wrote; after `ms`
 * it is killed (a server that should have refused to start but serves, say) and this rejects.
 */
export async function outputWithin(command: Deno.Command, ms: number): Promise<Deno.CommandOutput> {
  const child = command.spawn();
  try {
    return await withTimeout(child.output(), ms, "command exit");
  } catch (error: unknown) {
    try {
      child.kill("SIGKILL"); // a supervisor's children see end-of-file and exit too
    } catch { /* gone */ }
    await child.status;
    throw error;
  }
}

/** A running server. `await using` stops it (SIGKILL if it ignores SIGTERM). */
export class TestServer implements AsyncDisposable {
  readonly process: Deno.ChildProcess;
  readonly host: string;
  readonly port: number;
  /** The web port (from `chatd web on ...`); undefined under `--no-web`. */
  readonly webPort: number | undefined;
  /** The TLS line port of `--tls-port` (from `chatd tls on ...`), if any. */
  tlsPort: number | undefined;
  /** Every stderr (log) line so far. */
  readonly logs: string[];
  /** The stdout lines after the ready line, so far. */
  readonly stdout: string[] = [];
  readonly #logWaiters: (() => void)[];
  readonly status: Promise<Deno.CommandStatus>;

  private constructor(
    process: Deno.ChildProcess,
    host: string,
    port: number,
    webPort: number | undefined,
    logs: string[],
    logWaiters: (() => void)[],
  ) {
    this.process = process;
    this.host = host;
    this.port = port;
    this.webPort = webPort;
    this.logs = logs;
    this.#logWaiters = logWaiters;
    this.status = process.status;
  }

  /**
   * Starts `chatd --port 0 --web-port 0 ...args` and waits for `chatd listening on HOST:PORT`
   * (and `chatd web on URL` unless `--no-web`). History is off (`--history 0`) unless `args`
   * ask for it, so that `OK JOIN` is followed by no `HISTORY` lines in tests that are not
   * about history.
   */
  static async start(args: string[] = [], options: StartOptions = {}): Promise<TestServer> {
    const web = !args.includes("--no-web");
    const history = args.some((arg) => arg.startsWith("--history")) ? [] : ["--history", "0"];
    const process = serverCommand(
      ["--port", "0", "--web-port", "0", ...history, ...args],
      options.env,
      options.binary,
      options.prefix,
    ).spawn();
    const logs: string[] = [];
    const logWaiters: (() => void)[] = [];
    collectLines(process.stderr, (line) => {
      logs.push(line);
      for (const wake of logWaiters.splice(0)) wake();
    });
    const stdout = lines(process.stdout);
    try {
      const ready = await withTimeout(stdout.next(), options.timeoutMs ?? 20_000, "ready line");
      const match = /^chatd listening on (.+):(\d+)$/.exec(ready.value ?? "");
      if (!match) throw new Error(`unexpected ready line: ${ready.value}`);
      let tlsPort: number | undefined;
      if (args.some((arg) => arg.startsWith("--tls-port"))) {
        const line = await withTimeout(stdout.next(), 5_000, "tls line");
        const tlsMatch = /^chatd tls on .+:(\d+)$/.exec(line.value ?? "");
        if (!tlsMatch) throw new Error(`unexpected tls line: ${line.value}`);
        tlsPort = Number(tlsMatch[1]);
      }
      let webPort: number | undefined;
      if (web) {
        const line = await withTimeout(stdout.next(), 5_000, "web line");
        const webMatch = /^chatd web on https?:\/\/.+:(\d+)\/$/.exec(line.value ?? "");
        if (!webMatch) throw new Error(`unexpected web line: ${line.value}`);
        webPort = Number(webMatch[1]);
      }
      const server = new TestServer(
        process,
        match[1]!,
        Number(match[2]),
        webPort,
        logs,
        logWaiters,
      );
      server.tlsPort = tlsPort;
      // Keep the rest of stdout (the metrics line), and drain it so the pipe never fills.
      (async () => {
        for await (const line of stdout) {
          server.stdout.push(line);
          for (const wake of logWaiters.splice(0)) wake();
        }
      })();
      return server;
    } catch (error: unknown) {
      try {
        process.kill("SIGKILL");
      } catch { /* gone */ }
      await process.status;
      throw new Error(`server did not start:\n${logs.join("\n")}`, { cause: error });
    }
  }

  /** Waits for a log line whose logfmt fields match `fields`, seen from `from` on. */
  async waitForLog(
    fields: Record<string, string | number>,
    options: { from?: number; timeoutMs?: number } = {},
  ): Promise<Record<string, string>> {
    let index = options.from ?? 0;
    const find = () => {
      for (; index < this.logs.length; index++) {
        const parsed = parseLogfmt(this.logs[index]!);
        if (Object.entries(fields).every(([key, value]) => parsed[key] === String(value))) {
          return parsed;
        }
      }
      return undefined;
    };
    const wait = async () => {
      for (;;) {
        const found = find();
        if (found) return found;
        await new Promise<void>((resolve) => this.#logWaiters.push(resolve));
      }
    };
    return await withTimeout(
      wait(),
      options.timeoutMs ?? 10_000,
      `log line ${JSON.stringify(fields)}`,
    );
  }

  /** Waits for a stdout line (after the ready line) that matches `pattern`. */
  async waitForStdout(pattern: RegExp, timeoutMs = 10_000): Promise<RegExpExecArray> {
    const wait = async () => {
      for (;;) {
        for (const line of this.stdout) {
          const match = pattern.exec(line);
          if (match) return match;
        }
        await new Promise<void>((resolve) => this.#logWaiters.push(resolve));
      }
    };
    return await withTimeout(wait(), timeoutMs, `stdout line ${pattern}`);
  }

  /** The log lines so far, parsed. */
  parsedLogs(): Record<string, string>[] {
    return this.logs.map(parseLogfmt);
  }

  /**
   * The OS pids of the children alive now, by p_id: the supervisor's child processes (from
   * `/proc`, zombies left out) whose command line has `--p-id`. Not from the log, where a
   * child's start is at debug level during start-up.
   */
  childPids(): Map<number, number[]> {
    const byPId = new Map<number, number[]>();
    const supervisor = this.process.pid;
    let tasks: string[] = [];
    try {
      tasks = [...Deno.readDirSync(`/proc/${supervisor}/task`)].map((entry) => entry.name);
    } catch {
      return byPId; // The supervisor is gone.
    }
    for (const task of tasks) {
      let children = "";
      try {
        children = Deno.readTextFileSync(`/proc/${supervisor}/task/${task}/children`);
      } catch {
        continue;
      }
      for (const pid of children.trim().split(/\s+/).filter(Boolean).map(Number)) {
        let args: string[];
        try {
          args = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
        } catch {
          continue;
        }
        const flag = args.indexOf("--p-id");
        if (flag === -1 || processGone(pid)) continue;
        const pId = Number(args[flag + 1]);
        byPId.set(pId, [...(byPId.get(pId) ?? []), pid]);
      }
    }
    return byPId;
  }

  /** The runtime directory, from the supervisor's first log line. */
  runtimeDir(): string {
    const started = this.parsedLogs().find((fields) => fields.msg === "supervisor started");
    if (!started?.runtime_dir) throw new Error("no runtime_dir in the log");
    return started.runtime_dir;
  }

  /** Connects a line client. */
  connect(): Promise<LineClient> {
    return LineClient.connect(this.port, this.host);
  }

  /** Sends a signal to the supervisor. */
  signal(signal: Deno.Signal): void {
    this.process.kill(signal);
  }

  /**
   * Stops the server: SIGTERM, then SIGKILL for the supervisor and its children if it does
   * not exit within 10 s. Children still running 3 s after the supervisor is gone (orphans,
   * which chatd's children should never be) are killed too, so no test leaves any behind.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    const kill = (pid: number) => {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    };
    try {
      this.process.kill("SIGTERM");
    } catch {
      // Already exited.
    }
    try {
      await withTimeout(this.status, 10_000, "server exit");
    } catch {
      kill(this.process.pid);
      await this.status;
    }
    const children = [...this.childPids().values()].flat();
    try {
      await waitUntil(() => children.every(processGone), 3000, "children gone");
    } catch {
      for (const pid of children.filter(isChatdChild)) kill(pid);
    }
  }
}

async function collectLines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void) {
  for await (const line of lines(stream)) onLine(line);
}

async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let pending = "";
  const textDecoder = new TextDecoder();
  for await (const chunk of stream) {
    pending += textDecoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = pending.indexOf("\n")) !== -1) {
      yield pending.slice(0, newline);
      pending = pending.slice(newline + 1);
    }
  }
  if (pending !== "") yield pending;
}

/** True when `pid` runs a chatd child (so not some other process that reused the pid). */
export function isChatdChild(pid: number): boolean {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").includes("__child");
  } catch {
    return false;
  }
}

/** True when no process with `pid` runs (a zombie counts as gone). */
export function processGone(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ, the unit of /proc/<pid>/stat's start time

/**
 * How long the process `pid` has run, in ms, from /proc (10 ms resolution, rounded down).
 * The supervisor takes a child's start time just before it spawns it, so the supervisor's
 * idea of the child's uptime is at least this.
 */
export function processUptimeMs(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const startTicks = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
  const uptimeS = Number(Deno.readTextFileSync("/proc/uptime").split(" ")[0]);
  return uptimeS * 1000 - (startTicks * 1000) / CLOCK_TICKS_PER_SECOND;
}

/** Waits until the process `pid` has run for at least `ms`. */
export async function waitForUptime(pid: number, ms: number, timeoutMs = 10_000): Promise<void> {
  await waitUntil(() => processUptimeMs(pid) >= ms, timeoutMs, `process ${pid} up for ${ms} ms`);
}

/** A TCP client that reads LF-terminated lines. */
export class LineClient implements AsyncDisposable {
  readonly conn: Deno.TcpConn;
  #buffer = "";
  #eof = false;
  /** Why the stream ended, when a read failed (a reset) rather than reaching end of file. */
  #readError: unknown;
  #reading: Promise<void> | undefined;
  /** The greeting, once {@linkcode hello} has read it. */
  greeting = "";

  constructor(conn: Deno.TcpConn) {
    this.conn = conn;
  }

  /** Connects; does not read the greeting. */
  static async connect(port: number, host = "127.0.0.1"): Promise<LineClient> {
    const conn = await withTimeout(Deno.connect({ hostname: host, port }), 5000, "connect");
    conn.setNoDelay(true);
    return new LineClient(conn);
  }

  /** Reads the greeting and returns the p_id and t_id it names. */
  async hello(timeoutMs = 5000): Promise<{ pId: number; tId: number }> {
    this.greeting = await this.readLine(timeoutMs);
    const match = /^HELLO chatd \S+ p=(\d+) t=(\d+) /.exec(this.greeting);
    if (!match) throw new Error(`not a greeting: ${JSON.stringify(this.greeting)}`);
    return { pId: Number(match[1]), tId: Number(match[2]) };
  }

  /** Sends `line` and a LF. */
  async send(line: string): Promise<void> {
    await this.sendBytes(encoder.encode(line + "\n"));
  }

  /** Sends raw bytes. */
  async sendBytes(bytes: Uint8Array): Promise<void> {
    let written = 0;
    while (written < bytes.length) written += await this.conn.write(bytes.subarray(written));
  }

  async #fill(): Promise<void> {
    const chunk = new Uint8Array(65536);
    let n: number | null;
    try {
      n = await this.conn.read(chunk);
    } catch (error: unknown) {
      n = null; // A reset ends the stream too; expectEof tells it from a clean close.
      this.#readError = error;
    }
    if (n === null) this.#eof = true;
    else this.#buffer += decoder.decode(chunk.subarray(0, n), { stream: true });
  }

  /** The next line without its LF, or rejects on timeout or end of stream. */
  async readLine(timeoutMs = 5000): Promise<string> {
    const line = await this.readLineOrEof(timeoutMs);
    if (line === null) throw new Error("end of stream while waiting for a line");
    return line;
  }

  /** The next line, or null at end of stream; rejects on timeout. */
  readLineOrEof(timeoutMs = 5000): Promise<string | null> {
    const read = async () => {
      for (;;) {
        const newline = this.#buffer.indexOf("\n");
        if (newline !== -1) {
          const line = this.#buffer.slice(0, newline);
          this.#buffer = this.#buffer.slice(newline + 1);
          return line;
        }
        if (this.#eof) return null;
        // A read that outlived an earlier timeout is still pending: wait for it, not a new one.
        this.#reading ??= this.#fill().finally(() => this.#reading = undefined);
        await this.#reading;
      }
    };
    return withTimeout(read(), timeoutMs, "reading a line");
  }

  /** Reads `count` lines. */
  async readLines(count: number, timeoutMs = 5000): Promise<string[]> {
    const result: string[] = [];
    for (let i = 0; i < count; i++) result.push(await this.readLine(timeoutMs));
    return result;
  }

  /** True once a read failed (a reset) instead of reaching a clean end of stream. */
  get wasReset(): boolean {
    return this.#readError !== undefined;
  }

  /** Asserts the next thing read is a clean end of stream (FIN), not a line or a reset. */
  async expectEof(timeoutMs = 5000): Promise<void> {
    const line = await this.readLineOrEof(timeoutMs);
    if (line !== null) throw new Error(`expected end of stream, got ${JSON.stringify(line)}`);
    if (this.#readError !== undefined) {
      throw new Error(`expected a clean end of stream, got ${this.#readError}`, {
        cause: this.#readError,
      });
    }
  }

  /**
   * Asserts that no line arrives within `ms`: for checking that something is *not*
   * delivered, after a later event proved the earlier one had its chance.
   */
  async expectSilence(ms: number): Promise<void> {
    try {
      const line = await this.readLineOrEof(ms);
      throw new Error(`expected silence, got ${JSON.stringify(line)}`);
    } catch (error: unknown) {
      if (error instanceof Error && error.message.startsWith("reading a line timed out")) return;
      throw error;
    }
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}

/** Sends `JOIN name` and asserts the reply is `OK JOIN name`. */
export async function join(client: LineClient, name: string): Promise<void> {
  await client.send(`JOIN ${name}`);
  const reply = await client.readLine();
  if (reply !== `OK JOIN ${name}`) {
    throw new Error(`JOIN ${name} answered ${JSON.stringify(reply)}`);
  }
}

/**
 * Connects a client to `server`, reads its greeting and joins it as `name`.
 *
 * @throws Error when the reply to `JOIN name` is not `OK JOIN name`.
 */
export async function joinAs(server: TestServer, name: string): Promise<LineClient> {
  const client = await server.connect();
  try {
    await client.hello();
    await join(client, name);
  } catch (error: unknown) {
    client.close();
    throw error;
  }
  return client;
}

/**
 * Reads lines from `client` until one equals `want` (others are chat noise).
 *
 * @throws Error naming the lines read when `want` is not among the next 50, or a read
 * times out after `ms` (default 15 s).
 */
export async function readUntil(client: LineClient, want: string, ms = 15_000): Promise<void> {
  const seen: string[] = [];
  for (let i = 0; i < 50; i++) {
    const line = await client.readLine(ms);
    if (line === want) return;
    seen.push(line);
  }
  throw new Error(`never read ${JSON.stringify(want)}; read ${JSON.stringify(seen)}`);
}

/** VmRSS of a process, in MiB. */
export function rssMiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

/** Connects clients until `want` returns true for one (by its p_id/t_id); closes the others. */
export async function connectTo(
  server: TestServer,
  want: (where: { pId: number; tId: number }) => boolean,
  attempts = 200,
): Promise<LineClient> {
  for (let i = 0; i < attempts; i++) {
    const client = await server.connect();
    try {
      if (want(await client.hello())) return client;
    } catch (error: unknown) {
      client.close();
      throw error;
    }
    client.close();
  }
  throw new Error(`no connection landed where wanted in ${attempts} attempts`);
}
