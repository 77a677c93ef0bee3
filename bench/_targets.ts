/**
 * The servers a scenario can run against: chatd itself, the reference server
 * (`reference_server.ts`, the floor of Deno's I/O) and ngircd (a single-threaded C IRC server,
 * when installed). Each starts fresh on a free 127.0.0.1 port and is stopped by `await using`.
 *
 * @module
 */
import { delimiter, join } from "node:path";
import { TestServer, withTimeout } from "../tests/test_util.ts";
import { NatsServer } from "../tests/_nats.ts";
import { childrenOf } from "./_proc.ts";
import type { Protocol } from "./_messages.ts";

/** The servers the bench knows. */
export type TargetName = "chatd" | "reference" | "ngircd";

/**
 * ngircd listens with a backlog of 10 (`ss -ltn` shows it): with more connects under way at
 * once, the kernel drops the handshakes that overflow its accept queue and retries them with
 * backoff, and a client that believes it is connected waits up to minutes for its first line.
 */
const NGIRCD_LISTEN_BACKLOG = 10;

/** How many connections a loadgen may set up at once against `target`: at most `wanted`. */
export function connectConcurrency(target: TargetName, wanted: number): number {
  return target === "ngircd" ? Math.min(wanted, NGIRCD_LISTEN_BACKLOG - 2) : wanted;
}

/** Every target, in the order the tables show them. */
export const TARGET_NAMES: readonly TargetName[] = ["chatd", "reference", "ngircd"];

/** A running server under test. */
export interface Target extends AsyncDisposable {
  readonly name: TargetName;
  /** What the load generator speaks to it. */
  readonly protocol: Protocol;
  readonly host: string;
  readonly port: number;
  /** A cluster's second node: its line port. */
  readonly peerPort?: number;
  /** Its processes, for CPU time and RSS. */
  pids(): number[];
  /** A cluster: its processes by role (`nats-server`, `supervisors`, `children`). */
  roles?(): Record<string, number[]>;
  /** Warnings and errors it logged, with a few samples. */
  problems(): { lines: number; samples: string[] };
}

/** Options of {@linkcode startTarget}. */
export interface TargetOptions {
  /** chatd only: its flags (`--port 0` comes first by itself). */
  chatdArgs: string[];
  /** chatd only: environment added for it, such as `DENO_V8_FLAGS`. */
  chatdEnv?: Record<string, string>;
  /**
   * chatd only: 2 = two nodes with these flags, joined through a nats-server with JetStream
   * started for the run (free port, temp store, killed by PID when done). Default 1.
   */
  nodes?: 1 | 2;
}

const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;
const REFERENCE = new URL("./reference_server.ts", import.meta.url).pathname;
/** ngircd's log levels (syslog): 0 emergency ... 4 warning. */
const NGIRCD_PROBLEM = /^\[\d+:[0-4] /;
/** Warnings about our own deliberate settings, and resets by loadgens closing with unread data. */
const NGIRCD_EXPECTED =
  /MaxPenaltyTime|ServerUID must not be root|not recommended|Connection reset by peer|Broken pipe/;

/**
 * Where ngircd is: on the PATH, or in Debian's /usr/sbin (not on every user's PATH).
 *
 * @returns undefined when it is not installed.
 */
export function findNgircd(path = Deno.env.get("PATH") ?? ""): string | undefined {
  const dirs = [
    ...path.split(delimiter).filter((dir) => dir !== ""),
    "/usr/sbin",
    "/usr/local/sbin",
  ];
  for (const dir of dirs) {
    try {
      const file = join(dir, "ngircd");
      if (Deno.statSync(file).isFile) return file;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

/**
 * An ngircd configuration that measures the server, not its protection: no limit on
 * connections per IP or channels per user, penalties (its flood throttle) off, no DNS, IDENT
 * or PAM look-ups at registration, pings rare, nicks as long as it allows.
 */
export function ngircdConfig(port: number): string {
  return [
    "[Global]",
    "Name = bench.chatd.local",
    "Info = chatd bench peer",
    "AdminInfo1 = chatd bench",
    "AdminInfo2 = generated per run",
    "AdminEMail = bench@chatd.local",
    "Listen = 127.0.0.1",
    `Ports = ${port}`,
    "MotdPhrase = bench",
    "[Limits]",
    "MaxConnections = 0",
    "MaxConnectionsIP = 0",
    "MaxJoins = 0",
    "MaxNickLength = 31",
    "MaxPenaltyTime = 0",
    "PingTimeout = 600",
    "PongTimeout = 600",
    "[Options]",
    "DNS = no",
    "Ident = no",
    "PAM = no",
    "",
  ].join("\n");
}

/**
 * Starts `name` fresh and waits until it accepts connections.
 *
 * @throws {Error} when ngircd is not installed, or a server does not come up in time.
 */
export async function startTarget(name: TargetName, options: TargetOptions): Promise<Target> {
  switch (name) {
    case "chatd":
      if (options.nodes === 2) return await ClusterTarget.start(options);
      return new ChatdTarget(await TestServer.start(options.chatdArgs, { env: options.chatdEnv }));
    case "reference":
      return await ProcessTarget.start("reference", "chatd", Deno.execPath(), {
        args: ["run", "--quiet", "--allow-net", REFERENCE, "--port", "0"],
        ready: /^reference listening on (\S+):(\d+)$/,
      });
    case "ngircd": {
      const ngircd = findNgircd();
      if (ngircd === undefined) throw new Error("Cannot start ngircd: not installed");
      const port = freePort();
      const dir = await Deno.makeTempDir({ prefix: "chatd-bench-ngircd-" });
      try {
        const config = join(dir, "ngircd.conf");
        await Deno.writeTextFile(config, ngircdConfig(port));
        // ngircd drops root for "nobody", who must be able to read its config.
        await Deno.chmod(dir, 0o755);
        await Deno.chmod(config, 0o644);
        return await ProcessTarget.start("ngircd", "irc", ngircd, {
          args: ["--nodaemon", "--config", config],
          ready: /Server "\S+" \(on "[^"]*"\) ready/,
          port,
          dir,
        });
      } catch (error: unknown) {
        await Deno.remove(dir, { recursive: true });
        throw error;
      }
    }
  }
}

/** A port that was free a moment ago on 127.0.0.1, for a server that cannot take port 0. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

class ChatdTarget implements Target {
  readonly name = "chatd";
  readonly protocol = "chatd";
  readonly #server: TestServer;

  constructor(server: TestServer) {
    this.#server = server;
  }

  get host(): string {
    return this.#server.host;
  }

  get port(): number {
    return this.#server.port;
  }

  /** The supervisor and its children: from the log when it names them, else from /proc. */
  pids(): number[] {
    const supervisor = this.#server.process.pid;
    const children = new Set([...this.#server.childPids().values()].flat());
    for (const pid of childrenOf(supervisor)) children.add(pid);
    return [supervisor, ...[...children].sort((a, b) => a - b)];
  }

  /** The log lines (it runs with `--log-level warning`, so every line is one). */
  problems(): { lines: number; samples: string[] } {
    const lines = this.#server.logs.filter((line) => line.trim() !== "");
    return { lines: lines.length, samples: lines.slice(0, 5).map((line) => line.slice(0, 300)) };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#server[Symbol.asyncDispose]();
  }
}

/** The supervisor's and its children's pids: from the log when it names them, else /proc. */
function chatdPids(server: TestServer): { supervisor: number; children: number[] } {
  const supervisor = server.process.pid;
  const children = new Set([...server.childPids().values()].flat());
  for (const pid of childrenOf(supervisor)) children.add(pid);
  return { supervisor, children: [...children].sort((a, b) => a - b) };
}

/**
 * Two chatd nodes joined through one nats-server: clients connect to the first (`port`) and
 * the second (`peerPort`); CPU time counts all three.
 */
class ClusterTarget implements Target {
  readonly name = "chatd";
  readonly protocol = "chatd";
  readonly #nats: NatsServer;
  readonly #nodes: [TestServer, TestServer];

  private constructor(nats: NatsServer, nodes: [TestServer, TestServer]) {
    this.#nats = nats;
    this.#nodes = nodes;
  }

  /**
   * Starts nats-server, then the two nodes (`bench-a`, `bench-b`).
   *
   * @throws {Error} when nats-server or a node does not start; what did start is stopped.
   */
  static async start(options: TargetOptions): Promise<ClusterTarget> {
    await using stack = new AsyncDisposableStack();
    const nats = stack.use(await NatsServer.start());
    const node = async (name: string) =>
      stack.use(
        await TestServer.start(
          [...options.chatdArgs, "--cluster", nats.url, "--node-name", name],
          { env: options.chatdEnv },
        ),
      );
    const a = await node("bench-a");
    const b = await node("bench-b");
    const target = new ClusterTarget(nats, [a, b]);
    stack.move();
    return target;
  }

  get host(): string {
    return this.#nodes[0].host;
  }

  get port(): number {
    return this.#nodes[0].port;
  }

  get peerPort(): number {
    return this.#nodes[1].port;
  }

  pids(): number[] {
    return Object.values(this.roles()).flat();
  }

  roles(): Record<string, number[]> {
    const [a, b] = this.#nodes.map(chatdPids) as [
      ReturnType<typeof chatdPids>,
      ReturnType<typeof chatdPids>,
    ];
    return {
      "nats-server": [this.#nats.pid],
      supervisors: [a.supervisor, b.supervisor],
      children: [...a.children, ...b.children],
    };
  }

  problems(): { lines: number; samples: string[] } {
    const lines = this.#nodes.flatMap((node) => node.logs).filter((line) => line.trim() !== "");
    return { lines: lines.length, samples: lines.slice(0, 5).map((line) => line.slice(0, 300)) };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    // The nodes first, so that they leave the buckets clean; then the server.
    try {
      await Promise.all(this.#nodes.map((node) => node[Symbol.asyncDispose]()));
    } finally {
      await this.#nats[Symbol.asyncDispose]();
    }
  }
}

interface ProcessStart {
  args: string[];
  /** The line that says it is ready; groups 1 and 2, when present, are host and port. */
  ready: RegExp;
  /** The port, when the ready line does not say it. */
  port?: number;
  /** A temporary directory to remove once it has stopped. */
  dir?: string;
}

/** A one-process server whose output is read line by line. */
class ProcessTarget implements Target {
  readonly name: TargetName;
  readonly protocol: Protocol;
  readonly host: string;
  readonly port: number;
  readonly #child: Deno.ChildProcess;
  readonly #problems: string[];
  readonly #dir: string | undefined;

  private constructor(
    name: TargetName,
    protocol: Protocol,
    child: Deno.ChildProcess,
    where: { host: string; port: number; problems: string[]; dir?: string },
  ) {
    this.name = name;
    this.protocol = protocol;
    this.#child = child;
    this.host = where.host;
    this.port = where.port;
    this.#problems = where.problems;
    this.#dir = where.dir;
  }

  static async start(
    name: TargetName,
    protocol: Protocol,
    command: string,
    start: ProcessStart,
  ): Promise<ProcessTarget> {
    const child = new Deno.Command(command, {
      args: start.args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const problems: string[] = [];
    const output: string[] = [];
    const { promise: ready, resolve } = Promise.withResolvers<RegExpExecArray | undefined>();
    const onLine = (line: string) => {
      if (output.length < 50) output.push(line);
      const match = start.ready.exec(line);
      if (match) resolve(match);
      else if (name === "ngircd" && NGIRCD_PROBLEM.test(line) && !NGIRCD_EXPECTED.test(line)) {
        problems.push(line);
      } else if (name === "reference" && line.trim() !== "") problems.push(line);
    };
    // Both streams are read to their end so that neither pipe fills.
    Promise.all([eachLine(child.stdout, onLine), eachLine(child.stderr, onLine)])
      .then(() => resolve(undefined));
    try {
      const match = await withTimeout(ready, READY_TIMEOUT_MS, `${name} ready line`);
      if (match === undefined) throw new Error(`${name} exited before it was ready`);
      const host = match[1] ?? "127.0.0.1";
      const port = match[2] !== undefined ? Number(match[2]) : start.port!;
      return new ProcessTarget(name, protocol, child, { host, port, problems, dir: start.dir });
    } catch (error: unknown) {
      try {
        child.kill("SIGKILL");
      } catch {
        // Gone.
      }
      await child.status;
      throw new Error(`${name} did not start:\n${output.join("\n")}`, { cause: error });
    }
  }

  pids(): number[] {
    return [this.#child.pid];
  }

  problems(): { lines: number; samples: string[] } {
    return { lines: this.#problems.length, samples: this.#problems.slice(0, 5) };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#child.kill("SIGTERM");
    } catch {
      // Already exited.
    }
    try {
      await withTimeout(this.#child.status, STOP_TIMEOUT_MS, `${this.name} exit`);
    } catch {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // Gone.
      }
      await this.#child.status;
    } finally {
      if (this.#dir !== undefined) await Deno.remove(this.#dir, { recursive: true });
    }
  }
}

async function eachLine(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void) {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of stream) {
    pending += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = pending.indexOf("\n")) !== -1) {
      onLine(pending.slice(0, newline));
      pending = pending.slice(newline + 1);
    }
  }
  if (pending !== "") onLine(pending);
}
