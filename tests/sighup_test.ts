import assert from "node:assert/strict";
import { TestServer, withTimeout } from "./test_util.ts";

/** A config file in a fresh temp dir, removed on dispose. */
function configFile(text: string): { path: string } & Disposable {
  const dir = Deno.makeTempDirSync({ prefix: "chatd-conf-" });
  const path = `${dir}/chatd.conf`;
  Deno.writeTextFileSync(path, text);
  return { path, [Symbol.dispose]: () => Deno.removeSync(dir, { recursive: true }) };
}

async function ping(server: TestServer, token: string): Promise<void> {
  await using client = await server.connect();
  await client.hello();
  await client.send(`PING ${token}`);
  assert.equal(await client.readLine(), `PONG ${token}`);
}

const debugLines = (server: TestServer) =>
  server.parsedLogs().filter((fields) => fields.level === "debug");

Deno.test("SIGHUP re-reads --config: the new log level reaches every process, still serves, exit 0", async () => {
  using conf = configFile("log-level = info\n");
  const server = await TestServer.start([
    "--processes",
    "2",
    "--threads",
    "1",
    "--config",
    conf.path,
  ]);
  assert.deepEqual(debugLines(server), []);
  const from = server.logs.length;
  Deno.writeTextFileSync(conf.path, "log-level = debug\nrate = 5\nthreads = 3\n");

  server.signal("SIGHUP");

  await server.waitForLog({ msg: "SIGHUP: config reloaded", log_level: "debug" }, { from });
  const restart = await server.waitForLog({
    msg: "SIGHUP: these settings changed but apply only after a restart",
  }, { from });
  // --threads 1 on the command line wins over the file: no change there.
  assert.equal(restart.settings, "rate");
  for (const pId of [0, 1]) {
    await server.waitForLog({ msg: "log level changed", p_id: pId, log_level: "debug" }, { from });
  }
  await ping(server, "after SIGHUP");
  // A child started after the reload runs at the new level too: its start-up is at debug.
  const [victim] = server.childPids().get(0)!;
  Deno.kill(victim!, "SIGKILL");
  await server.waitForLog({ msg: "process started", level: "debug", p_id: 0 }, { from });
  await server.waitForLog({ msg: "child listening", p_id: 0 }, { from });
  await ping(server, "after the respawn");

  server.signal("SIGTERM");
  const status = await withTimeout(server.status, 10_000, "exit");
  assert.equal(status.code, 0);
  assert.equal(status.signal, null);
});

Deno.test("a terminal hang-up (SIGHUP to every process) without --config stops nothing", async () => {
  const server = await TestServer.start(["--processes", "2", "--threads", "2"]);
  const children = [...server.childPids().values()].flat().sort();
  assert.equal(children.length, 2);

  for (const pid of [server.process.pid, ...children]) Deno.kill(pid, "SIGHUP");

  await server.waitForLog({ msg: "SIGHUP: no --config file, nothing to reload" });
  await ping(server, "after the hang-up");
  assert.deepEqual([...server.childPids().values()].flat().sort(), children);
  assert.equal(server.parsedLogs().some((fields) => fields.msg === "child exited"), false);

  server.signal("SIGTERM");
  assert.equal((await withTimeout(server.status, 10_000, "exit")).code, 0);
});

Deno.test("SIGHUP with a broken --config keeps the running settings and says why", async () => {
  using conf = configFile("log-level = warning\n");
  await using server = await TestServer.start([
    "--processes",
    "1",
    "--threads",
    "1",
    "--config",
    conf.path,
  ]);
  Deno.writeTextFileSync(conf.path, "log-level = loud\n");

  server.signal("SIGHUP");

  const error = await server.waitForLog({
    msg: "SIGHUP: config not reloaded, the running settings stay",
  });
  assert.match(error.error!, /^Invalid --log-level loud/);
  await ping(server, "still here");
  assert.equal(
    server.parsedLogs().some((fields) => fields.msg === "SIGHUP: config reloaded"),
    false,
  );
});
