/**
 * Control messages: supervisor ↔ child over the child's stdin/stdout pipes (one JSON object
 * a line), and child process ↔ its threads over `postMessage`.
 *
 * The pipes double as a lifeline: when the supervisor dies, even by SIGKILL, the kernel
 * closes its end of the child's stdin and the child sees end-of-file.
 *
 * @module
 */
import type { Config } from "./config.ts";
import { type LineSink, LineSplitter } from "./_line_reader.ts";
import { type LogLevel, parseLogLevel } from "./log.ts";

/** Supervisor → child. */
export type ToChild =
  /** Stop listening, say `BYE shutting down` to every client, exit. */
  | { kind: "shutdown" }
  /** The replacement is listening: stop accepting, serve the open clients to the end, exit. */
  | { kind: "drain" }
  /** Heartbeat: answer with `pong` (see `--watchdog`). */
  | { kind: "ping" }
  /** SIGHUP re-read `--config`: use this log level from now on, in every thread too. */
  | { kind: "reload"; logLevel: LogLevel }
  /**
   * SIGHUP re-read the TLS certificate and key (PEM text), and they work: every thread listens
   * with them and drains its listeners with the old ones.
   */
  | { kind: "tls"; cert: string; key: string };

/** Child → supervisor. */
export type FromChild =
  /** Every thread accepts connections. */
  | { kind: "listening" }
  /** The child reached `--clients-per-process`: start its replacement now. */
  | { kind: "retiring" }
  /** A thread died; its endpoint and the names on it are gone. */
  | { kind: "thread_exit"; ep: string }
  /**
   * Heartbeat answer, with what `/metrics` shows of the child: its RSS, how many of its
   * threads serve, and its threads' metrics rows back to back (counters.ts).
   */
  | { kind: "pong"; rss?: number; serving?: number; metrics?: number[] };

/** Child process → thread. */
export type ToThread =
  | {
    kind: "init";
    config: Config;
    pId: number;
    tId: number;
    ep: string;
    counters: SharedArrayBuffer;
    /** The process's {@linkcode ThreadMetrics} rows. */
    metrics: SharedArrayBuffer;
  }
  | { kind: "shutdown" }
  | { kind: "drain" }
  | { kind: "ping" }
  /** New TLS listeners with this certificate; the old ones drain. */
  | { kind: "tls"; cert: string; key: string };

/** Thread → child process. */
export type FromThread =
  | { kind: "listening" }
  /** This thread's accept made the process reach `--clients-per-process`. */
  | { kind: "quota" }
  /** The thread has closed its listener and has no clients left; it may be terminated. */
  | { kind: "done" }
  | { kind: "pong" }
  /** Fault injection (CHATD_FAULTS=1): make the process exit, or hang its event loop. */
  | { kind: "fault"; what: "exit" | "hang" };

/** A control message that failed validation. */
export class ControlError extends Error {
  override name = "ControlError";
}

function kindOf(value: unknown): unknown {
  return typeof value === "object" && value !== null
    ? (value as { kind?: unknown }).kind
    : undefined;
}

/**
 * Parses one line of the supervisor → child pipe.
 *
 * @throws {ControlError} when the line is not a {@linkcode ToChild} message.
 */
export function parseToChild(line: string): ToChild {
  const value = parseJson(line);
  const kind = kindOf(value);
  if (kind === "shutdown" || kind === "drain" || kind === "ping") return { kind };
  if (kind === "reload") {
    const level = (value as { logLevel?: unknown }).logLevel;
    const logLevel = typeof level === "string" ? parseLogLevel(level) : undefined;
    if (logLevel !== undefined) return { kind, logLevel };
  }
  if (kind === "tls") {
    const { cert, key } = value as { cert?: unknown; key?: unknown };
    if (typeof cert === "string" && typeof key === "string") return { kind, cert, key };
  }
  throw new ControlError(`Unknown control message: ${line.slice(0, 80)}`);
}

/**
 * Parses one line of the child → supervisor pipe.
 *
 * @throws {ControlError} when the line is not a {@linkcode FromChild} message.
 */
export function parseFromChild(line: string): FromChild {
  const value = parseJson(line);
  const kind = kindOf(value);
  if (kind === "listening" || kind === "retiring") return { kind };
  if (kind === "pong") return parsePong(value as Record<string, unknown>, line);
  if (kind === "thread_exit") {
    const ep = (value as { ep?: unknown }).ep;
    if (typeof ep === "string" && ep.length < 64) return { kind, ep };
  }
  throw new ControlError(`Unknown control message: ${line.slice(0, 80)}`);
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value) && value >= 0;
}

/** The most numbers a pong may carry: 64 threads' rows. */
const MAX_PONG_METRICS = 64 * 64;

function parsePong(value: Record<string, unknown>, line: string): FromChild {
  const { rss, serving, metrics } = value;
  if (rss === undefined && serving === undefined && metrics === undefined) return { kind: "pong" };
  if (
    isCount(rss) && isCount(serving) && Array.isArray(metrics) &&
    metrics.length <= MAX_PONG_METRICS && metrics.every(isCount)
  ) {
    return { kind: "pong", rss, serving, metrics: metrics as number[] };
  }
  throw new ControlError(`Bad pong: ${line.slice(0, 80)}`);
}

/**
 * Checks a message a thread posted to its process.
 *
 * @throws {ControlError} when it is not a {@linkcode FromThread} message.
 */
export function parseFromThread(value: unknown): FromThread {
  const kind = kindOf(value);
  if (kind === "listening" || kind === "quota" || kind === "done" || kind === "pong") {
    return { kind };
  }
  if (kind === "fault") {
    const what = (value as { what?: unknown }).what;
    if (what === "exit" || what === "hang") return { kind, what };
  }
  throw new ControlError(`Unknown thread message: ${String(kind)}`);
}

function parseJson(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch (error: unknown) {
    throw new ControlError(`Not JSON: ${line.slice(0, 80)}`, { cause: error });
  }
}

const encoder = new TextEncoder();

/** One message as a line of the pipe. */
export function encodeLine(message: ToChild | FromChild): Uint8Array {
  return encoder.encode(JSON.stringify(message) + "\n");
}

/**
 * Yields the lines of a pipe until it closes. Lines longer than `maxBytes` are dropped.
 */
export async function* readLines(
  stream: ReadableStream<Uint8Array>,
  maxBytes = 65536,
): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  const splitter = new LineSplitter(maxBytes);
  let lines: string[] = [];
  const sink: LineSink = {
    line: (bytes) => lines.push(decoder.decode(bytes)),
    tooLong: () => {},
  };
  for await (const chunk of stream) {
    splitter.push(chunk, sink);
    const complete = lines;
    lines = [];
    yield* complete;
  }
}
