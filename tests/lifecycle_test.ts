import assert from "node:assert/strict";
import { connectTo, processGone, TestServer, waitUntil, withTimeout } from "./test_util.ts";

Deno.test("kill -9 of a child: it is respawned with its p_id, other children's clients are untouched", async () => {
  await using server = await TestServer.start(["--processes", "3", "--threads", "1"]);
  await using victim = await connectTo(server, (where) => where.pId === 0);
  await using bystander = await connectTo(server, (where) => where.pId === 1);
  const [oldPid] = server.childPids().get(0)!;
  const from = server.logs.length;

  Deno.kill(oldPid!, "SIGKILL");

  await victim.expectEof();
  const started = await server.waitForLog({ msg: "child started", p_id: 0 }, { from });
  assert.notEqual(Number(started.pid), oldPid);
  await server.waitForLog({ msg: "child listening", p_id: 0, pid: started.pid! }, { from });
  await bystander.send("PING still here");
  assert.equal(await bystander.readLine(), "PONG still here");
  // New connections work, and reach the new child too.
  await using fresh = await connectTo(server, (where) => where.pId === 0);
  await fresh.send("PING new");
  assert.equal(await fresh.readLine(), "PONG new");
});

Deno.test("SIGINT: every client reads BYE shutting down then EOF; children, runtime dir gone; exit 0", async () => {
  const grace = 5;
  const server = await TestServer.start(["--processes", "2", "--threads", "2"]);
  const clients = await Promise.all(Array.from({ length: 8 }, () => server.connect()));
  await Promise.all(clients.map((client) => client.hello()));
  const pids = [...server.childPids().values()].flat();
  const runtimeDir = server.runtimeDir();
  assert.equal(pids.length, 2);
  const started = performance.now();

  server.signal("SIGINT");

  for (const client of clients) {
    assert.equal(await client.readLine(), "BYE shutting down");
    await client.expectEof();
    client.close();
  }
  const status = await withTimeout(server.status, grace * 1000 + 2000, "supervisor exit");
  assert.equal(status.code, 0);
  assert.ok(performance.now() - started < grace * 1000, "took longer than the grace period");
  for (const pid of pids) assert.ok(processGone(pid), `child ${pid} still running`);
  assert.throws(() => Deno.statSync(runtimeDir), Deno.errors.NotFound);
});

Deno.test("SIGKILL of the supervisor: every child exits within 2 s and cleans the runtime dir", async () => {
  await using server = await TestServer.start(["--processes", "3", "--threads", "1"]);
  const pids = [...server.childPids().values()].flat();
  const runtimeDir = server.runtimeDir();
  assert.equal(pids.length, 3);

  server.signal("SIGKILL");

  await waitUntil(() => pids.every(processGone), 2000, "children gone");
  await waitUntil(
    () => {
      try {
        Deno.statSync(runtimeDir);
        return false;
      } catch {
        return true;
      }
    },
    2000,
    "runtime dir removed",
  );
});

Deno.test("recycling: with --clients-per-process 3, 12 clients one after another are all served", async () => {
  const threads = 2;
  await using server = await TestServer.start([
    "--processes",
    "1",
    "--threads",
    String(threads),
    "--clients-per-process",
    "3",
  ]);
  const count = (msg: string) => server.parsedLogs().filter((fields) => fields.msg === msg).length;
  // A recycle is over when the replacement listens and the old listeners have closed.
  const recycled = () =>
    // (The first child's "child listening" is at debug: start-up is summed up in one line.)
    count("child listening") === count("process retiring") &&
    count("thread stopped accepting") === threads * count("process retiring");
  for (let i = 0; i < 12; i++) {
    await using client = await server.connect();
    await client.hello();
    await client.send(`PING ${i}`);
    assert.equal(await client.readLine(), `PONG ${i}`);
    // Each child serves exactly 3 clients once every recycle has finished.
    const retirements = Math.floor((i + 1) / 3);
    await waitUntil(
      () => count("process retiring") >= retirements && recycled(),
      10_000,
      `recycle ${retirements} finished`,
    );
  }
  const pids = new Set(
    server.parsedLogs().filter((fields) => fields.msg === "child started").map((f) => f.pid),
  );
  assert.ok(pids.size >= 4, `the child's pid changed only ${pids.size - 1} times`);
});

// Linux resets connections still queued on a SO_REUSEPORT listener when it closes, unless
// net.ipv4.tcp_migrate_req=1. Draining (accept until arrivals pause for 50 ms) leaves a
// window of microseconds: measured here at 0-3 resets in ~5500 connections and 22 recycles,
// against ~19000 without draining. The test bounds the rate so a broken drain fails it.
Deno.test("recycling: clients connecting without pause through recycles are served", async () => {
  await using server = await TestServer.start([
    "--processes",
    "1",
    "--threads",
    "2",
    "--clients-per-process",
    "10",
  ]);
  const deadline = performance.now() + 3000;
  let served = 0;
  const failures: string[] = [];
  while (performance.now() < deadline) {
    try {
      await using client = await server.connect();
      await client.hello();
      served++;
    } catch (error: unknown) {
      failures.push(String(error));
    }
  }
  const retirements = server.parsedLogs().filter((f) => f.msg === "process retiring").length;
  console.log(
    `served ${served} clients through ${retirements} recycles, ${failures.length} failed`,
  );
  assert.ok(retirements >= 2, `only ${retirements} recycles`);
  const migrating = Deno.readTextFileSync("/proc/sys/net/ipv4/tcp_migrate_req").trim() === "1";
  if (migrating) assert.deepEqual(failures, []);
  else assert.ok(failures.length <= served * 0.002, `${failures.length} of ${served} failed`);
});
