/**
 * Runs one scenario against one target (chatd, the reference server or ngircd): a fresh
 * server, the loadgen processes, the phases (set-up, warm-up, measured, drain), and around
 * the measured phase the CPU time (and for `conns` the resident memory) of every server
 * process. Traffic runs twice on the same server: cold (its first traffic ever) and warm.
 *
 * @module
 */
import { DEFAULTS } from "../src/config.ts";
import { Histogram, type LatencySummary } from "./_histogram.ts";
import { LoadgenProcess } from "./_loadgen_process.ts";
import type { ConnsResult, TrafficResult, Workload } from "./_messages.ts";
import { type CpuSample, machineBusyMs, rssKiB, sampleCpu } from "./_proc.ts";
import { connectConcurrency, startTarget, type Target, type TargetName } from "./_targets.ts";

/** Connections a loadgen sets up at once for traffic. */
const CONNECT_CONCURRENCY = 32;
import type { ConnsScenario, Scenario, TrafficScenario } from "./scenarios.ts";

/** How long set-up (connect and join) may take. */
const READY_TIMEOUT_MS = 180_000;
/**
 * How long the connection storm may take, notices included. ngircd needed 4.5–8.5 min for 5000
 * joins into one channel on 2 shared cores (10–20 joins/s, 50–58 ms of its CPU per
 * join: each JOIN is announced to every member and answered with the whole NAMES list).
 */
const STORM_TIMEOUT_MS = 910_000;

/** Options of {@linkcode runScenario}. */
export interface RunOptions {
  /** The server under test. */
  target: TargetName;
  /** Loadgen processes. */
  loadgens: number;
  /** Server flags added to every run (such as `--rate 0`). */
  serverArgs: string[];
  /** V8 flags for the server's processes only (`DENO_V8_FLAGS`), such as `--memory-saver-mode`. */
  serverV8Flags?: string;
}

/** CPU time over the measured phase. */
export interface CpuFigures {
  ms: number;
  /** Cores kept busy on average: CPU time / wall time. */
  cores: number;
  /** µs of CPU per delivered message. */
  usPerDelivery: number;
  /** conns: µs of CPU per join, its notices included. */
  usPerJoin?: number;
}

/** Resident memory of the server's processes, KiB. */
export interface RssFigures {
  beforeKiB: number;
  /** {@linkcode ConnsScenario.settleMs} after the storm (3 s in the full run). */
  afterStormKiB: number;
  /** The lowest over {@linkcode ConnsScenario.idleWaitMs} after that; = afterStormKiB at 0. */
  afterKiB: number;
  /** How long after the storm `afterKiB` was read. */
  idleAfterMs: number;
  /** (afterStormKiB − beforeKiB) / joins: as an operator sees it just after the storm. */
  perConnectionKiB: number;
  /** (afterKiB − beforeKiB) / joins: once idle. */
  idlePerConnectionKiB: number;
  byProcess: { pid: number; role: string; beforeKiB: number; afterKiB: number }[];
}

/** Everything measured in one run. */
export interface RunResult {
  scenario: string;
  kind: Scenario["kind"];
  /** The server measured. */
  target: TargetName;
  /**
   * `cold`: the first traffic on a fresh server; `warm`: the second run on the same server.
   * `conns` is warm: it runs after its warm-up clients.
   */
  round: "cold" | "warm";
  /** `<processes>x<threads>`. */
  config: string;
  serverArgs: string[];
  loadgens: number;
  params: Record<string, unknown>;
  /** The measured phase as the runner timed it. */
  measuredMs: number;
  /** Messages sent (conns: joins) per second of the measured phase. */
  messagesPerSec: number;
  /** Deliveries (conns: `JOINED` notices) counted in the measured phase. */
  deliveries: number;
  deliveriesPerSec: number;
  latencyUs?: LatencySummary;
  expected?: number;
  lost?: number;
  reordered?: number;
  duplicates?: number;
  errors: number;
  errorSamples: string[];
  /** Lines outside the protocol, or deliveries to the wrong client. */
  unexpected: number;
  /** Connections the server closed. */
  closed: number;
  /** Open loop: sends that left more than 10 ms after their time. */
  lateSends?: number;
  /** Open loop: how late the sends left, µs (part of the latency). */
  sendLagUs?: LatencySummary;
  joins?: number;
  /** Joins from the first connect to the last `OK JOIN`. */
  joinsPerSec?: number;
  /** Joins from the first connect to the last `JOINED` notice: every notice delivered. */
  joinsDeliveredPerSec?: number;
  /** conns: from the first connect to the last `JOINED` notice. */
  noticesMs?: number;
  rss?: RssFigures;
  serverCpu: CpuFigures;
  /** A cluster: the server's CPU time by role (nats-server, supervisors, children), ms. */
  serverCpuByRole?: Record<string, number>;
  loadgenCpu: CpuFigures;
  /**
   * Cores used meanwhile by everything else: other processes, and the kernel's network
   * softirqs (about 0.1 here). Should be near 0.
   */
  otherCores: number;
  /** Runs it took: one more for each run other processes disturbed (see `--retries`). */
  attempts?: number;
  serverPids: number[];
  /** Warnings and errors the server logged during the run. */
  serverLog?: { lines: number; samples: string[] };
}

/**
 * Runs one scenario against a fresh server of `options.target` and stops everything it
 * started: traffic twice (cold, then warm on the same server; once with `rounds` 1), `conns`
 * once.
 */
export async function runScenario(scenario: Scenario, options: RunOptions): Promise<RunResult[]> {
  const args = [
    "--processes",
    String(scenario.processes),
    "--threads",
    String(scenario.threads),
    "--log-level",
    "warning",
    // chatd's default, which the test servers turn off: the bench measures the defaults.
    "--history",
    String(DEFAULTS.history),
    ...options.serverArgs,
  ];
  if (scenario.kind === "conns") {
    const needed = scenario.clients + scenario.warmupClients;
    args.push("--max-clients-per-thread", String(Math.max(1024, needed)));
  }
  const env = options.serverV8Flags ? { DENO_V8_FLAGS: options.serverV8Flags } : undefined;
  const nodes = scenario.kind === "traffic" ? scenario.nodes : undefined;
  await using target = await startTarget(options.target, {
    chatdArgs: args,
    chatdEnv: env,
    nodes,
  });
  const shown = target.name === "chatd" ? args : [];
  if (scenario.kind === "conns") {
    const result = await runOnce(
      scenario,
      target,
      options,
      0,
      (running) => measureConns(scenario, running),
    );
    return [{ ...result, serverArgs: shown }];
  }
  const results: RunResult[] = [];
  for (let round = 0; round < scenario.rounds; round++) {
    const result = await runOnce(
      scenario,
      target,
      options,
      round,
      (running) => measureTraffic(scenario, running),
    );
    results.push({ ...result, serverArgs: shown, round: round === 0 ? "cold" : "warm" });
  }
  return results;
}

/** One set of loadgens against a running target, stopped once measured. */
async function runOnce(
  scenario: Scenario,
  target: Target,
  options: RunOptions,
  round: number,
  measure: (running: Running) => Promise<RunResult>,
): Promise<RunResult> {
  await using stack = new AsyncDisposableStack();
  const loadgens = Array.from({ length: options.loadgens }, (_, loadgen) => {
    const where = { target, round, loadgen, loadgens: options.loadgens };
    return stack.use(new LoadgenProcess(workloadOf(scenario, where)));
  });
  await Promise.all(loadgens.map((loadgen) => loadgen.expect("ready", READY_TIMEOUT_MS)));
  const result = await measure({ target, loadgens });
  return { ...result, serverLog: target.problems() };
}

interface Running {
  target: Target;
  loadgens: LoadgenProcess[];
}

/** Where a loadgen connects, which one it is, and in which round. */
interface LoadgenPlace {
  target: Target;
  round: number;
  loadgen: number;
  loadgens: number;
}

function workloadOf(scenario: Scenario, place: LoadgenPlace): Workload {
  const { target, round, loadgen, loadgens } = place;
  const where = {
    host: target.host,
    port: target.port,
    protocol: target.protocol,
    loadgen,
    loadgens,
  };
  if (scenario.kind === "conns") {
    const { clients, warmupClients } = scenario;
    const concurrency = connectConcurrency(target.name, scenario.concurrency);
    return { kind: "conns", ...where, clients, warmupClients, concurrency };
  }
  const { mode, users, senders, window, ratePerSender, processes, threads } = scenario;
  // chatd: a direct receiver goes on another process than its sender, else on another
  // thread. The other servers have one thread.
  // Across nodes any two clients are apart.
  const placement = target.name !== "chatd" || target.peerPort !== undefined
    ? "any"
    : processes > 1
    ? "process"
    : threads > 1
    ? "thread"
    : "any";
  return {
    kind: "traffic",
    ...where,
    round,
    mode,
    users,
    senders,
    window,
    ratePerSender,
    placement,
    connectConcurrency: connectConcurrency(target.name, CONNECT_CONCURRENCY),
    ...(target.peerPort !== undefined ? { peerPort: target.peerPort } : {}),
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** CPU time of the server, the loadgens and the whole machine at one moment. */
interface Snapshot {
  server: CpuSample;
  loadgen: CpuSample;
  machineMs: number;
}

function snapshot(serverPids: number[], loadgenPids: number[]): Snapshot {
  return {
    server: sampleCpu(serverPids),
    loadgen: sampleCpu(loadgenPids),
    machineMs: machineBusyMs(),
  };
}

/** A measured phase: snapshots at its ends, and how long of it was busy if not all of it. */
interface Phase {
  before: Snapshot;
  after: Snapshot;
  activeMs?: number;
}

/** The CPU figures of a phase in which `deliveries` were made. */
function cpuBetween(phase: Phase, deliveries: number) {
  const { before, after } = phase;
  const wallMs = phase.activeMs ?? after.server.at - before.server.at;
  const figures = (ms: number): CpuFigures => ({
    ms,
    cores: ms / wallMs,
    usPerDelivery: deliveries > 0 ? ms * 1000 / deliveries : NaN,
  });
  const serverCpu = figures(after.server.ms - before.server.ms);
  const loadgenCpu = figures(after.loadgen.ms - before.loadgen.ms);
  const otherMs = after.machineMs - before.machineMs - serverCpu.ms - loadgenCpu.ms;
  return { serverCpu, loadgenCpu, otherCores: Math.max(0, otherMs) / wallMs };
}

async function measureTraffic(scenario: TrafficScenario, run: Running): Promise<RunResult> {
  const { target, loadgens } = run;
  const loadgenPids = loadgens.map((loadgen) => loadgen.pid);
  await Promise.all(loadgens.map((loadgen) => loadgen.order({ kind: "warmup" })));
  await sleep(scenario.warmupMs);
  const pids = target.pids();
  const roles = target.roles?.();
  const rolesBefore = roles && cpuByRole(roles);
  const before = snapshot(pids, loadgenPids);
  await Promise.all(loadgens.map((loadgen) => loadgen.order({ kind: "measure" })));
  await sleep(scenario.measureMs);
  const after = snapshot(pids, loadgenPids);
  const rolesAfter = roles && cpuByRole(roles);
  await Promise.all(loadgens.map((loadgen) => loadgen.order({ kind: "stop" })));
  const stopped = await Promise.all(loadgens.map((loadgen) => loadgen.expect("stopped", 10_000)));
  const sent = Object.assign({}, ...stopped.map((report) => report.sent));
  await Promise.all(
    loadgens.map((loadgen) => loadgen.order({ kind: "drain", sent, timeoutMs: scenario.drainMs })),
  );
  const results = await Promise.all(
    loadgens.map((loadgen) => loadgen.expect("result", scenario.drainMs + 10_000)),
  ) as TrafficResult[];

  const measuredMs = after.server.at - before.server.at;
  const latency = new Histogram();
  const sendLag = new Histogram();
  let sentMeasured = 0, deliveries = 0;
  const totals = { expected: 0, lost: 0, reordered: 0, duplicates: 0 };
  const extra = { errors: 0, unexpected: 0, closed: 0, lateSends: 0 };
  const errorSamples: string[] = [];
  for (const result of results) {
    latency.merge(result.latency);
    sendLag.merge(result.sendLag);
    sentMeasured += result.sentMeasured;
    deliveries += result.deliveriesMeasured;
    totals.expected += result.counts.expected;
    totals.lost += result.counts.lost;
    totals.reordered += result.counts.reordered;
    totals.duplicates += result.counts.duplicates;
    extra.errors += result.errors;
    extra.unexpected += result.unexpected;
    extra.closed += result.closed;
    extra.lateSends += result.lateSends;
    errorSamples.push(...result.errorSamples);
  }
  // Each loadgen timed its own measured phase; their lengths agree within a few ms.
  const loadgenMs = Math.max(...results.map((result) => result.measuredMs));
  return {
    scenario: scenario.name,
    kind: "traffic",
    target: target.name,
    round: "cold",
    config: configOf(scenario, target),
    serverArgs: [],
    loadgens: loadgens.length,
    params: {
      mode: scenario.mode,
      users: scenario.users,
      senders: scenario.senders,
      window: scenario.window,
      nodes: scenario.nodes ?? 1,
      ratePerSender: scenario.ratePerSender,
      warmupMs: scenario.warmupMs,
      measureMs: scenario.measureMs,
    },
    measuredMs,
    messagesPerSec: sentMeasured * 1000 / loadgenMs,
    deliveries,
    deliveriesPerSec: deliveries * 1000 / loadgenMs,
    latencyUs: latency.summary(),
    ...(scenario.window === 0 ? { sendLagUs: sendLag.summary() } : {}),
    ...totals,
    ...extra,
    errorSamples,
    ...cpuBetween({ before, after }, deliveries),
    ...(rolesBefore && rolesAfter
      ? {
        serverCpuByRole: Object.fromEntries(
          Object.entries(rolesAfter).map(([role, ms]) => [role, ms - (rolesBefore[role] ?? 0)]),
        ),
      }
      : {}),
    serverPids: pids,
  };
}

/** CPU time so far of each role's processes, ms. */
function cpuByRole(roles: Record<string, number[]>): Record<string, number> {
  return Object.fromEntries(
    Object.entries(roles).map(([role, pids]) => [role, sampleCpu(pids).ms]),
  );
}

/**
 * The lowest total RSS of `pids` over `waitMs`, read every second. RSS stays flat for several
 * seconds after a burst, then drops when V8's memory reducer gives back the heap the burst's
 * garbage grew (anywhere from 5 to 40 s after it in our runs), so one reading at a fixed time
 * is noisy; the lowest is what the idle server settles to.
 */
async function idleRss(
  pids: number[],
  waitMs: number,
): Promise<{ rss: number[]; ms: number } | undefined> {
  if (waitMs <= 0) return undefined;
  const start = performance.now();
  let lowest: { rss: number[]; ms: number; total: number } | undefined;
  while (performance.now() - start < waitMs) {
    await sleep(1000);
    const rss = pids.map(rssKiB);
    const total = rss.reduce((a, b) => a + b, 0);
    if (lowest === undefined || total < lowest.total) {
      lowest = { rss, ms: performance.now() - start, total };
    }
  }
  return lowest;
}

async function measureConns(scenario: ConnsScenario, run: Running): Promise<RunResult> {
  const { target, loadgens } = run;
  const loadgenPids = loadgens.map((loadgen) => loadgen.pid);
  await sleep(scenario.settleMs);
  const pids = target.pids();
  const rssBefore = pids.map(rssKiB);
  const before = snapshot(pids, loadgenPids);
  await Promise.all(loadgens.map((loadgen) => loadgen.order({ kind: "measure" })));
  const joined = await Promise.all(
    loadgens.map((loadgen) => loadgen.expect("joined", STORM_TIMEOUT_MS)),
  );
  const after = snapshot(pids, loadgenPids);
  await sleep(scenario.settleMs);
  const rssAfterStorm = pids.map(rssKiB);
  const idle = await idleRss(pids, scenario.idleWaitMs);
  const rssAfter = idle?.rss ?? rssAfterStorm;
  await Promise.all(loadgens.map((loadgen) => loadgen.order({ kind: "stop" })));
  await Promise.all(loadgens.map((loadgen) => loadgen.expect("stopped", 10_000)));
  await Promise.all(
    loadgens.map((loadgen) => loadgen.order({ kind: "drain", sent: {}, timeoutMs: 0 })),
  );
  const results = await Promise.all(
    loadgens.map((loadgen) => loadgen.expect("result", 10_000)),
  ) as ConnsResult[];

  const joins = results.reduce((sum, result) => sum + result.clients, 0);
  const notices = results.reduce((sum, result) => sum + result.notices, 0);
  const joinMs = Math.max(...joined.map((report) => report.joinMs));
  const noticesMs = Math.max(...joined.map((report) => report.noticesMs));
  const measuredMs = after.server.at - before.server.at;
  const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
  // Every client hears of every client that joined after it: one notice per pair.
  const lostNotices = Math.max(0, joins * (joins - 1) / 2 - notices);
  // More than one per pair: a notice came twice, or a client counted its own join.
  const extraNotices = Math.max(0, notices - joins * (joins - 1) / 2);
  // The phase ends a while after the last notice when some never come: count cores until then.
  const cpu = cpuBetween({ before, after, activeMs: noticesMs }, notices);
  return {
    scenario: scenario.name,
    kind: "conns",
    target: target.name,
    round: "warm",
    config: configOf(scenario, target),
    serverArgs: [],
    loadgens: loadgens.length,
    params: {
      clients: scenario.clients,
      warmupClients: scenario.warmupClients,
      concurrency: connectConcurrency(target.name, scenario.concurrency),
    },
    measuredMs,
    messagesPerSec: joins * 1000 / joinMs,
    deliveries: notices,
    deliveriesPerSec: notices * 1000 / noticesMs,
    expected: joins * (joins - 1) / 2,
    lost: lostNotices,
    duplicates: extraNotices,
    errors: sum(results.map((result) => result.errors)),
    errorSamples: results.flatMap((result) => result.errorSamples),
    unexpected: 0,
    closed: sum(results.map((result) => result.closed)),
    joins,
    joinsPerSec: joins * 1000 / joinMs,
    joinsDeliveredPerSec: joins * 1000 / noticesMs,
    noticesMs,
    rss: {
      beforeKiB: sum(rssBefore),
      afterStormKiB: sum(rssAfterStorm),
      afterKiB: sum(rssAfter),
      idleAfterMs: scenario.settleMs + (idle?.ms ?? 0),
      perConnectionKiB: (sum(rssAfterStorm) - sum(rssBefore)) / Math.max(1, joins),
      idlePerConnectionKiB: (sum(rssAfter) - sum(rssBefore)) / Math.max(1, joins),
      byProcess: pids.map((pid, i) => ({
        pid,
        role: target.name !== "chatd" ? target.name : i === 0 ? "supervisor" : "child",
        beforeKiB: rssBefore[i]!,
        afterKiB: rssAfter[i]!,
      })),
    },
    ...cpu,
    serverCpu: { ...cpu.serverCpu, usPerJoin: cpu.serverCpu.ms * 1000 / Math.max(1, joins) },
    serverPids: pids,
  };
}

/** `<processes>x<threads>` for chatd; the others always run one thread. */
function configOf(scenario: Scenario, target: Target): string {
  return target.name === "chatd" ? `${scenario.processes}x${scenario.threads}` : "1x1";
}
