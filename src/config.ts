/**
 * Command-line flags: their defaults, their validation and the `--help` text.
 *
 * The supervisor parses the user's flags once; children get the same flags back on their
 * command line (see `child_command.ts`), so every role reads its settings from here.
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { isLogLevel, type LogLevel } from "@logtape/logtape";
import { VERSION } from "./version.ts";

export { VERSION };

/** Every setting of a running server. */
export interface Config {
  host: string;
  /** The TCP port; 0 until the supervisor has resolved `--port 0` to a free port. */
  port: number;
  processes: number;
  threads: number;
  /** Recycle a process after it has accepted this many clients; 0 = never. */
  clientsPerProcess: number;
  maxClientsPerThread: number;
  /** Longest accepted line in bytes, its LF or CRLF not counted. */
  maxLineBytes: number;
  /** Seconds the supervisor waits for children on shutdown before killing them. */
  grace: number;
  /** Seconds a connection may stay without a name before it is closed. */
  joinTimeout: number;
  /** Lines per second a client may send before it is slowed down; 0 = no limit. */
  rate: number;
  /** Lines a client may send at once before the rate applies. */
  burst: number;
  /** Bytes queued for one client before it is disconnected as a slow consumer. */
  maxSendQueue: number;
  /** Seconds a child may leave the supervisor's heartbeat unanswered before it is killed. */
  watchdog: number;
  logLevel: LogLevel;
  /** Where the Unix sockets live; empty = a fresh private directory under the temp dir. */
  runtimeDir: string;
  /** Whether the web port serves the page and WebSockets (`--no-web` turns it off). */
  web: boolean;
  /** The web port; 0 until the supervisor has resolved `--web-port 0` to a free port. */
  webPort: number;
  /** Origins besides the page's own allowed to open a WebSocket (`--web-origin`). */
  webOrigins: string[];
  /** Fault injection for tests (`FAULT` verb): on when the environment has CHATD_FAULTS=1. */
  faults: boolean;
}

/** The defaults, as documented in `--help` and the README. */
export const DEFAULTS: Readonly<Config> = {
  host: "127.0.0.1",
  port: 4321,
  processes: 2,
  threads: 2,
  clientsPerProcess: 0,
  maxClientsPerThread: 1024,
  maxLineBytes: 4096,
  grace: 5,
  joinTimeout: 60,
  rate: 20,
  burst: 100,
  maxSendQueue: 1024 * 1024,
  watchdog: 10,
  logLevel: "info",
  runtimeDir: "",
  web: true,
  webPort: 8080,
  webOrigins: [],
  faults: false,
};

/**
 * The longest line `--max-line-bytes` may allow. Any accepted line then fits in one
 * datagram (see `MAX_DATAGRAM_BYTES` in wire.ts), so messages are never split.
 */
export const MAX_LINE_BYTES_LIMIT = 65536;

/** A bad flag or value: the message is for the user, and the process exits with code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** What the command line asks for. */
export type Invocation =
  | { kind: "serve"; config: Config }
  | { kind: "child"; config: Config; pId: number; instance: number }
  | { kind: "client"; host: string; port: number; name: string | undefined }
  | { kind: "help"; text: string }
  | { kind: "version"; text: string };

/** The `--help` text. */
export const HELP_TEXT = `chatd ${VERSION}: a multi-process chat server you can talk to with nc

Usage:
  chatd [options]                 start the server
  chatd client [--host H] [--port P] [--name NAME]
                                  an interactive terminal client
  chatd --help | --version

Options:
  --host HOST                   address to listen on (default ${DEFAULTS.host})
  --port PORT                   TCP port, 0 picks a free one (default ${DEFAULTS.port})
  --processes N                 worker processes (default ${DEFAULTS.processes})
  --threads T                   threads per process (default ${DEFAULTS.threads})
  --clients-per-process N       recycle a process after N clients, 0 = never (default 0)
  --max-clients-per-thread N    clients one thread serves at once (default ${DEFAULTS.maxClientsPerThread})
  --max-line-bytes N            longest line a client may send (default ${DEFAULTS.maxLineBytes}, at most ${MAX_LINE_BYTES_LIMIT})
  --grace SECONDS               shutdown grace period (default ${DEFAULTS.grace})
  --join-timeout SECONDS        close connections that have not joined by then (default ${DEFAULTS.joinTimeout})
  --rate LINES                  lines per second a client may send, 0 = no limit (default ${DEFAULTS.rate})
  --burst LINES                 lines a client may send at once before --rate applies (default ${DEFAULTS.burst})
  --max-send-queue BYTES        bytes queued for a client before it is dropped as a slow consumer (default ${DEFAULTS.maxSendQueue})
  --watchdog SECONDS            kill a child that misses heartbeats this long (default ${DEFAULTS.watchdog})
  --log-level LEVEL             trace, debug, info, warning, error or fatal (default ${DEFAULTS.logLevel})
  --runtime-dir DIR             directory for the Unix sockets (default: a new private temp dir)
  --web-port PORT               port of the web page and its WebSocket, 0 picks a free one (default ${DEFAULTS.webPort})
  --no-web                      do not serve the web port
  --web-origin ORIGIN           also accept WebSockets from this origin (repeatable, or a comma list)
  -h, --help                    show this help
  -V, --version                 show the version
`;

const SERVER_OPTIONS = {
  host: { type: "string" },
  port: { type: "string" },
  processes: { type: "string" },
  threads: { type: "string" },
  "clients-per-process": { type: "string" },
  "max-clients-per-thread": { type: "string" },
  "max-line-bytes": { type: "string" },
  grace: { type: "string" },
  "join-timeout": { type: "string" },
  rate: { type: "string" },
  burst: { type: "string" },
  "max-send-queue": { type: "string" },
  watchdog: { type: "string" },
  "log-level": { type: "string" },
  "runtime-dir": { type: "string" },
  "web-port": { type: "string" },
  "no-web": { type: "boolean" },
  "web-origin": { type: "string", multiple: true },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
  // Hidden: set by the supervisor on the command line of its children.
  "p-id": { type: "string" },
  instance: { type: "string" },
} as const;

/**
 * Reads the command line.
 *
 * @throws {UsageError} on an unknown flag, a missing value or a value out of range.
 * @example
 * ```ts
 * parseInvocation(["--port", "0", "--processes", "3"]); // { kind: "serve", config: {...} }
 * ```
 * @param env what the environment says: `faults` is CHATD_FAULTS=1.
 */
export function parseInvocation(
  args: string[],
  env: { faults?: boolean } = {},
): Invocation {
  const [first, ...rest] = args;
  if (first === "client") return parseClient(rest);
  const isChild = first === "__child";
  const values = parse(isChild ? rest : args, SERVER_OPTIONS);
  if (values.help) return { kind: "help", text: HELP_TEXT };
  if (values.version) return { kind: "version", text: `chatd ${VERSION}` };
  const config = { ...parseConfig(values), faults: env.faults ?? false };
  if (!isChild) {
    if (values["p-id"] !== undefined || values.instance !== undefined) {
      throw new UsageError("--p-id and --instance are internal flags");
    }
    return { kind: "serve", config };
  }
  const pId = integer("p-id", values["p-id"], 0, config.processes - 1, undefined);
  const instance = integer("instance", values.instance, 0, 2 ** 31, undefined);
  if (config.runtimeDir === "") throw new UsageError("a child needs --runtime-dir");
  return { kind: "child", config, pId, instance };
}

function parseConfig(
  values: Record<string, string | boolean | string[] | undefined>,
): Omit<Config, "faults"> {
  const logLevel = str(values["log-level"]) ?? DEFAULTS.logLevel;
  if (!isLogLevel(logLevel)) {
    throw new UsageError(
      `Invalid --log-level ${logLevel}: use trace, debug, info, warning, error or fatal`,
    );
  }
  const host = str(values.host) ?? DEFAULTS.host;
  if (host === "") throw new UsageError("Invalid --host: empty");
  return {
    host,
    port: integer("port", values.port, 0, 65535, DEFAULTS.port),
    processes: integer("processes", values.processes, 1, 64, DEFAULTS.processes),
    threads: integer("threads", values.threads, 1, 64, DEFAULTS.threads),
    clientsPerProcess: integer(
      "clients-per-process",
      values["clients-per-process"],
      0,
      2 ** 31 - 1,
      DEFAULTS.clientsPerProcess,
    ),
    maxClientsPerThread: integer(
      "max-clients-per-thread",
      values["max-clients-per-thread"],
      1,
      1_000_000,
      DEFAULTS.maxClientsPerThread,
    ),
    maxLineBytes: integer(
      "max-line-bytes",
      values["max-line-bytes"],
      64,
      MAX_LINE_BYTES_LIMIT,
      DEFAULTS.maxLineBytes,
    ),
    grace: number("grace", values.grace, 0, 3600, DEFAULTS.grace),
    joinTimeout: number(
      "join-timeout",
      values["join-timeout"],
      0.01,
      86400,
      DEFAULTS.joinTimeout,
    ),
    rate: number("rate", values.rate, 0, 1_000_000, DEFAULTS.rate),
    burst: integer("burst", values.burst, 1, 1_000_000, DEFAULTS.burst),
    maxSendQueue: integer(
      "max-send-queue",
      values["max-send-queue"],
      4096,
      2 ** 31 - 1,
      DEFAULTS.maxSendQueue,
    ),
    watchdog: number("watchdog", values.watchdog, 0.1, 3600, DEFAULTS.watchdog),
    logLevel,
    runtimeDir: str(values["runtime-dir"]) ?? DEFAULTS.runtimeDir,
    web: values["no-web"] !== true,
    webPort: integer("web-port", values["web-port"], 0, 65535, DEFAULTS.webPort),
    webOrigins: origins(values["web-origin"]),
  };
}

/** `--web-origin` values: repeated, or comma lists; each an http(s) origin. */
function origins(value: string | boolean | string[] | undefined): string[] {
  const list = Array.isArray(value) ? value : typeof value === "string" ? [value] : [];
  return list.flatMap((item) => item.split(",")).map((item) => item.trim()).filter((item) =>
    item !== ""
  ).map((item) => {
    let url: URL | undefined;
    try {
      url = new URL(item);
    } catch {
      // Reported below.
    }
    if (url === undefined || (url.protocol !== "http:" && url.protocol !== "https:")) {
      throw new UsageError(`Invalid --web-origin ${item}: not an http(s) origin`);
    }
    return url.origin;
  });
}

function parseClient(args: string[]): Invocation {
  const values = parse(args, {
    host: { type: "string" },
    port: { type: "string" },
    name: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return { kind: "help", text: HELP_TEXT };
  return {
    kind: "client",
    host: str(values.host) ?? DEFAULTS.host,
    port: integer("port", values.port, 1, 65535, DEFAULTS.port),
    name: str(values.name),
  };
}

type Options = NonNullable<ParseArgsConfig["options"]>;

function parse(
  args: string[],
  options: Options,
): Record<string, string | boolean | string[] | undefined> {
  try {
    const { values } = parseArgs({ args, options, strict: true, allowPositionals: false });
    return values as Record<string, string | boolean | string[] | undefined>;
  } catch (error: unknown) {
    // node:util's messages name the flag ("Unknown option '--prot'"); keep them, drop its
    // advice about "--" which does not apply here.
    const message = error instanceof Error ? error.message : String(error);
    throw new UsageError(message.replace(/\. To specify a positional argument.*$/s, ""), {
      cause: error,
    });
  }
}

function str(value: string | boolean | string[] | undefined): string | undefined {
  return typeof value === "string" ? value : undefined;
}

function integer(
  flag: string,
  value: string | boolean | string[] | undefined,
  min: number,
  max: number,
  fallback: number | undefined,
): number {
  const n = number(flag, value, min, max, fallback);
  if (!Number.isInteger(n)) throw new UsageError(`Invalid --${flag} ${value}: not a whole number`);
  return n;
}

function number(
  flag: string,
  value: string | boolean | string[] | undefined,
  min: number,
  max: number,
  fallback: number | undefined,
): number {
  if (value === undefined || typeof value !== "string") {
    if (fallback === undefined) throw new UsageError(`Missing --${flag}`);
    return fallback;
  }
  const n = /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN;
  if (Number.isNaN(n)) throw new UsageError(`Invalid --${flag} ${value}: not a number`);
  if (n < min || n > max) {
    throw new UsageError(`Invalid --${flag} ${value}: must be between ${min} and ${max}`);
  }
  return n;
}

/**
 * The flags that give a child the same settings as its supervisor.
 *
 * @example
 * ```ts
 * configToArgs({ ...DEFAULTS, port: 4321 }); // ["--host=127.0.0.1", "--port=4321", ...]
 * ```
 */
export function configToArgs(config: Config): string[] {
  // --flag=value, so that a value starting with "-" is not taken for a flag.
  return Object.entries({
    host: config.host,
    port: config.port,
    processes: config.processes,
    threads: config.threads,
    "clients-per-process": config.clientsPerProcess,
    "max-clients-per-thread": config.maxClientsPerThread,
    "max-line-bytes": config.maxLineBytes,
    grace: config.grace,
    "join-timeout": config.joinTimeout,
    rate: config.rate,
    burst: config.burst,
    "max-send-queue": config.maxSendQueue,
    watchdog: config.watchdog,
    "log-level": config.logLevel,
    "runtime-dir": config.runtimeDir,
    "web-port": config.webPort,
  }).map(([flag, value]) => `--${flag}=${value}`).concat(
    config.web ? [] : ["--no-web"],
    config.webOrigins.map((origin) => `--web-origin=${origin}`),
  );
}
