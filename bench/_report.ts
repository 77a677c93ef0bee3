/**
 * The suite's output: the table for the terminal and the JSON document for bench/results/.
 *
 * @module
 */
import type { MachineInfo } from "./_proc.ts";
import type { RunResult } from "./_run.ts";
import type { TargetName } from "./_targets.ts";

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
  /** The servers measured. */
  targets: TargetName[];
  /** The servers asked for that could not run, and why. */
  skipped: Skipped[];
  durationMs: number;
  results: RunResult[];
  failures: RunFailure[];
}

/** A run that did not finish. */
export interface RunFailure {
  scenario: string;
  target: TargetName;
  config: string;
  error: string;
}

/** A target that was asked for but could not run. */
export interface Skipped {
  target: TargetName;
  reason: string;
}

const COLUMNS: [string, number][] = [
  ["scenario", 21],
  ["target", 9],
  ["round", 5],
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
    result.target,
    result.round,
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
  const name = `${result.scenario} ${result.target} ${result.round} ${result.config}`;
  if (result.kind === "conns" && result.rss) {
    const { beforeKiB, afterStormKiB, afterKiB, idleAfterMs, perConnectionKiB } = result.rss;
    const idle = idleAfterMs > 3000 + 1000
      ? ` → ${fixed(afterKiB / 1024, 1)} MiB at its lowest, ${fixed(idleAfterMs / 1000, 1)} s ` +
        `after it (${fixed(result.rss.idlePerConnectionKiB, 1)} KiB per connection)`
      : "";
    notes.push(
      `${name}: ${result.joins} clients joined at ${int(result.joinsPerSec)}/s, ` +
        `${int(result.joinsDeliveredPerSec)}/s with every notice delivered ` +
        `(msgs/s = joins/s, deliv/s = JOINED notices/s, ${
          fixed((result.noticesMs ?? NaN) / 1000, 1)
        } s to the last notice); server RSS ${fixed(beforeKiB / 1024, 1)} → ` +
        `${fixed(afterStormKiB / 1024, 1)} MiB after the storm = ` +
        `${fixed(perConnectionKiB, 1)} KiB per idle joined connection${idle}; ` +
        `server CPU ${int(result.serverCpu.usPerJoin)} µs per join`,
    );
    if (result.duplicates) {
      notes.push(
        `${name}: ${result.duplicates} JOINED notices more than one per pair of clients (dup)`,
      );
    }
    if (result.lost) {
      notes.push(
        `${name}: ${result.lost} of ${result.expected} JOINED notices never came (lost): ` +
          `for some pairs of clients joining at once, neither heard of the other`,
      );
    }
  }
  if (result.serverCpuByRole) {
    const perDelivery = (ms: number) =>
      fixed(result.deliveries > 0 ? ms * 1000 / result.deliveries : NaN, 2);
    notes.push(
      `${name}: server CPU per delivery by role: ` +
        Object.entries(result.serverCpuByRole).map(([role, ms]) => `${role} ${perDelivery(ms)} µs`)
          .join(", "),
    );
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

/** The scenarios of the side-by-side table, in order, and what each row shows. */
const COMPARED: { scenario: string; label: string; value: (result: RunResult) => number }[] = [
  { scenario: "direct", label: "direct deliv/s", value: (r) => r.deliveriesPerSec },
  { scenario: "fanout100", label: "fanout100 deliv/s", value: (r) => r.deliveriesPerSec },
  { scenario: "fanout100/w8", label: "fanout100/w8 deliv/s", value: (r) => r.deliveriesPerSec },
  { scenario: "fanout1000", label: "fanout1000 deliv/s", value: (r) => r.deliveriesPerSec },
  {
    scenario: "fanout1000/w4",
    label: "fanout1000/w4 deliv/s",
    value: (r) => r.deliveriesPerSec,
  },
  {
    scenario: "fanout1000/w4",
    label: "fanout1000/w4 p50 µs",
    value: (r) => r.latencyUs?.p50 ?? NaN,
  },
  { scenario: "rate", label: "rate p50 µs", value: (r) => r.latencyUs?.p50 ?? NaN },
  { scenario: "rate", label: "rate p99 µs", value: (r) => r.latencyUs?.p99 ?? NaN },
  { scenario: "conns", label: "conns joins/s", value: (r) => r.joinsDeliveredPerSec ?? NaN },
  {
    scenario: "conns",
    label: "conns KiB/conn",
    value: (r) => r.rss?.perConnectionKiB ?? NaN,
  },
];

/** The chatd 1×1 run to hold against the reference server for a scenario: from `scaling`. */
function chatdOneByOne(results: readonly RunResult[], scenario: string): RunResult | undefined {
  const same = (result: RunResult) =>
    result.target === "chatd" && result.round === "warm" && result.config === "1x1";
  return results.find((result) => same(result) && result.scenario === `scaling/${scenario}`) ??
    results.find((result) => same(result) && result.scenario === scenario);
}

/**
 * chatd, the reference server and ngircd side by side, cold and warm, with the ratios of the
 * warm figures: chatd / ngircd, and chatd at 1×1 / the reference server. Empty when only one
 * target ran.
 */
export function formatComparison(results: readonly RunResult[]): string {
  const targets = [...new Set(results.map((result) => result.target))];
  if (targets.length < 2) return "";
  const find = (scenario: string, target: TargetName, round: string) =>
    results.find((result) =>
      result.scenario === scenario && result.target === target && result.round === round
    );
  const widths = [22, 10, 10, 10, 10, 10, 10, 8, 8, 6];
  const header = [
    "side by side",
    "chatd cold",
    "chatd warm",
    "ref cold",
    "ref warm",
    "ngircd cld",
    "ngircd wrm",
    "c/ngircd",
    "c1x1/ref",
    "faults",
  ];
  const rows = [header];
  for (const { scenario, label, value } of COMPARED) {
    const cells = [label];
    const runs: RunResult[] = [];
    for (const target of ["chatd", "reference", "ngircd"] as const) {
      for (const round of ["cold", "warm"]) {
        const result = find(scenario, target, round);
        if (result) runs.push(result);
        cells.push(scenario === "conns" && round === "cold" ? "" : int(result && value(result)));
      }
    }
    const chatd = find(scenario, "chatd", "warm");
    const ngircd = find(scenario, "ngircd", "warm");
    const reference = find(scenario, "reference", "warm");
    const oneByOne = chatdOneByOne(results, scenario);
    cells.push(chatd && ngircd ? fixed(value(chatd) / value(ngircd), 2) : "-");
    cells.push(oneByOne && reference ? fixed(value(oneByOne) / value(reference), 2) : "-");
    const faults = runs.reduce(
      (sum, run) =>
        sum + (run.lost ?? 0) + (run.reordered ?? 0) + (run.duplicates ?? 0) + run.errors +
        run.unexpected + run.closed,
      0,
    );
    cells.push(runs.length === 0 ? "-" : String(faults));
    rows.push(cells);
  }
  return [
    ...rows.map((cells) =>
      cells.map((cell, i) => i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))
        .join(" ")
    ),
    "",
    "cold: the first traffic on a fresh server; warm: a second run on the same server. Ratios " +
    "of the warm figures (for latency",
    "and KiB lower is better); c1x1/ref: chatd at 1 process × 1 thread (its `scaling` run) / " +
    "the reference server; conns runs once,",
    "after its warm-up clients: joins/s with every JOINED (IRC: JOIN) notice delivered, RSS 3 s " +
    "after the storm; faults: lost + reordered",
    "+ duplicated + errors + unexpected lines + connections closed, over the row's runs. ngircd " +
    "is connected to 8 at a time, not 256:",
    "its listen backlog is 10, and handshakes beyond it stall in the kernel's retries for up to " +
    "minutes.",
  ].join("\n");
}

/** chatd's deliveries/s by shape (processes × threads), warm with cold in brackets. */
export function formatScaling(results: readonly RunResult[]): string {
  const scaling = results.filter((result) => result.scenario.startsWith("scaling/"));
  if (scaling.length === 0) return "";
  const shapes = [...new Set(scaling.map((result) => result.config))];
  const scenarios = [...new Set(scaling.map((result) => result.scenario))];
  const cell = (scenario: string, config: string) => {
    const of = (round: string) =>
      scaling.find((r) => r.scenario === scenario && r.config === config && r.round === round);
    const warm = of("warm"), cold = of("cold");
    // --quick runs a cold round only.
    if (warm === undefined && cold !== undefined) return `${int(cold.deliveriesPerSec)} cold`;
    return `${int(warm?.deliveriesPerSec)} (${int(cold?.deliveriesPerSec)})`;
  };
  const rows = [
    ["chatd deliv/s by p×t", ...shapes],
    ...scenarios.map((scenario) => [scenario, ...shapes.map((shape) => cell(scenario, shape))]),
  ];
  return [
    ...rows.map((cells) => cells.map((c, i) => i === 0 ? c.padEnd(22) : c.padStart(19)).join(" ")),
    "",
    "warm (cold in brackets); both with 16 in flight per sender.",
  ].join("\n");
}

function int(value: number | undefined): string {
  return value === undefined || Number.isNaN(value) ? "-" : Math.round(value).toString();
}

function fixed(value: number | undefined, digits: number): string {
  return value === undefined || Number.isNaN(value) ? "-" : value.toFixed(digits);
}
