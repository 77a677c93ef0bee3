/**
 * The suite's output: the table for the terminal and the JSON document for bench/results/.
 *
 * @module
 */
import type { MachineInfo } from "./_proc.ts";
import type { RunResult } from "./_run.ts";

/** What bench/results/<date>-<commit>.json holds. */
export interface SuiteReport {
  date: string;
  commit: string;
  /** True when src/ or main.ts had uncommitted changes: the figures are of the working tree. */
  dirty: boolean;
  command: string;
  quick: boolean;
  machine: MachineInfo;
  loadgens: number;
  durationMs: number;
  results: RunResult[];
  failures: RunFailure[];
}

/** A run that did not finish. */
export interface RunFailure {
  scenario: string;
  config: string;
  error: string;
}

const COLUMNS: [string, number][] = [
  ["scenario", 18],
  ["p×t", 4],
  ["msgs/s", 8],
  ["deliv/s", 9],
  ["p50 µs", 7],
  ["p99 µs", 7],
  ["p999 µs", 8],
  ["max µs", 8],
  ["lost", 5],
  ["reord", 5],
  ["dup", 4],
  ["err", 4],
  ["srv cores", 9],
  ["srv µs/dlv", 10],
  ["lg cores", 8],
  ["lg µs/dlv", 9],
  ["other", 5],
];

/** The results as a fixed-width table, with a line of notes for what does not fit. */
export function formatTable(results: readonly RunResult[]): string {
  const rows = [COLUMNS.map(([title]) => title), ...results.map(row)];
  const lines = rows.map((cells) =>
    cells.map((cell, i) => {
      const width = COLUMNS[i]![1];
      return i === 0 ? cell.padEnd(width) : cell.padStart(width);
    }).join(" ")
  );
  const notes = results.flatMap(notesOf);
  return [...lines, "", ...LEGEND, ...(notes.length > 0 ? ["", ...notes] : [])].join("\n");
}

const LEGEND = [
  "msgs/s: messages sent in the measured phase; deliv/s: lines received (a room message counts " +
  "once per receiver);",
  "latency: send (rate: scheduled send) to receipt; lost/reord/dup: over the whole run, per " +
  "sender; err: ERR lines + foreign lines + connections the server closed;",
  "srv/lg cores: CPU of the server processes / loadgens over the measured phase; µs/dlv: CPU " +
  "per delivery; other: cores used meanwhile by other processes and network softirqs.",
];

function row(result: RunResult): string[] {
  const latency = result.latencyUs;
  return [
    result.scenario,
    result.config,
    int(result.messagesPerSec),
    int(result.deliveriesPerSec),
    int(latency?.p50),
    int(latency?.p99),
    int(latency?.p999),
    int(latency?.max),
    int(result.lost),
    int(result.reordered),
    int(result.duplicates),
    int(result.errors + result.unexpected + result.closed),
    fixed(result.serverCpu.cores, 2),
    fixed(result.serverCpu.usPerDelivery, 1),
    fixed(result.loadgenCpu.cores, 2),
    fixed(result.loadgenCpu.usPerDelivery, 1),
    fixed(result.otherCores, 2),
  ];
}

function notesOf(result: RunResult): string[] {
  const notes: string[] = [];
  const name = `${result.scenario} ${result.config}`;
  if (result.kind === "conns" && result.rss) {
    const { beforeKiB, afterStormKiB, afterKiB, idleAfterMs, perConnectionKiB } = result.rss;
    notes.push(
      `${name}: ${result.joins} clients joined at ${int(result.joinsPerSec)}/s ` +
        `(msgs/s = joins/s, deliv/s = JOINED notices/s, ${
          fixed((result.noticesMs ?? NaN) / 1000, 1)
        } s ` +
        `to the last notice); server RSS ${fixed(beforeKiB / 1024, 1)} → ` +
        `${fixed(afterStormKiB / 1024, 1)} MiB just after the storm → ` +
        `${fixed(afterKiB / 1024, 1)} MiB at its lowest, ${
          fixed(idleAfterMs / 1000, 1)
        } s later, = ` +
        `${fixed(perConnectionKiB, 1)} KiB per idle joined ` +
        `connection; server CPU ${int(result.serverCpu.usPerJoin)} µs per join`,
    );
    if (result.lost) {
      notes.push(
        `${name}: ${result.lost} of ${result.expected} JOINED notices never came (lost): ` +
          `for some pairs of clients joining at once, neither heard of the other`,
      );
    }
  }
  if (result.sendLagUs) {
    const lag = result.sendLagUs;
    notes.push(
      `${name}: open loop, latency from the scheduled send time; sends left ` +
        `p50 ${int(lag.p50)} µs, p99 ${int(lag.p99)} µs, max ${int(lag.max)} µs late ` +
        `(${result.lateSends ?? 0} more than 10 ms)`,
    );
  }
  if (result.errors + result.unexpected + result.closed > 0) {
    notes.push(
      `${name}: ${result.errors} ERR lines, ${result.unexpected} unexpected lines, ` +
        `${result.closed} connections closed by the server` +
        (result.errorSamples.length > 0 ? `; e.g. ${result.errorSamples[0]}` : ""),
    );
  }
  if (result.serverLog && result.serverLog.lines > 0) {
    notes.push(
      `${name}: the server logged ${result.serverLog.lines} warnings or errors, first: ` +
        result.serverLog.samples[0],
    );
  }
  if (result.otherCores > 0.25) {
    notes.push(
      `${name}: other processes used ${fixed(result.otherCores, 2)} cores during the ` +
        `measured phase: these figures are disturbed`,
    );
  }
  return notes;
}

function int(value: number | undefined): string {
  return value === undefined || Number.isNaN(value) ? "-" : Math.round(value).toString();
}

function fixed(value: number | undefined, digits: number): string {
  return value === undefined || Number.isNaN(value) ? "-" : value.toFixed(digits);
}
