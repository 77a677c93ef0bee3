/**
 * Logging: LogTape records written to stderr, one line per event, as logfmt (`--log-format
 * text`, the default) or JSON lines (`--log-format json`, for journald, Loki and the like).
 *
 * Every realm (the supervisor, each child process, each Web Worker thread) calls
 * {@linkcode setupLogging} once. The sink writes synchronously so that nothing is lost when
 * a process exits right after logging, and stdout stays free for the ready line.
 *
 * The log level can change at run time (SIGHUP with `--config`): {@linkcode setLogLevel} in a
 * process applies it there and, through a `BroadcastChannel`, in every thread of that process.
 *
 * @module
 */
import {
  configureSync,
  getJsonLinesFormatter,
  getLogfmtFormatter,
  getLogger,
  isLogLevel,
  type Logger,
  type LogLevel,
  type LogRecord,
  type TextFormatter,
} from "@logtape/logtape";

export type { Logger, LogLevel };

/** How log lines are written. */
export type LogFormat = "text" | "json";

/** The names `--log-level` accepts, `warn` included (an alias of `warning`). */
export const LOG_LEVEL_NAMES = ["trace", "debug", "info", "warn", "warning", "error", "fatal"];

/**
 * The log level a name stands for, or undefined when there is none.
 *
 * @example
 * ```ts
 * parseLogLevel("warn"); // "warning"
 * ```
 */
export function parseLogLevel(name: string): LogLevel | undefined {
  if (name === "warn") return "warning";
  return isLogLevel(name) ? name : undefined;
}

/** The `--log-format` a command line asks for (`--log-format=json` or `--log-format json`). */
export function logFormatFromArgs(args: readonly string[]): LogFormat | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const value = arg.startsWith("--log-format=")
      ? arg.slice("--log-format=".length)
      : arg === "--log-format"
      ? args[i + 1]
      : undefined;
    if (value === "text" || value === "json") return value;
  }
  return undefined;
}

const FORMATTERS: Record<LogFormat, TextFormatter> = {
  text: getLogfmtFormatter(),
  json: getJsonLinesFormatter({ properties: "flatten" }),
};
const encoder = new TextEncoder();
/** The channel on which a process tells its threads the new log level. */
const CHANNEL = "chatd-log-level";

let baseContext: Record<string, unknown> = {};
let currentFormat: LogFormat = "text";
let currentLevel: LogLevel = "info";
let channel: BroadcastChannel | undefined;

function configure(level: LogLevel, format: LogFormat): void {
  const formatter = FORMATTERS[format];
  const stderrSink = (record: LogRecord): void => {
    try {
      Deno.stderr.writeSync(encoder.encode(formatter(record)));
    } catch {
      // stderr is gone (the terminal closed); there is nowhere left to report to.
    }
  };
  configureSync({
    reset: true,
    sinks: { stderr: stderrSink },
    loggers: [
      { category: ["chatd"], lowestLevel: level, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
  currentLevel = level;
  currentFormat = format;
}

/** Options of {@linkcode setupLogging}. */
export interface LoggingOptions {
  /**
   * The line format. Default: what this process's command line says (a thread shares its
   * process's `Deno.args`, where the supervisor wrote `--log-format=...`), else `text`.
   */
  format?: LogFormat;
}

/**
 * Configures LogTape for this realm and follows log level changes its process broadcasts.
 * Disposing it stops following (tests); processes and threads simply exit.
 *
 * @param context properties added to every record, such as `{ p_id: 1, t_id: 0, pid: 4242 }`.
 */
export function setupLogging(
  level: LogLevel,
  context: Record<string, unknown> = {},
  options: LoggingOptions = {},
): Disposable {
  configure(level, options.format ?? logFormatFromArgs(Deno.args) ?? "text");
  baseContext = context;
  channel?.close();
  const own = new BroadcastChannel(CHANNEL);
  own.onmessage = (event: MessageEvent<unknown>) => {
    const level = (event.data as { level?: unknown } | null)?.level;
    if (typeof level === "string" && isLogLevel(level)) configure(level, currentFormat);
  };
  channel = own;
  return {
    [Symbol.dispose]: () => {
      own.close();
      if (channel === own) channel = undefined;
    },
  };
}

/** Changes the log level of this realm and of every thread of this process. */
export function setLogLevel(level: LogLevel): void {
  configure(level, currentFormat);
  channel?.postMessage({ level });
}

/** The log level in force in this realm. */
export function logLevel(): LogLevel {
  return currentLevel;
}

/** A logger for one part of chatd, carrying this realm's p_id, t_id and pid. */
export function logger(name: string): Logger {
  return getLogger(["chatd", name]).with(baseContext);
}

/** Options of {@linkcode RateLimitedWarnings}. */
export interface RateLimitedWarningsOptions {
  /** At most one line per kind this often, in ms. Default 10 000. */
  intervalMs?: number;
  /** The clock, in ms. Default `performance.now`. */
  now?: () => number;
  /** Runs `callback` after `ms`. Default: an unref'd `setTimeout` (it keeps no process alive). */
  setTimer?: (callback: () => void, ms: number) => unknown;
  /** Cancels what `setTimer` returned. Default `clearTimeout`. */
  clearTimer?: (id: unknown) => void;
}

interface Kind {
  loggedAt: number;
  suppressed: number;
  timer: unknown;
}

function unrefTimeout(callback: () => void, ms: number): unknown {
  const id = setTimeout(callback, ms);
  Deno.unrefTimer(id);
  return id;
}

/**
 * Warnings that a flood could repeat thousands of times (malformed control messages, junk
 * datagrams): at most one line per kind (its message) per interval. The first is logged at
 * once; those that follow within the interval are only counted, and when the interval ends one
 * line says how many there were (`suppressed=N interval_s=10`). A flood that goes on gives one
 * such line per interval.
 *
 * @example
 * ```ts
 * const warnings = new RateLimitedWarnings(logger("process"));
 * warnings.warn("bad control message dropped", { reason });
 * ```
 */
export class RateLimitedWarnings implements Disposable {
  readonly #log: Logger;
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #setTimer: (callback: () => void, ms: number) => unknown;
  readonly #clearTimer: (id: unknown) => void;
  readonly #kinds = new Map<string, Kind>();

  constructor(log: Logger, options: RateLimitedWarningsOptions = {}) {
    this.#log = log;
    this.#intervalMs = options.intervalMs ?? 10_000;
    this.#now = options.now ?? (() => performance.now());
    this.#setTimer = options.setTimer ?? unrefTimeout;
    this.#clearTimer = options.clearTimer ??
      ((id) => clearTimeout(id as ReturnType<typeof setTimeout>));
  }

  /** Logs `message` at warning level, or counts it when one of its kind was just logged. */
  warn(message: string, properties: Record<string, unknown> = {}): void {
    const now = this.#now();
    const kind = this.#kinds.get(message);
    if (kind === undefined || (kind.suppressed === 0 && now - kind.loggedAt >= this.#intervalMs)) {
      this.#kinds.set(message, { loggedAt: now, suppressed: 0, timer: undefined });
      this.#log.warning(message, properties);
      return;
    }
    kind.suppressed++;
    kind.timer ??= this.#setTimer(
      () => this.#summarize(message),
      Math.max(0, kind.loggedAt + this.#intervalMs - now),
    );
  }

  #summarize(message: string): void {
    const kind = this.#kinds.get(message);
    if (kind === undefined) return;
    kind.timer = undefined;
    this.#log.warning(message, {
      suppressed: kind.suppressed,
      interval_s: this.#intervalMs / 1000,
    });
    kind.loggedAt = this.#now();
    kind.suppressed = 0;
  }

  /** Cancels the pending summaries (their counts are not logged). */
  [Symbol.dispose](): void {
    for (const kind of this.#kinds.values()) {
      if (kind.timer !== undefined) this.#clearTimer(kind.timer);
    }
    this.#kinds.clear();
  }
}
