/**
 * Command-line flags: their defaults, their validation and the `--help` text.
 *
 * The supervisor parses the user's flags once; children get the same flags back on their
 * command line (see `child_command.ts`), so every role reads its settings from here.
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import type { LogLevel } from "@logtape/logtape";
import { type LogFormat, parseLogLevel } from "./log.ts";
import { VERSION } from "./version.ts";
import { autoShape } from "./capacity.ts";

export { VERSION };

/** Every setting of a running server. */
export interface Config {
  host: string;
  /** The TCP port; 0 until the supervisor has resolved `--port 0` to a free port. */
  port: number;
  processes: number;
  threads: number;
  /**
   * Clients the whole server serves at once; 0 = `auto`, what the descriptor limit and
   * memory allow (resolved where it is enforced, see `machineMaxClients` in capacity.ts).
   */
  maxClients: number;
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
  /** The supervisor's `/metrics` and `/healthz` port on `--host`; 0 = any free one; -1 = off. */
  metricsPort: number;
  logLevel: LogLevel;
  /** `text` (logfmt) or `json` (JSON lines). */
  logFormat: LogFormat;
  /** Lines of history kept per room and for the lobby; 0 = none. */
  history: number;
  /** Where history is stored (SQLite); empty = in memory only. */
  dataDir: string;
  /** Named rooms one user may be in at once. */
  maxRoomsPerUser: number;
  /** Named rooms the server holds at once; a new one beyond is refused. */
  maxRooms: number;
  /**
   * Where the Unix sockets live: the supervisor makes its own fresh directory inside it (see
   * runtime_dir.ts); empty = inside the temp dir. A child gets the directory made.
   */
  runtimeDir: string;
  /** Whether the web port serves the page and WebSockets (`--no-web` turns it off). */
  web: boolean;
  /** The web port; 0 until the supervisor has resolved `--web-port 0` to a free port. */
  webPort: number;
  /** Origins besides the page's own allowed to open a WebSocket (`--web-origin`). */
  webOrigins: string[];
  /** The TLS certificate chain (PEM file); empty = no TLS. Set together with `tlsKey`. */
  tlsCert: string;
  /** The TLS private key (PEM file); empty = no TLS. */
  tlsKey: string;
  /**
   * A TLS line port beside the plain one; -1 = none, and then with a certificate the line
   * port itself speaks TLS. 0 until the supervisor has resolved `--tls-port 0`.
   */
  tlsPort: number;
  /** The `--config` file (`key = value` lines) SIGHUP re-reads; empty = none. */
  configFile: string;
  /** NATS server URLs of a cluster of nodes (`--cluster`); empty = a single node. */
  cluster: string[];
  /** This node's name in the cluster; empty = hostname and port. */
  nodeName: string;
  /** A NATS credentials file for the cluster; empty = none. */
  clusterCreds: string;
  /** Fault injection for tests (`FAULT` verb): on when the environment has CHATD_FAULTS=1. */
  faults: boolean;
}

/** The `auto` shape of this machine: processes × threads close to its number of cores. */
const AUTO_SHAPE = autoShape(navigator.hardwareConcurrency ?? 1);

/**
 * The defaults, as documented in `--help` and the README. `processes` and `threads` are
 * `auto`, resolved for this machine; `maxClients` 0 is `auto`.
 */
export const DEFAULTS: Readonly<Config> = {
  host: "127.0.0.1",
  port: 4321,
  processes: AUTO_SHAPE.processes,
  threads: AUTO_SHAPE.threads,
  maxClients: 0,
  clientsPerProcess: 0,
  maxClientsPerThread: 1_000_000,
  maxLineBytes: 4096,
  grace: 5,
  joinTimeout: 60,
  rate: 20,
  burst: 100,
  maxSendQueue: 1024 * 1024,
  watchdog: 3,
  metricsPort: -1,
  logLevel: "info",
  logFormat: "text",
  history: 100,
  dataDir: "",
  maxRoomsPerUser: 20,
  maxRooms: 10_000,
  runtimeDir: "",
  web: true,
  webPort: 8080,
  webOrigins: [],
  tlsCert: "",
  tlsKey: "",
  tlsPort: -1,
  configFile: "",
  cluster: [],
  nodeName: "",
  clusterCreds: "",
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
  | {
    kind: "client";
    host: string;
    port: number;
    name: string | undefined;
    /** Set by `--tls`: connect with TLS, trusting `caFile` (PEM) besides the system's CAs. */
    tls?: { caFile: string | undefined };
  }
  | { kind: "help"; text: string }
  | { kind: "version"; text: string };

/** The range of each numeric flag, shown by `--help` and enforced by the parser. */
export const LIMITS = {
  port: [0, 65535],
  processes: [1, 64],
  threads: [1, 64],
  "max-clients": [0, 10_000_000],
  "clients-per-process": [0, 2 ** 31 - 1],
  "max-clients-per-thread": [1, 1_000_000],
  "max-line-bytes": [64, MAX_LINE_BYTES_LIMIT],
  grace: [0, 3600],
  "join-timeout": [0.01, 86400],
  rate: [0, 1_000_000],
  burst: [1, 1_000_000],
  "max-send-queue": [4096, 2 ** 31 - 1],
  watchdog: [0.1, 3600],
  history: [0, 10_000],
  "max-rooms-per-user": [0, 10_000],
  "max-rooms": [0, 1_000_000],
  "metrics-port": [0, 65535],
  "web-port": [0, 65535],
  "tls-port": [0, 65535],
} as const satisfies Record<string, readonly [number, number]>;

function range(flag: keyof typeof LIMITS, fallback: number): string {
  const [min, max] = LIMITS[flag];
  return `(${min}-${max}, default ${fallback})`;
}

const D = DEFAULTS;

/** The `--help` text: every flag with its range and default, in 80 columns. */
export const HELP_TEXT = `chatd ${VERSION}: a multi-process chat server you can talk to with nc

Usage:
  chatd [options]            start the server
  chatd client [options]     an interactive terminal client (chatd client -h)
  chatd --help | --version

Options:
  --host HOST                address to listen on (default ${D.host})
  --port PORT                TCP port, 0 = a free one ${range("port", D.port)}
  --processes N|auto         worker processes (1-64, default auto: about one
                             per core, see the README)
  --threads T|auto           threads per process (1-64, default auto)
  --max-clients N|auto       clients the whole server serves at once; auto or 0
                             = what the descriptor limit and memory allow
                             (0-10000000, default auto)
  --clients-per-process N    recycle a process after N clients, 0 = never
                             ${range("clients-per-process", D.clientsPerProcess)}
  --max-clients-per-thread N a further cap on the clients of one thread
                             ${range("max-clients-per-thread", D.maxClientsPerThread)}
  --max-line-bytes N         longest line a client may send, in bytes
                             ${range("max-line-bytes", D.maxLineBytes)}
  --grace SECONDS            shutdown grace period ${range("grace", D.grace)}
  --join-timeout SECONDS     close connections that have not joined by then
                             ${range("join-timeout", D.joinTimeout)}
  --rate LINES               lines per second a client may send, 0 = no limit
                             ${range("rate", D.rate)}
  --burst LINES              lines a client may send at once before --rate
                             applies ${range("burst", D.burst)}
  --max-send-queue BYTES     bytes queued for a client before it is dropped as
                             a slow consumer ${range("max-send-queue", D.maxSendQueue)}
  --watchdog SECONDS         kill a child that misses heartbeats this long
                             ${range("watchdog", D.watchdog)}
  --history N                lines of history kept per room and the lobby,
                             0 = none ${range("history", D.history)}
  --data-dir DIR             keep history in DIR/history.db (SQLite)
                             (default: in memory only)
  --max-rooms-per-user N     named rooms one user may be in at once
                             ${range("max-rooms-per-user", D.maxRoomsPerUser)}
  --max-rooms N              named rooms the server holds at once
                             ${range("max-rooms", D.maxRooms)}
  --metrics-port PORT        serve /metrics and /healthz over HTTP on --host,
                             0 = a free one (0-65535, default off)
  --log-level LEVEL          trace, debug, info, warn (= warning), error or
                             fatal (default ${D.logLevel})
  --log-format FORMAT        text (logfmt) or json (JSON lines) (default ${D.logFormat})
  --runtime-dir DIR          make the private socket directory inside DIR,
                             which must be yours with mode 0700 (default: in
                             the temp dir)
  --web-port PORT            port of the web page and its WebSocket, 0 = a free
                             one ${range("web-port", D.webPort)}
  --no-web                   do not serve the web port
  --web-origin ORIGIN        also accept WebSockets from this origin (repeat
                             the flag, or a comma list)
  --tls-cert FILE            TLS certificate chain (PEM): the line port speaks
                             TLS, the web port https and wss
  --tls-key FILE             TLS private key (PEM), with --tls-cert
  --tls-port PORT            keep the line port plain and add a TLS line port,
                             0 = a free one (0-65535, default none)
  --cluster URLS             join a cluster of nodes through NATS JetStream,
                             comma-separated nats://HOST:PORT (default: none)
  --node-name NAME           this node's name in the cluster, A-Z a-z 0-9 _ -
                             (default: hostname-port)
  --cluster-creds FILE       NATS credentials file (default: none)
  --config FILE              read options from FILE, "key = value" lines; the
                             command line wins; SIGHUP re-reads it (default:
                             none)
  -h, --help                 show this help
  -V, --version              show the version
`;

/** The `chatd client --help` text. */
export const CLIENT_HELP_TEXT = `chatd client: an interactive terminal client for a chatd server

Usage:
  chatd client [--host HOST] [--port PORT] [--name NAME] [--tls [--ca FILE]]

Options:
  --host HOST                server address (default ${D.host})
  --port PORT                server port (1-65535, default ${D.port})
  --name NAME                join as NAME (default: ask for a name)
  --tls                      connect with TLS (a server started with --tls-cert)
  --ca FILE                  also trust this CA certificate (PEM), with --tls
  -h, --help                 show this help
`;

const SERVER_OPTIONS = {
  host: { type: "string" },
  port: { type: "string" },
  processes: { type: "string" },
  threads: { type: "string" },
  "max-clients": { type: "string" },
  "clients-per-process": { type: "string" },
  "max-clients-per-thread": { type: "string" },
  "max-line-bytes": { type: "string" },
  grace: { type: "string" },
  "join-timeout": { type: "string" },
  rate: { type: "string" },
  burst: { type: "string" },
  "max-send-queue": { type: "string" },
  watchdog: { type: "string" },
  history: { type: "string" },
  "data-dir": { type: "string" },
  "max-rooms-per-user": { type: "string" },
  "max-rooms": { type: "string" },
  "metrics-port": { type: "string" },
  "log-level": { type: "string" },
  "log-format": { type: "string" },
  "runtime-dir": { type: "string" },
  "web-port": { type: "string" },
  "no-web": { type: "boolean" },
  "web-origin": { type: "string", multiple: true },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  "tls-port": { type: "string" },
  cluster: { type: "string" },
  "node-name": { type: "string" },
  "cluster-creds": { type: "string" },
  config: { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
  // Hidden: set by the supervisor on the command line of its children.
  "p-id": { type: "string" },
  instance: { type: "string" },
} as const;

/** Reads a `--config` file; injectable for tests. */
export type ReadFile = (path: string) => string;

/** What {@linkcode parseInvocation} needs besides the arguments. */
export interface InvocationEnv {
  /** CHATD_FAULTS=1. */
  faults?: boolean;
  /** Reads the `--config` file. Default `Deno.readTextFileSync`. */
  readFile?: ReadFile;
}

/**
 * Reads the command line, and the `--config` file it names.
 *
 * @throws {UsageError} on an unknown flag, a missing value, a value out of range, or a config
 * file that cannot be read or holds such a setting.
 * @example
 * ```ts
 * parseInvocation(["--port", "0", "--processes", "3"]); // { kind: "serve", config: {...} }
 * ```
 * @param env what the environment says: `faults` is CHATD_FAULTS=1.
 */
export function parseInvocation(args: string[], env: InvocationEnv = {}): Invocation {
  const [first, ...rest] = args;
  if (first === "client") return parseClient(rest);
  const isChild = first === "__child";
  const own = isChild ? rest : args;
  let values = parse(own, SERVER_OPTIONS);
  if (values.help) return { kind: "help", text: HELP_TEXT };
  if (values.version) return { kind: "version", text: `chatd ${VERSION}` };
  const configFile = str(values.config) ?? "";
  if (configFile !== "") {
    if (isChild) throw new UsageError("a child takes no --config");
    // The file first, so that a flag on the command line wins.
    values = parse([...configFileArgs(configFile, env.readFile), ...own], SERVER_OPTIONS);
  }
  const config = { ...parseConfig(values), configFile, faults: env.faults ?? false };
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

/** Settings a `--config` file may not hold. */
const NOT_IN_FILE = new Set(["config", "help", "version", "p-id", "instance"]);

/**
 * The settings of a `--config` file as `--key=value` flags. The file holds `key = value` lines,
 * keys being the long flag names without `--`; blank lines and lines starting with `#` are
 * skipped; a value may be wrapped in double quotes.
 *
 * @throws {UsageError} when the file cannot be read or a line is not a known setting.
 * @example
 * ```ts
 * configFileArgs("/etc/chatd.conf", () => "port = 4000\n# comment\nlog-level = debug\n");
 * // ["--port=4000", "--log-level=debug"]
 * ```
 */
export function configFileArgs(path: string, readFile: ReadFile = Deno.readTextFileSync): string[] {
  let text: string;
  try {
    text = readFile(path);
  } catch (error: unknown) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new UsageError(`Cannot read --config ${path}: ${reason}`, { cause: error });
  }
  const args: string[] = [];
  for (const [index, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const where = `${path}:${index + 1}`;
    const match = /^([a-z][a-z-]*)\s*=\s*(.*)$/.exec(line);
    if (!match) throw new UsageError(`${where}: expected "key = value", got: ${line.slice(0, 60)}`);
    const [, key, rawValue] = match as unknown as [string, string, string];
    if (!(key in SERVER_OPTIONS) || NOT_IN_FILE.has(key)) {
      throw new UsageError(`${where}: unknown setting '${key}'`);
    }
    const value = /^".*"$/.test(rawValue) ? rawValue.slice(1, -1) : rawValue;
    args.push(`--${key}=${value}`);
  }
  return args;
}

function parseConfig(
  values: Record<string, string | boolean | string[] | undefined>,
): Omit<Config, "faults" | "configFile"> {
  const levelName = str(values["log-level"]) ?? DEFAULTS.logLevel;
  const logLevel = parseLogLevel(levelName);
  if (logLevel === undefined) {
    throw new UsageError(
      `Invalid --log-level ${levelName}: use trace, debug, info, warn, warning, error or fatal`,
    );
  }
  const logFormat = str(values["log-format"]) ?? DEFAULTS.logFormat;
  if (logFormat !== "text" && logFormat !== "json") {
    throw new UsageError(`Invalid --log-format ${logFormat}: use text or json`);
  }
  const host = str(values.host) ?? DEFAULTS.host;
  if (host === "") throw new UsageError("Invalid --host: empty");
  const whole = (flag: keyof typeof LIMITS, fallback: number) =>
    integer(flag, values[flag], LIMITS[flag][0], LIMITS[flag][1], fallback);
  const decimal = (flag: keyof typeof LIMITS, fallback: number) =>
    number(flag, values[flag], LIMITS[flag][0], LIMITS[flag][1], fallback);
  const auto = (flag: "processes" | "threads") =>
    values[flag] === "auto" ? AUTO_SHAPE[flag] : whole(flag, AUTO_SHAPE[flag]);
  const shape = { processes: auto("processes"), threads: auto("threads") };
  return {
    host,
    port: whole("port", DEFAULTS.port),
    ...shape,
    maxClients: values["max-clients"] === "auto" ? 0 : whole("max-clients", DEFAULTS.maxClients),
    clientsPerProcess: whole("clients-per-process", DEFAULTS.clientsPerProcess),
    maxClientsPerThread: whole("max-clients-per-thread", DEFAULTS.maxClientsPerThread),
    maxLineBytes: whole("max-line-bytes", DEFAULTS.maxLineBytes),
    grace: decimal("grace", DEFAULTS.grace),
    joinTimeout: decimal("join-timeout", DEFAULTS.joinTimeout),
    rate: decimal("rate", DEFAULTS.rate),
    burst: whole("burst", DEFAULTS.burst),
    maxSendQueue: whole("max-send-queue", DEFAULTS.maxSendQueue),
    watchdog: decimal("watchdog", DEFAULTS.watchdog),
    history: whole("history", DEFAULTS.history),
    dataDir: str(values["data-dir"]) ?? DEFAULTS.dataDir,
    maxRoomsPerUser: whole("max-rooms-per-user", DEFAULTS.maxRoomsPerUser),
    maxRooms: whole("max-rooms", DEFAULTS.maxRooms),
    metricsPort: values["metrics-port"] === undefined
      ? DEFAULTS.metricsPort
      : whole("metrics-port", DEFAULTS.metricsPort),
    logLevel,
    logFormat,
    runtimeDir: str(values["runtime-dir"]) ?? DEFAULTS.runtimeDir,
    web: values["no-web"] !== true,
    webPort: whole("web-port", DEFAULTS.webPort),
    webOrigins: origins(values["web-origin"]),
    ...tls(values, whole),
    ...parseCluster(values),
  };
}

/** The TLS flags: a certificate needs its key, and `--tls-port` needs both. */
function tls(
  values: Record<string, string | boolean | string[] | undefined>,
  whole: (flag: "tls-port", fallback: number) => number,
): Pick<Config, "tlsCert" | "tlsKey" | "tlsPort"> {
  const tlsCert = str(values["tls-cert"]) ?? "";
  const tlsKey = str(values["tls-key"]) ?? "";
  if ((tlsCert === "") !== (tlsKey === "")) {
    throw new UsageError("--tls-cert and --tls-key go together");
  }
  const tlsPort = values["tls-port"] === undefined ? -1 : whole("tls-port", -1);
  if (tlsPort !== -1 && tlsCert === "") {
    throw new UsageError("--tls-port needs --tls-cert and --tls-key");
  }
  return { tlsCert, tlsKey, tlsPort };
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

/**
 * A `--cluster` URL fit to show: its password, or its token, replaced by `***`.
 *
 * @example
 * ```ts
 * redactClusterUrl("nats://chatd:secret@nats1:4222"); // "nats://chatd:***@nats1:4222"
 * redactClusterUrl("tls://s3cr3t@nats1:4222"); // "tls://***@nats1:4222"
 * ```
 */
export function redactClusterUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/)([^@/]*)@/, (_, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(":");
    return `${scheme}${colon === -1 ? "***" : `${userinfo.slice(0, colon)}:***`}@`;
  });
}

/** The cluster flags: NATS URLs and this node's name. */
function parseCluster(
  values: Record<string, string | boolean | string[] | undefined>,
): Pick<Config, "cluster" | "nodeName" | "clusterCreds"> {
  const urls = str(values.cluster);
  const cluster = urls === undefined || urls === "" ? [] : urls.split(",");
  for (const url of cluster) {
    if (!/^(nats|tls):\/\/[^\s,]+$/.test(url)) {
      throw new UsageError(`Invalid --cluster ${url}: use nats://HOST:PORT or tls://HOST:PORT`);
    }
  }
  const nodeName = str(values["node-name"]) ?? DEFAULTS.nodeName;
  if (nodeName !== "" && !/^[A-Za-z0-9_-]{1,64}$/.test(nodeName)) {
    throw new UsageError(`Invalid --node-name ${nodeName}: 1 to 64 of A-Z a-z 0-9 _ -`);
  }
  return { cluster, nodeName, clusterCreds: str(values["cluster-creds"]) ?? "" };
}

function parseClient(args: string[]): Invocation {
  const values = parse(args, {
    host: { type: "string" },
    port: { type: "string" },
    name: { type: "string" },
    tls: { type: "boolean" },
    ca: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return { kind: "help", text: CLIENT_HELP_TEXT };
  const ca = str(values.ca);
  if (ca !== undefined && values.tls !== true) throw new UsageError("--ca needs --tls");
  return {
    kind: "client",
    host: str(values.host) ?? DEFAULTS.host,
    port: integer("port", values.port, 1, 65535, DEFAULTS.port),
    name: str(values.name),
    ...(values.tls === true ? { tls: { caFile: ca } } : {}),
  };
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/**
 * `--flag -1` as `--flag=-1` for a flag that takes a value: node:util would call a value that
 * starts with a dash "ambiguous"; here it reaches the flag's own check, which says what is
 * wrong with it in plain words.
 */
function joinDashValues(args: string[], options: Options): string[] {
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const next = args[i + 1];
    const name = arg.startsWith("--") ? arg.slice(2) : undefined;
    if (
      name !== undefined && options[name]?.type === "string" && next !== undefined &&
      /^-[\d.]/.test(next)
    ) {
      joined.push(`${arg}=${next}`);
      i++;
    } else {
      joined.push(arg);
    }
  }
  return joined;
}

function parse(
  args: string[],
  options: Options,
): Record<string, string | boolean | string[] | undefined> {
  try {
    const { values } = parseArgs({
      args: joinDashValues(args, options),
      options,
      strict: true,
      allowPositionals: false,
    });
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

/** Plain decimal: digits, no leading zero (but `0` itself), at most one decimal point. */
const PLAIN_NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?$/;

function integer(
  flag: string,
  value: string | boolean | string[] | undefined,
  min: number,
  max: number,
  fallback: number | undefined,
): number {
  const n = number(flag, value, min, max, fallback);
  // "1.0" is a number but not written as a whole one: refuse it rather than read 1.
  if (!Number.isInteger(n) || (typeof value === "string" && value.includes("."))) {
    throw new UsageError(`Invalid --${flag} ${value}: not a whole number`);
  }
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
  if (/^-?0\d/.test(value)) {
    throw new UsageError(`Invalid --${flag} ${value}: not a number (no leading zeros)`);
  }
  if (!PLAIN_NUMBER.test(value)) throw new UsageError(`Invalid --${flag} ${value}: not a number`);
  const n = Number(value);
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
    "max-clients": config.maxClients,
    "clients-per-process": config.clientsPerProcess,
    "max-clients-per-thread": config.maxClientsPerThread,
    "max-line-bytes": config.maxLineBytes,
    grace: config.grace,
    "join-timeout": config.joinTimeout,
    rate: config.rate,
    burst: config.burst,
    "max-send-queue": config.maxSendQueue,
    watchdog: config.watchdog,
    history: config.history,
    "data-dir": config.dataDir,
    "max-rooms-per-user": config.maxRoomsPerUser,
    "max-rooms": config.maxRooms,
    // Off (-1) is the absence of the flag.
    ...(config.metricsPort >= 0 ? { "metrics-port": config.metricsPort } : {}),
    "log-level": config.logLevel,
    "log-format": config.logFormat,
    "runtime-dir": config.runtimeDir,
    "web-port": config.webPort,
    // Children only need to know that there is a cluster: no password in their argv.
    ...(config.cluster.length > 0
      ? { cluster: config.cluster.map(redactClusterUrl).join(",") }
      : {}),
  }).map(([flag, value]) => `--${flag}=${value}`).concat(
    config.web ? [] : ["--no-web"],
    config.tlsCert === "" ? [] : [`--tls-cert=${config.tlsCert}`, `--tls-key=${config.tlsKey}`],
    config.tlsPort === -1 ? [] : [`--tls-port=${config.tlsPort}`],
    config.webOrigins.map((origin) => `--web-origin=${origin}`),
  );
}
