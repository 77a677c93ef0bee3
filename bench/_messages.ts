/**
 * What the runner and a loadgen process say to each other: the workload a loadgen is started
 * with (its one command-line argument, JSON), the orders the runner writes to its stdin and
 * the reports it writes to its stdout, one JSON object a line.
 *
 * A run goes: loadgen connects and joins → `ready`; `warmup` (traffic starts, not counted);
 * `measure` (counted from now); `stop` (no more sends) → `stopped` with what each sender sent;
 * `drain` with the sent counts of all loadgens → waits for the deliveries still under way →
 * `result`, and exits.
 *
 * @module
 */
import type { HistogramData } from "./_histogram.ts";

/** What the load generator speaks: chatd's line protocol, or IRC (ngircd). */
export type Protocol = "chatd" | "irc";

/** Which clients a direct-message receiver must not share with its sender. */
export type Placement = "process" | "thread" | "any";

/** Message traffic: direct pairs, or one room with some senders. */
export interface TrafficWorkload {
  kind: "traffic";
  mode: "direct" | "room";
  protocol: Protocol;
  /**
   * 0 for the first run on a server (cold), 1 for the second (warm): the second takes other
   * names, so that it never waits for the first one's to be released.
   */
  round: number;
  host: string;
  port: number;
  /** This loadgen's index and how many there are: loadgen k owns the users u with u % loadgens = k. */
  loadgen: number;
  loadgens: number;
  /** direct: the number of pairs; room: the number of users in the room. */
  users: number;
  /** direct: every pair has one; room: users 0..senders-1 send. */
  senders: number;
  /** Messages in flight per sender (closed loop); 0 = open loop at `ratePerSender`. */
  window: number;
  /** Messages per second per sender in open loop. */
  ratePerSender: number;
  /** direct: where a receiver must be relative to its sender. */
  placement: Placement;
  /** Connections set up at once. */
  connectConcurrency: number;
  /**
   * A second chatd node of the same cluster (cluster scenarios): direct receivers connect
   * there, their senders to `port`; in a room the senders connect to `port` and every other
   * user here, so that nearly every delivery crosses nodes.
   */
  peerPort?: number;
}

/** Connection storm: clients connect and JOIN, then stay idle. */
export interface ConnsWorkload {
  kind: "conns";
  protocol: Protocol;
  host: string;
  port: number;
  loadgen: number;
  loadgens: number;
  /** Clients of the measured phase, over all loadgens. */
  clients: number;
  /** Clients that connect, join and leave during warm-up. */
  warmupClients: number;
  /** Connections being set up at once, per loadgen. */
  concurrency: number;
}

/** Everything a loadgen can be asked to do. */
export type Workload = TrafficWorkload | ConnsWorkload;

/** Runner → loadgen. */
export type Order =
  | { kind: "warmup" }
  | { kind: "measure" }
  | { kind: "stop" }
  | { kind: "drain"; sent: Record<string, number>; timeoutMs: number };

/** Counts from the receivers' side, over the whole run. */
export interface DeliveryCounts {
  /** Deliveries expected once everything sent has arrived. */
  expected: number;
  /** Distinct deliveries received. */
  distinct: number;
  /** Expected deliveries that never arrived. */
  lost: number;
  /** Deliveries that arrived after a later message of the same sender. */
  reordered: number;
  duplicates: number;
}

/** A loadgen's result for a traffic workload. */
export interface TrafficResult {
  kind: "result";
  workload: "traffic";
  /** Messages sent in the measured phase. */
  sentMeasured: number;
  /** Distinct deliveries received in the measured phase. */
  deliveriesMeasured: number;
  /** The measured phase as this loadgen saw it, in ms. */
  measuredMs: number;
  counts: DeliveryCounts;
  /** Latency of the messages sent in the measured phase, µs. */
  latency: HistogramData;
  /** `ERR ...` lines received, and a few of them. */
  errors: number;
  errorSamples: string[];
  /** Lines that are no part of the protocol, or connections the server closed. */
  unexpected: number;
  closed: number;
  /** Open-loop sends that left later than scheduled by more than 10 ms. */
  lateSends: number;
  /** Open loop: how much later than scheduled the measured phase's messages left, µs. */
  sendLag: HistogramData;
}

/** A loadgen's result for the connection storm. */
export interface ConnsResult {
  kind: "result";
  workload: "conns";
  clients: number;
  /** From the first connect to the last `OK JOIN`, ms. */
  joinMs: number;
  /** `JOINED` notices received in the measured phase. */
  notices: number;
  errors: number;
  errorSamples: string[];
  closed: number;
}

/** Loadgen → runner. */
export type Report =
  | { kind: "ready"; clients: number; connects: number }
  | { kind: "stopped"; sent: Record<string, number> }
  /** conns only: every client of the measured phase has joined and every notice arrived. */
  | { kind: "joined"; joinMs: number; noticesMs: number }
  | TrafficResult
  | ConnsResult;

const ORDER_KINDS = new Set(["warmup", "measure", "stop", "drain"]);
const REPORT_KINDS = new Set(["ready", "stopped", "joined", "result"]);

/**
 * Reads one order line.
 *
 * @throws {TypeError} when the line is not an order.
 */
export function parseOrder(line: string): Order {
  const order = JSON.parse(line);
  if (!ORDER_KINDS.has(order?.kind)) throw new TypeError(`Not an order: ${line.slice(0, 80)}`);
  if (order.kind === "drain" && typeof order.sent !== "object") {
    throw new TypeError("A drain order needs the sent counts");
  }
  return order as Order;
}

/**
 * Reads one report line.
 *
 * @throws {TypeError} when the line is not a report.
 */
export function parseReport(line: string): Report {
  const report = JSON.parse(line);
  if (!REPORT_KINDS.has(report?.kind)) {
    throw new TypeError(`Not a loadgen report: ${line.slice(0, 80)}`);
  }
  return report as Report;
}

/**
 * Reads a workload (the loadgen's command-line argument).
 *
 * @throws {TypeError} when it is not one.
 */
export function parseWorkload(text: string): Workload {
  const workload = JSON.parse(text);
  if (workload?.kind !== "traffic" && workload?.kind !== "conns") {
    throw new TypeError(`Not a workload: ${text.slice(0, 80)}`);
  }
  if (typeof workload.port !== "number" || typeof workload.host !== "string") {
    throw new TypeError("A workload needs host and port");
  }
  if (workload.protocol !== "chatd" && workload.protocol !== "irc") {
    throw new TypeError(`Not a protocol: ${workload.protocol}`);
  }
  return workload as Workload;
}
