/**
 * What `/metrics` says, in the Prometheus text exposition format (version 0.0.4), written
 * by hand: a few families of counters and gauges, labelled by `p_id` and `t_id`. The numbers
 * come from the children's heartbeat answers (their threads' rows, see counters.ts) and
 * from the supervisor's own counts; nothing here runs on the per-message path.
 *
 * @module
 */
import { M, THREAD_METRICS, type ThreadMetric } from "./counters.ts";

/** The content type of the text format. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** What the last heartbeat answer of a child said. */
export interface ChildSample {
  pId: number;
  /** Resident set size in bytes. */
  rss: number;
  /** Threads that accept connections. */
  serving: number;
  /** Its threads' metrics rows back to back. */
  rows: readonly number[];
}

/** Why a child was started again. */
export type RestartCause = "exit" | "signal" | "watchdog";

/** What `/metrics` shows. */
export interface MetricsSnapshot {
  /** Threads per process. */
  threads: number;
  /** The current child of each p_id that has answered a heartbeat. */
  children: readonly ChildSample[];
  /** Per p_id: restarts by cause, recycles, watchdog kills. */
  supervisor: ReadonlyMap<number, SupervisorCounts>;
}

/** The supervisor's counts for one p_id. */
export interface SupervisorCounts {
  restarts: Record<RestartCause, number>;
  recycles: number;
  watchdogKills: number;
}

/** Zero counts. */
export function noCounts(): SupervisorCounts {
  return { restarts: { exit: 0, signal: 0, watchdog: 0 }, recycles: 0, watchdogKills: 0 };
}

type Labels = Record<string, string | number>;

class Writer {
  readonly lines: string[] = [];

  family(name: string, type: "counter" | "gauge", help: string): void {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  }

  sample(name: string, labels: Labels, value: number): void {
    // Label values here are numbers and fixed words: nothing to escape.
    const text = Object.entries(labels).map(([key, v]) => `${key}="${v}"`).join(",");
    this.lines.push(`${name}{${text}} ${value}`);
  }
}

/** Thread families: name, type, help, and the row cells with their extra labels. */
const THREAD_FAMILIES: readonly [
  string,
  "counter" | "gauge",
  string,
  readonly [ThreadMetric, Labels][],
][] = [
  ["chatd_connections_accepted_total", "counter", "Connections accepted.", [["accepted", {}]]],
  ["chatd_connections_refused_total", "counter", "Connections refused, by reason.", [
    ["refused_server_full", { reason: "server_full" }],
    ["refused_shutting_down", { reason: "shutting_down" }],
  ]],
  ["chatd_connections_open", "gauge", "Connections open (at the last heartbeat).", [
    ["open", {}],
  ]],
  ["chatd_users_joined", "gauge", "Joined users (at the last heartbeat).", [["joined", {}]]],
  [
    "chatd_messages_received_total",
    "counter",
    "Lines received from clients, by command.",
    [
      ["received_join", { kind: "JOIN" }],
      ["received_chat", { kind: "CHAT" }],
      ["received_who", { kind: "WHO" }],
      ["received_ping", { kind: "PING" }],
      ["received_leav", { kind: "LEAV" }],
      ["received_help", { kind: "HELP" }],
      ["received_other", { kind: "other" }],
    ],
  ],
  ["chatd_deliveries_total", "counter", "Messages and notices delivered to joined clients.", [
    ["deliveries", {}],
  ]],
  ["chatd_bytes_out_total", "counter", "Bytes of replies and deliveries queued to clients.", [
    ["bytes_out", {}],
  ]],
  ["chatd_slow_consumers_total", "counter", "Clients dropped as slow consumers.", [
    ["slow_consumers", {}],
  ]],
  ["chatd_datagrams_rejected_total", "counter", "Malformed bus datagrams dropped.", [
    ["datagrams_rejected", {}],
  ]],
  ["chatd_records_dropped_total", "counter", "Chat records dropped at a full outbox.", [
    ["records_dropped", {}],
  ]],
  ["chatd_thread_heap_used_bytes", "gauge", "V8 heap in use by the thread (last heartbeat).", [
    ["heap_used", {}],
  ]],
  ["chatd_thread_heap_total_bytes", "gauge", "V8 heap reserved by the thread (last heartbeat).", [
    ["heap_total", {}],
  ]],
];

/** The `/metrics` text for `snapshot`. */
export function formatMetrics(snapshot: MetricsSnapshot): string {
  const out = new Writer();
  const width = THREAD_METRICS.length;
  for (const [name, type, help, cells] of THREAD_FAMILIES) {
    out.family(name, type, help);
    for (const child of snapshot.children) {
      for (let tId = 0; tId < snapshot.threads; tId++) {
        for (const [metric, labels] of cells) {
          const value = child.rows[tId * width + M[metric]] ?? 0;
          out.sample(name, { p_id: child.pId, t_id: tId, ...labels }, value);
        }
      }
    }
  }
  out.family("chatd_threads_serving", "gauge", "Threads of the process that accept connections.");
  for (const child of snapshot.children) {
    out.sample("chatd_threads_serving", { p_id: child.pId }, child.serving);
  }
  out.family("chatd_process_resident_memory_bytes", "gauge", "Resident memory of the process.");
  for (const child of snapshot.children) {
    out.sample("chatd_process_resident_memory_bytes", { p_id: child.pId }, child.rss);
  }
  const pIds = [...snapshot.supervisor.keys()].sort((a, b) => a - b);
  out.family("chatd_child_restarts_total", "counter", "Children started again, by cause.");
  for (const pId of pIds) {
    const counts = snapshot.supervisor.get(pId)!;
    for (const cause of ["exit", "signal", "watchdog"] as const) {
      out.sample("chatd_child_restarts_total", { p_id: pId, cause }, counts.restarts[cause]);
    }
  }
  out.family("chatd_recycles_total", "counter", "Children replaced at --clients-per-process.");
  for (const pId of pIds) {
    out.sample("chatd_recycles_total", { p_id: pId }, snapshot.supervisor.get(pId)!.recycles);
  }
  out.family("chatd_watchdog_kills_total", "counter", "Children killed by the watchdog.");
  for (const pId of pIds) {
    out.sample(
      "chatd_watchdog_kills_total",
      { p_id: pId },
      snapshot.supervisor.get(pId)!.watchdogKills,
    );
  }
  return out.lines.join("\n") + "\n";
}
