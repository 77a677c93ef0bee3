import assert from "node:assert/strict";
import { encodeDirect, encodeRoom, MAGIC } from "../src/wire.ts";
import {
  connectTo,
  join,
  processGone,
  TestServer,
  waitForUptime,
  waitUntil,
  withTimeout,
} from "./test_util.ts";

const FAULTS = { env: { CHATD_FAULTS: "1" } };
/** A child that dies sooner than this after starting is crash-looping (README, Lifecycle). */
const CRASH_LOOP_UPTIME_MS = 1000;

function count(server: TestServer, msg: string): number {
  return server.parsedLogs().filter((fields) => fields.msg === msg).length;
}

Deno.test("FAULT is an unknown verb unless CHATD_FAULTS=1", async () => {
  await using server = await TestServer.start();
  await using client = await server.connect();
  await client.hello();
  await client.send("FAULT process");
  assert.equal(await client.readLine(), "ERR BAD_COMMAND FAULT");
  await client.send("PING alive");
  assert.equal(await client.readLine(), "PONG alive");
});

Deno.test("an exception while handling a client closes that client only", async () => {
  await using server = await TestServer.start(["--processes", "1", "--threads", "1"], FAULTS);
  await using victim = await server.connect();
  await victim.hello();
  await using neighbour = await server.connect();
  await neighbour.hello();
  await join(neighbour, "neighbour");
  await join(victim, "victim");
  assert.equal(await neighbour.readLine(), "JOINED victim");

  await victim.send("FAULT throw");

  await victim.expectEof();
  assert.equal(await neighbour.readLine(), "LEFT victim");
  const failed = await server.waitForLog({ msg: "client handler failed, client closed" });
  assert.equal(failed.p_id, "0");
  assert.equal(failed.t_id, "0");
  await neighbour.send("PING same thread");
  assert.equal(await neighbour.readLine(), "PONG same thread");
  assert.equal(count(server, "thread died") + count(server, "child exited"), 0);
});

Deno.test("a thread that dies is restarted with its t_id; its users are freed; other threads go on", async () => {
  await using server = await TestServer.start(
    ["--processes", "1", "--threads", "2", "--log-level", "debug"], // "thread listening"
    FAULTS,
  );
  await using doomed = await connectTo(server, (where) => where.tId === 0);
  await join(doomed, "doomed");
  await using survivor = await connectTo(server, (where) => where.tId === 1);
  await join(survivor, "survivor");
  assert.equal(await doomed.readLine(), "JOINED survivor");

  await doomed.send("FAULT thread");

  await doomed.expectEof();
  assert.equal(await survivor.readLine(), "LEFT doomed");
  await server.waitForLog({ msg: "thread died", t_id: 0 });
  await server.waitForLog({ msg: "thread listening", t_id: 0, ep: "0-0-0-1" });
  await using back = await connectTo(server, (where) => where.tId === 0);
  await join(back, "doomed");
  assert.equal(await survivor.readLine(), "JOINED doomed");
  assert.equal(count(server, "child exited"), 0);
});

Deno.test("a thread whose event loop hangs makes its process restart", async () => {
  await using server = await TestServer.start(
    ["--processes", "2", "--threads", "2", "--watchdog", "1"],
    FAULTS,
  );
  await using stuck = await connectTo(server, (where) => where.pId === 0 && where.tId === 1);
  await using bystander = await connectTo(server, (where) => where.pId === 1);
  const from = server.logs.length;

  await stuck.send("FAULT hang");

  const hung = await server.waitForLog({
    msg: "thread stopped answering heartbeats, restarting the process",
  });
  assert.equal(hung.p_id, "0");
  assert.equal(hung.t_id, "1");
  await stuck.expectEof();
  await server.waitForLog({ msg: "child exited", p_id: 0, code: 75 }, { from });
  await server.waitForLog({ msg: "child listening", p_id: 0 }, { from });
  await bystander.send("PING unaffected");
  assert.equal(await bystander.readLine(), "PONG unaffected");
});

Deno.test("a stopped child (SIGSTOP) is replaced within about 3 s on the default --watchdog", async () => {
  await using server = await TestServer.start(["--processes", "2", "--threads", "1"]);
  const [pid] = server.childPids().get(0)!;
  const from = server.logs.length;
  const stoppedAt = performance.now();
  Deno.kill(pid!, "SIGSTOP");
  // Default --watchdog 3 with a ping every 0.5 s: killed 3 to 4 s after the stop.
  const killed = await server.waitForLog(
    { msg: "child stopped answering heartbeats, killing it", p_id: 0 },
    { from, timeoutMs: 4500 },
  );
  const seconds = (performance.now() - stoppedAt) / 1000;
  assert.equal(killed.watchdog_s, "3");
  assert.ok(seconds >= 3 && seconds < 4.5, `${seconds} s`);
  await server.waitForLog({ msg: "child listening", p_id: 0 }, { from, timeoutMs: 10_000 });
  await using fresh = await connectTo(server, (where) => where.pId === 0);
  await fresh.send("PING back");
  assert.equal(await fresh.readLine(), "PONG back");
});

Deno.test("a child whose event loop hangs is killed by the supervisor's watchdog and respawned", async () => {
  await using server = await TestServer.start(
    ["--processes", "2", "--threads", "1", "--watchdog", "1"],
    FAULTS,
  );
  await using victim = await connectTo(server, (where) => where.pId === 0);
  await using bystander = await connectTo(server, (where) => where.pId === 1);
  const from = server.logs.length;

  await victim.send("FAULT hang-process");

  const killed = await server.waitForLog({ msg: "child stopped answering heartbeats, killing it" });
  assert.equal(killed.p_id, "0");
  await server.waitForLog({ msg: "child listening", p_id: 0 }, { from });
  await bystander.send("PING unaffected");
  assert.equal(await bystander.readLine(), "PONG unaffected");
  await using fresh = await connectTo(server, (where) => where.pId === 0);
  await fresh.send("PING new");
  assert.equal(await fresh.readLine(), "PONG new");
});

Deno.test("a child that lived 1 s is respawned at once; crash loops are backed off 100, 200, 400 ms", async () => {
  await using server = await TestServer.start(["--processes", "1", "--threads", "1"], FAULTS);
  const time = (fields: Record<string, string>) => Date.parse(fields.time!);
  /** Makes the current child exit with code 70; returns its exit and its successor's start. */
  const crash = async () => {
    const from = server.logs.length;
    await using client = await server.connect();
    await client.hello();
    await client.send("FAULT exit");
    await client.expectEof();
    const exited = await server.waitForLog({ msg: "child exited", code: 70 }, { from });
    const started = await server.waitForLog({ msg: "child started" }, { from });
    await server.waitForLog({ msg: "child listening", pid: started.pid! }, { from });
    const delayed = server.parsedLogs().slice(from).filter((fields) =>
      fields.msg === "child is crash-looping, respawn delayed"
    );
    return { exited, started, delayed, pid: Number(started.pid) };
  };
  const longLived = async (pid: number) => {
    await waitForUptime(pid, CRASH_LOOP_UPTIME_MS + 50);
    const { exited, started, delayed } = await crash();
    assert.ok(Number(exited.uptime_ms) >= CRASH_LOOP_UPTIME_MS);
    assert.deepEqual(delayed, [], "a child that lived 1 s or more is not crash-looping");
    // At once: well before the first backoff step would have let it start.
    const gap = time(started) - time(exited);
    assert.ok(gap < 100, `respawned ${gap} ms after the exit`);
    return Number(started.pid);
  };

  let pid = await longLived(server.childPids().get(0)![0]!);
  // Each child now dies within 1 s of its start: the delay doubles.
  for (const expected of [100, 200, 400]) {
    const { exited, started, delayed } = await crash();
    assert.ok(Number(exited.uptime_ms) < CRASH_LOOP_UPTIME_MS);
    assert.equal(delayed.length, 1);
    assert.equal(delayed[0]!.delay_ms, String(expected));
    const gap = time(started) - time(exited);
    assert.ok(gap >= expected, `respawned ${gap} ms after the exit, not after ${expected}`);
    pid = Number(started.pid);
  }
  // A child that lives 1 s again resets the count: its crash is respawned at once, and the
  // next quick one starts again at 100 ms.
  await longLived(pid);
  const { delayed } = await crash();
  assert.equal(delayed[0]?.delay_ms, "100");
});

Deno.test("malformed datagrams written into the runtime directory are logged and dropped", async () => {
  await using server = await TestServer.start(["--processes", "1", "--threads", "1"]);
  const dir = server.runtimeDir();
  const mode = Deno.statSync(dir).mode! & 0o777;
  assert.equal(mode, 0o700);
  const intruder = Deno.listenDatagram({ transport: "unixpacket", path: `${dir}/intruder.sock` });
  try {
    const garbage = [
      new Uint8Array([]),
      new Uint8Array([0xc1, 3, 255, 255, 255, 255]),
      new TextEncoder().encode('\xc1{"kind":"claim"}'),
      new Uint8Array([0xc1, 3, 5, 0, 0, 0, 0x7b, 0x22, 0x6b, 0x22, 0x7d]),
      crypto.getRandomValues(new Uint8Array(1000)),
    ];
    for (const target of ["supervisor.sock", "0-0-0-0.sock"]) {
      for (const datagram of garbage) {
        await intruder.send(datagram, { transport: "unixpacket", path: `${dir}/${target}` });
      }
    }
    // Rate-limited: one line per endpoint now, the rest counted in a summary later.
    await server.waitForLog({ msg: "malformed datagram dropped", ep: "supervisor" });
    await server.waitForLog({ msg: "malformed datagram dropped", ep: "0-0-0-0" });
    await using client = await server.connect();
    await client.hello();
    await join(client, "survivor");
    assert.equal(count(server, "child exited"), 0);
  } finally {
    intruder.close();
  }
});

Deno.test("15,000 junk datagrams log a handful of warning lines that count them all", async () => {
  await using server = await TestServer.start(["--processes", "1", "--threads", "1"]);
  const dir = server.runtimeDir();
  const intruder = Deno.listenDatagram({ transport: "unixpacket", path: `${dir}/intruder.sock` });
  try {
    const junk = new Uint8Array([0xc1, 9, 0, 0, 0, 0]); // a record of an unknown kind
    for (let i = 0; i < 15_000; i++) {
      await intruder.send(junk, { transport: "unixpacket", path: `${dir}/0-0-0-0.sock` });
    }
    const lines = () =>
      server.parsedLogs().filter((fields) => fields.msg === "malformed datagram dropped");
    // The first is logged at once; the other 14,999 in one summary when the 10 s interval
    // after it ends.
    await waitUntil(
      () => lines().reduce((sum, fields) => sum + Number(fields.suppressed ?? 1), 0) === 15_000,
      20_000,
      `15,000 datagrams counted in the warnings (${JSON.stringify(lines())})`,
    );
    assert.ok(lines().length <= 3, `${lines().length} lines`);
    assert.equal(lines()[0]!.error, "DatagramError: Bad record: unknown kind 9");
    await using client = await server.connect();
    await client.hello();
    await join(client, "survivor");
  } finally {
    intruder.close();
  }
});

Deno.test("forged chat records with control characters or invalid UTF-8 reach no client", async () => {
  await using server = await TestServer.start(["--processes", "1", "--threads", "1"]);
  const dir = server.runtimeDir();
  await using client = await server.connect();
  await client.hello();
  await join(client, "alice");
  const thread = [...Deno.readDirSync(dir)].map((file) => file.name)
    .filter((name) => /^\d+-\d+-\d+-\d+\.sock$/.test(name));
  assert.equal(thread.length, 1, `one thread socket: ${thread}`);
  const intruder = Deno.listenDatagram({ transport: "unixpacket", path: `${dir}/intruder.sock` });
  try {
    const line = (...bytes: number[]) =>
      new Uint8Array([...new TextEncoder().encode("ALL mallory "), ...bytes, 10]);
    const esc = [0x1b, 0x5b, 0x33, 0x31, 0x6d, 0x78]; // ESC [31m x
    const forged = [
      encodeRoom(line(...esc)),
      encodeRoom(line(0xff, 0x78)), // invalid UTF-8
      encodeRoom(line(0xc2, 0x9b, 0x78)), // C1 CSI
      encodeRoom(line(0x07)), // BEL
      encodeDirect(1, "alice", line(...esc)), // the first session of the thread: alice
      // A record that passes, sent last from the same socket: once alice has it, every
      // record before it was handled.
      encodeRoom(line(0x6d, 0x61, 0x72, 0x6b, 0x65, 0x72)),
    ];
    const from = server.logs.length;
    for (const record of forged) {
      await intruder.send(new Uint8Array([MAGIC, ...record]), {
        transport: "unixpacket",
        path: `${dir}/${thread[0]}`,
      });
    }
    assert.equal(await client.readLine(), "ALL mallory marker");
    const warning = await server.waitForLog({ msg: "malformed datagram dropped" }, { from });
    assert.equal(warning.error, "DatagramError: Bad record: the line holds a control character");
    await client.send("PING after");
    assert.equal(await client.readLine(), "PONG after");
  } finally {
    intruder.close();
  }
});

Deno.test("a killed run's real stale sockets in a reused --runtime-dir are not in the way of a restart on its port", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chatd-stale-" });
  try {
    const old = await TestServer.start([
      "--runtime-dir",
      dir,
      "--processes",
      "2",
      "--threads",
      "1",
    ]);
    let port: number;
    let oldRun: string;
    try {
      port = old.port;
      oldRun = old.runtimeDir();
      await using client = await old.connect();
      await client.hello();
      await join(client, "fresh");
      // kill -9 of the whole run at once: nobody is left to clean up. Stopped first, so that
      // no child sees its supervisor gone and removes the directory before its own kill.
      const pids = [old.process.pid, ...[...old.childPids().values()].flat()];
      for (const pid of pids) Deno.kill(pid, "SIGSTOP");
      for (const pid of pids) Deno.kill(pid, "SIGKILL");
      await withTimeout(old.status, 10_000, "the old supervisor's exit");
      await waitUntil(() => pids.every(processGone), 5000, "the old run gone");
    } finally {
      await old[Symbol.asyncDispose]();
    }
    // The killed run's own directory is inside the given one, with its real sockets left.
    assert.equal(oldRun.slice(0, dir.length + 1), `${dir}/`);
    const stale = [...Deno.readDirSync(oldRun)].map((file) => file.name);
    assert.ok(stale.includes("supervisor.sock"), `stale files: ${stale}`);
    for (const name of stale) assert.ok(Deno.lstatSync(`${oldRun}/${name}`).isSocket, name);

    await using server = await TestServer.start(["--runtime-dir", dir, "--port", String(port)]);
    assert.equal(server.port, port);
    // A fresh directory of its own: nothing of the killed run is reused.
    assert.notEqual(server.runtimeDir(), oldRun);
    assert.equal(server.runtimeDir().slice(0, dir.length + 1), `${dir}/`);
    await using client = await server.connect();
    await client.hello();
    await join(client, "fresh");
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("no descriptor or socket-file leaks after 5000 JOIN/LEAV cycles and 20 respawns", async () => {
  await using server = await TestServer.start([
    "--processes",
    "2",
    "--threads",
    "2",
    "--rate",
    "0",
  ]);
  const dir = server.runtimeDir();
  const fds = (pid: number) => [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
  const files = () => [...Deno.readDirSync(dir)].map((file) => file.name).sort();
  const childFds = () => [...server.childPids().values()].map(([pid]) => fds(pid!)).sort();
  // A room message from every thread first, so that every outbox between the threads exists
  // before the baseline (a thread makes its outboxes as it first sends).
  const warm = async (i: number, where: { pId: number; tId: number }) => {
    await using client = await connectTo(
      server,
      ({ pId, tId }) => pId === where.pId && tId === where.tId,
    );
    await join(client, `warm${i}`);
    await client.send("CHAT * hi");
    await client.send("LEAV");
    while ((await client.readLine()) !== "BYE");
  };
  const threads = [0, 1].flatMap((pId) => [0, 1].map((tId) => ({ pId, tId })));
  for (const [i, where] of threads.entries()) await warm(i, where);
  const before = { supervisor: fds(server.process.pid), children: childFds(), files: files() };

  let cycles = 0;
  await Promise.all(Array.from({ length: 10 }, async (_, worker) => {
    for (let i = 0; i < 500; i++) {
      await using client = await server.connect();
      await client.hello();
      await join(client, `c${worker}x${i}`);
      await client.send("LEAV");
      while ((await client.readLine()) !== "BYE");
      cycles++;
    }
  }));
  // 20 respawns: every child killed, 10 times over. A child killed within 1 s of its start
  // counts as crash-looping and is respawned with a delay, so each one lives past 1 s first.
  for (let round = 0; round < 10; round++) {
    const from = server.logs.length;
    const pids = [...server.childPids().values()].map(([pid]) => pid!);
    // The supervisor counts a life from just after its spawn call returns, which on a busy
    // machine can be a few hundred ms after the kernel's start time read here.
    for (const pid of pids) await waitForUptime(pid, CRASH_LOOP_UPTIME_MS + 400);
    for (const pid of pids) Deno.kill(pid, "SIGKILL");
    for (const pId of [0, 1]) {
      await server.waitForLog({ msg: "child listening", p_id: pId }, { from });
    }
  }
  const respawns = server.parsedLogs().filter((fields) => fields.msg === "child started").length;
  assert.equal(respawns, 20); // the first 2 starts are logged at debug (start-up)
  assert.equal(count(server, "child is crash-looping, respawn delayed"), 0);
  for (const [i, where] of threads.entries()) await warm(100 + i, where);

  assert.equal(cycles, 5000);
  await waitUntil(
    () => fds(server.process.pid) === before.supervisor,
    5000,
    `supervisor descriptors back to ${before.supervisor} (now ${fds(server.process.pid)})`,
  );
  // The children are new processes after the respawns: none may hold more than any did.
  const most = Math.max(...before.children);
  await waitUntil(
    () => childFds().every((count) => count <= most),
    5000,
    `child descriptors back to at most ${most} (now ${childFds()})`,
  );
  // Socket files are named by endpoint, which changes with each respawn: compare the count.
  await waitUntil(
    () => files().length === before.files.length,
    5000,
    `runtime dir back to ${before.files.length} files (now ${files()})`,
  );
});
