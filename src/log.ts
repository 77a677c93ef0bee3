/**
 * Logging: LogTape records written as logfmt lines to stderr, one line per event.
 *
 * Every realm (the supervisor, each child process, each Web Worker thread) calls
 * {@linkcode setupLogging} once. The sink writes synchronously so that nothing is lost when
 * a process exits right after logging, and stdout stays free for the ready line.
 *
 * @module
 */
import {
  configureSync,
  getLogfmtFormatter,
  getLogger,
  type Logger,
  type LogLevel,
  type LogRecord,
} from "@logtape/logtape";

export type { Logger };

const formatter = getLogfmtFormatter();
const encoder = new TextEncoder();

function stderrSink(record: LogRecord): void {
  try {
    Deno.stderr.writeSync(encoder.encode(formatter(record)));
  } catch {
    // stderr is gone (the terminal closed); there is nowhere left to report to.
  }
}

/**
 * Configures LogTape for this realm.
 *
 * @param context properties added to every record, such as `{ p_id: 1, t_id: 0, pid: 4242 }`.
 */
export function setupLogging(level: LogLevel, context: Record<string, unknown> = {}): void {
  configureSync({
    reset: true,
    sinks: { stderr: stderrSink },
    loggers: [
      { category: ["chatd"], lowestLevel: level, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
  baseContext = context;
}

let baseContext: Record<string, unknown> = {};

/** A logger for one part of chatd, carrying this realm's p_id, t_id and pid. */
export function logger(name: string): Logger {
  return getLogger(["chatd", name]).with(baseContext);
}
