/**
 * The churn soak: clients connect, JOIN, send direct and room messages and leave, over and
 * over, while `--clients-per-process` recycles processes, a child is killed with SIGKILL in
 * the middle, and the server is stopped with SIGINT at the end, all during traffic.
 *
 * Checked: no connection refused or closed before its greeting, and resets only as few as
 * the kernel's SO_REUSEPORT race explains (README: 0.2-0.4 % of arrivals; none with
 * net.ipv4.tcp_migrate_req=1); every message to a user who stayed connected arrived, in
 * order, unless its sender was connected to process 1 when it was killed (at most one
 * connection per churner); every client gets `BYE shutting down`; no child and no runtime
 * directory is left behind.
 *
 *   deno task soak [--seconds 30] [--churners 20]
 *
 * `tests/soak_test.ts` runs it for a few seconds as part of `deno task test`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  connectTo,
  type LineClient,
  processGone,
  TestServer,
  waitUntil,
  withTimeout,
} from "./test_util.ts";

/** Options of {@linkcode runSoak}. */
export interface SoakOptions {
  /** How long the churn runs before SIGINT. */
  seconds: number;
  /** Clients connecting, talking and leaving in a loop. */
  churners: number;
  /** Users connected from start to end, on process 0. */
  stayers: number;
  clientsPerProcess: number;
}

/** What a soak did and found. */
export interface SoakReport {
  seconds: number;
  connections: number;
  directSent: number;
  roomSent: number;
  delivered: number;
  /** Messages a stayer should have received and did not (must be 0). */
  lost: number;
  /** Messages that arrived out of order (must be 0). */
  reordered: number;
  /**
   * Connections reset before their greeting. Linux resets connections queued on a
   * SO_REUSEPORT listener when it closes, unless net.ipv4.tcp_migrate_req=1; so this must be
   * 0 with that setting, and at most {@linkcode MAX_RESET_SHARE} of the connections without
   * it (see README). Those cut off by the SIGKILL are counted in `cutOffByKill` instead.
   */
  resets: number;
  /** Connections refused, or closed or failed otherwise before their greeting (must be 0). */
  failedConnections: number;
  /** net.ipv4.tcp_migrate_req was 1 during the run. */
  migrateReq: boolean;
  recycles: number;
  killedPid: number;
  /**
   * Connections cut off by the SIGKILL: churners on process 1 connected before the kill, and
   * connections under way at the kill that ended before their greeting. Expected, and their
   * messages are not counted; at most one per churner.
   */
  cutOffByKill: number;
  /** Clients that did not read `BYE shutting down` at SIGINT (must be 0). */
  missedBye: number;
  /** Problems found; empty when the soak passed. */
  problems: string[];
}

/**
 * The most resets the SO_REUSEPORT race may explain. The README gives 0.2-0.4 % of arrivals;
 * 5 s runs of soak_test (20 churners, a recycle every 25 clients) saw 0-0.8 % on a shared
 * 2-core machine.
 */
export const MAX_RESET_SHARE = 0.01;

/** The server's warnings and errors during the last soak, for the report. */
export let serverWarnings: string[] = [];

/** Per-receiver record of what arrived from one sender. */
type Received = Map<string, number[]>;

/** Whether `error` says the stream ended or was reset under a client. */
function cutOff(error: unknown, client: LineClient): boolean {
  return client.wasReset || error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.BrokenPipe ||
    (error instanceof Error && error.message === "end of stream while waiting for a line");
}

/**
 * Runs the soak; the report lists every problem found. The server and every client are
 * released at the end, whatever happened.
 */
export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const server = await TestServer.start([
    "--processes",
    "2",
    "--threads",
    "2",
    "--rate",
    "0",
    "--clients-per-process",
    String(options.clientsPerProcess),
    "--log-level",
    "info",
  ]);
  const clients = new Set<LineClient>();
  try {
    return await soak(server, options, clients);
  } finally {
    for (const client of clients) client.close();
    await server[Symbol.asyncDispose]();
  }
}

async function soak(
  server: TestServer,
  options: SoakOptions,
  clients: Set<LineClient>,
): Promise<SoakReport> {
  const runtimeDir = server.runtimeDir();
  const problems: string[] = [];
  const report: SoakReport = {
    seconds: options.seconds,
    connections: 0,
    directSent: 0,
    roomSent: 0,
    delivered: 0,
    lost: 0,
    reordered: 0,
    resets: 0,
    failedConnections: 0,
    migrateReq: Deno.readTextFileSync("/proc/sys/net/ipv4/tcp_migrate_req").trim() === "1",
    recycles: 0,
    killedPid: 0,
    cutOffByKill: 0,
    missedBye: 0,
    problems,
  };
  // Stayers: joined on process 0 for the whole run, reading all the time.
  const stayers: { client: LineClient; name: string; received: Received; done: Promise<string> }[] =
    [];
  for (let i = 0; i < options.stayers; i++) {
    const client = await connectTo(server, (where) => where.pId === 0);
    clients.add(client);
    const name = `stayer${i}`;
    await client.send(`JOIN ${name}`);
    const joined = await client.readLine();
    if (joined !== `OK JOIN ${name}`) throw new Error(`${name}: JOIN answered ${joined}`);
    const received: Received = new Map();
    stayers.push({ client, name, received, done: readStayer(client, name, received, report) });
  }

  // Sent messages, by sender name: sequence numbers per receiver ("*" for the room).
  const sent = new Map<string, { to: string; seq: number }[]>();
  const cutOffSenders = new Set<string>(); // senders whose child was killed under them
  let stopping = false;
  const killAt = performance.now() + (options.seconds * 1000) / 2;
  let killed = false;

  const churner = async (id: number) => {
    for (let round = 0; !stopping; round++) {
      const name = `c${id}r${round}`;
      const beforeKill = !killed;
      let client: LineClient | undefined;
      let pId: number;
      try {
        client = await server.connect();
        pId = (await client.hello()).pId;
        report.connections++;
      } catch (error: unknown) {
        client?.close();
        if (stopping) continue;
        if (client !== undefined && cutOff(error, client) && beforeKill && killed) {
          report.cutOffByKill++;
        } else if (client?.wasReset || error instanceof Deno.errors.ConnectionReset) {
          report.resets++;
          if (report.migrateReq) problems.push(`connection reset: ${error}`);
        } else {
          report.failedConnections++;
          problems.push(`connection failed: ${error}`);
        }
        continue;
      }
      const log: { to: string; seq: number }[] = [];
      sent.set(name, log);
      try {
        await client.send(`JOIN ${name}`);
        let line = await client.readLine();
        while (line.startsWith("JOINED ") || line.startsWith("LEFT ") || line.startsWith("ALL ")) {
          line = await client.readLine();
        }
        if (line !== `OK JOIN ${name}`) throw new Error(`JOIN answered ${line}`);
        const batch: string[] = [];
        for (let seq = 0; seq < 10; seq++) {
          const to = stayers[seq % stayers.length]!.name;
          batch.push(`CHAT ${to} ${name}:${seq}`);
          log.push({ to, seq });
        }
        batch.push(`CHAT * ${name}:room`);
        log.push({ to: "*", seq: 0 });
        batch.push("LEAV");
        await client.send(batch.join("\n"));
        report.directSent += 10;
        report.roomSent++;
        for (;;) {
          const reply = await client.readLine(10_000);
          if (reply === "BYE") break;
          if (reply.startsWith("ERR ")) problems.push(`${name} got ${reply}`);
        }
      } catch (error: unknown) {
        if (stopping) return;
        // Cut off by the SIGKILL: expected for clients of process 1 connected before it, a
        // failure for anyone else, and for anything but the stream ending.
        if (killed && beforeKill && pId === 1 && cutOff(error, client)) {
          cutOffSenders.add(name);
          report.cutOffByKill++;
        } else {
          problems.push(`${name} (p=${pId}): ${error}`);
        }
      } finally {
        client.close();
      }
      if (!killed && performance.now() > killAt) {
        killed = true;
        const [pid] = server.childPids().get(1) ?? [];
        if (pid !== undefined) {
          report.killedPid = pid;
          Deno.kill(pid, "SIGKILL");
        }
      }
    }
  };

  const deadline = performance.now() + options.seconds * 1000;
  const churning = Array.from({ length: options.churners }, (_, id) => churner(id));
  await waitUntil(() => performance.now() > deadline, options.seconds * 1000 + 1000, "soak time");
  stopping = true;
  await Promise.all(churning);

  // Everything sent by a churner that finished its LEAV must have reached the stayers.
  const expected = new Map<string, Map<string, number[]>>(); // stayer → sender → seqs
  for (const stayer of stayers) expected.set(stayer.name, new Map());
  for (const [sender, log] of sent) {
    if (cutOffSenders.has(sender)) continue;
    for (const { to, seq } of log) {
      const targets = to === "*" ? stayers.map((s) => s.name) : [to];
      for (const target of targets) {
        const bySender = expected.get(target)!;
        if (!bySender.has(sender)) bySender.set(sender, []);
        bySender.get(sender)!.push(to === "*" ? -1 : seq);
      }
    }
  }
  const missingFrom = (stayer: { name: string; received: Received }, sender: string) => {
    const got = stayer.received.get(sender) ?? [];
    return expected.get(stayer.name)!.get(sender)!.filter((seq) => !got.includes(seq));
  };
  const anyMissing = () =>
    stayers.some((stayer) =>
      [...expected.get(stayer.name)!.keys()].some((sender) =>
        missingFrom(stayer, sender).length > 0
      )
    );
  try {
    // Every expected line by name, not a count: lines of excused senders arrive too, and a
    // count could be reached while an expected line is still on its way.
    await waitUntil(() => !anyMissing(), 10_000, "deliveries to the stayers");
  } catch {
    // Counted as lost below.
  }
  for (const stayer of stayers) {
    for (const sender of expected.get(stayer.name)!.keys()) {
      const missing = missingFrom(stayer, sender);
      if (missing.length > 0) {
        report.lost += missing.length;
        problems.push(`${stayer.name} is missing ${missing.length} from ${sender}`);
      }
    }
  }
  report.recycles = server.parsedLogs().filter((f) => f.msg === "process retiring").length;
  if (report.resets > Math.ceil(report.connections * MAX_RESET_SHARE)) {
    problems.push(
      `${report.resets} of ${report.connections} connections reset: more than the kernel's ` +
        `SO_REUSEPORT race explains (${MAX_RESET_SHARE * 100} %)`,
    );
  }
  // Each churner has one connection at a time: the kill can cut off at most one of each.
  if (report.cutOffByKill > options.churners) {
    problems.push(`${report.cutOffByKill} connections cut off by one SIGKILL`);
  }

  // SIGINT with clients still connected and talking.
  const talkers = await Promise.all(
    Array.from({ length: 6 }, async () => {
      // A recycle may still be under way: a reset before the greeting is the documented
      // SO_REUSEPORT race (counted, and bounded below), and the talker connects again.
      for (let attempt = 1;; attempt++) {
        const client = await server.connect();
        clients.add(client);
        try {
          await client.hello();
          return client;
        } catch (error: unknown) {
          if (attempt === 3 || !cutOff(error, client) || !client.wasReset) throw error;
          report.resets++;
          clients.delete(client);
          client.close();
        }
      }
    }),
  );
  for (const talker of talkers) talker.send("PING x\nPING y\nHELP").catch(() => {});
  const children = [...server.childPids().values()].flat();
  server.signal("SIGINT");
  for (const stayer of stayers) {
    // A stayer's reader runs to the end of its stream; it returns the last line it read.
    const last = await stayer.done;
    if (last !== "BYE shutting down") {
      report.missedBye++;
      problems.push(`${stayer.name} ended with ${JSON.stringify(last)}, not BYE shutting down`);
    }
    stayer.client.close();
  }
  for (const client of talkers) {
    try {
      for (;;) {
        const line = await client.readLine(8000);
        if (line === "BYE shutting down") break;
      }
      await client.expectEof(8000);
    } catch (error: unknown) {
      report.missedBye++;
      problems.push(`no BYE shutting down: ${error}`);
    }
    client.close();
  }
  try {
    const status = await withTimeout(server.status, 15_000, "supervisor exit after SIGINT");
    if (status.code !== 0) problems.push(`supervisor exited with ${status.code}`);
  } catch (error: unknown) {
    problems.push(String(error));
  }
  try {
    await waitUntil(() => children.every(processGone), 3000, "children gone");
  } catch {
    problems.push(`children left behind: ${children.filter((pid) => !processGone(pid))}`);
  }
  try {
    Deno.statSync(runtimeDir);
    problems.push(`runtime directory left behind: ${runtimeDir}`);
  } catch {
    // Gone, as it should be.
  }
  serverWarnings = server.logs.filter((line) => /level=(warning|error|fatal)/.test(line));
  const logFile = Deno.env.get("SOAK_LOG");
  if (logFile) Deno.writeTextFileSync(logFile, server.logs.join("\n") + "\n");
  return report;
}

async function readStayer(
  client: LineClient,
  name: string,
  received: Received,
  report: SoakReport,
): Promise<string> {
  for (;;) {
    let line: string | null;
    try {
      line = await client.readLineOrEof(60_000);
    } catch (error: unknown) {
      return String(error);
    }
    if (line === null) return "end of stream";
    if (line === "BYE shutting down") {
      await client.expectEof(8000).catch(() => {});
      return line;
    }
    const match = /^(FROM|ALL) (\S+) (\S+):(\d+|room)$/.exec(line);
    if (!match) continue; // greeting, OK JOIN, JOINED, LEFT
    const [, , sender, tag, seqText] = match;
    if (sender !== tag) continue;
    const seq = seqText === "room" ? -1 : Number(seqText);
    const got = received.get(sender!) ?? [];
    // Direct messages from one sender count up; its room message comes after them.
    const last = got.at(-1);
    if (last !== undefined && (last === -1 || (seq !== -1 && seq <= last))) {
      report.reordered++;
      report.problems.push(`${name} got ${sender}:${seqText} after ${last}`);
    }
    got.push(seq);
    received.set(sender!, got);
    report.delivered++;
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      seconds: { type: "string", default: "30" },
      churners: { type: "string", default: "20" },
    },
  });
  const report = await runSoak({
    seconds: Number(values.seconds),
    churners: Number(values.churners),
    stayers: 4,
    clientsPerProcess: 25,
  });
  const { problems, ...figures } = report;
  console.log(JSON.stringify(figures, null, 2));
  for (const problem of problems.slice(0, 20)) console.log(`problem: ${problem}`);
  for (const line of serverWarnings.slice(0, 20)) console.log(`server: ${line}`);
  console.log(problems.length === 0 ? "soak passed" : `soak FAILED: ${problems.length} problems`);
  Deno.exit(problems.length === 0 ? 0 : 1);
}
