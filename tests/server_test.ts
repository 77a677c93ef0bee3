import assert from "node:assert/strict";
import { HELP_LINES } from "../src/protocol.ts";
import { join, serverCommand, TestServer, waitUntil, withTimeout } from "./test_util.ts";

Deno.test("a client is greeted and gets PONG, HELP and ERR BAD_COMMAND", async () => {
  await using server = await TestServer.start();
  await using client = await server.connect();
  await client.hello();
  assert.match(
    client.greeting,
    /^HELLO chatd 0\.1\.0 p=[01] t=[01] — JOIN <name> to start, HELP for commands$/,
  );
  await client.send("PING");
  assert.deepEqual(await client.readLine(), "PONG");
  await client.send("PING 12345 abc");
  assert.deepEqual(await client.readLine(), "PONG 12345 abc");
  await client.send("HELP");
  assert.deepEqual(await client.readLines(HELP_LINES.length), HELP_LINES);
  await client.send("FROB x");
  assert.deepEqual(await client.readLine(), "ERR BAD_COMMAND FROB");
  // The connection stays open; verbs are case-insensitive; empty lines are ignored; CRLF works.
  await client.sendBytes(new TextEncoder().encode("\n\r\nping crlf\r\n"));
  assert.deepEqual(await client.readLine(), "PONG crlf");
});

Deno.test("with 3 processes of 2 threads, 60 connections spread over processes and threads", async () => {
  await using server = await TestServer.start(["--processes", "3", "--threads", "2"]);
  const clients = await Promise.all(Array.from({ length: 60 }, () => server.connect()));
  try {
    const places = await Promise.all(clients.map((client) => client.hello()));
    const processes = new Set(places.map((place) => place.pId));
    const threads = new Set(places.map((place) => `${place.pId}/${place.tId}`));
    assert.ok(processes.size > 1, `all 60 on one process: ${[...processes]}`);
    assert.ok(threads.size > processes.size, `one thread per process only: ${[...threads]}`);
    for (const place of places) assert.ok(place.pId < 3 && place.tId < 2);
  } finally {
    for (const client of clients) client.close();
  }
});

Deno.test("bad flags exit with code 2 and a message; --help and --version exit 0", async (t) => {
  const run = async (args: string[]) => {
    const output = await withTimeout(serverCommand(args).output(), 15_000, `chatd ${args}`);
    return {
      code: output.code,
      stdout: new TextDecoder().decode(output.stdout),
      stderr: new TextDecoder().decode(output.stderr),
    };
  };
  await t.step("unknown flag", async () => {
    const result = await run(["--prot", "1"]);
    assert.deepEqual(result.code, 2);
    assert.match(result.stderr, /^chatd: Unknown option '--prot'/);
  });
  await t.step("value out of range", async () => {
    const result = await run(["--port", "70000"]);
    assert.deepEqual(result.code, 2);
    assert.match(result.stderr, /^chatd: Invalid --port 70000: must be between 0 and 65535/);
  });
  await t.step("not a number", async () => {
    const result = await run(["--threads", "many"]);
    assert.deepEqual(result.code, 2);
    assert.match(result.stderr, /^chatd: Invalid --threads many: not a number/);
  });
  await t.step("--help", async () => {
    const result = await run(["--help"]);
    assert.deepEqual(result.code, 0);
    assert.ok(result.stdout.startsWith("chatd 0.1.0: "), result.stdout);
    assert.ok(result.stdout.includes("\n\nUsage:\n  chatd [options]"), result.stdout);
    assert.match(result.stdout, /--clients-per-process N/);
  });
  await t.step("--version", async () => {
    const result = await run(["--version"]);
    assert.deepEqual(result.code, 0);
    assert.deepEqual(result.stdout, "chatd 0.1.0\n");
  });
});

Deno.test("a port in use gives one error line and exit code 1", async () => {
  using blocker = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const output = await withTimeout(
    serverCommand(["--port", String(blocker.addr.port)]).output(),
    15_000,
    "chatd on a busy port",
  );
  assert.deepEqual(output.code, 1);
  assert.deepEqual(
    new TextDecoder().decode(output.stderr),
    `chatd: Cannot bind 127.0.0.1:${blocker.addr.port}: address in use\n`,
  );
  assert.deepEqual(output.stdout.length, 0);
});

Deno.test("a client past --max-clients-per-thread gets ERR SERVER_FULL", async () => {
  await using server = await TestServer.start([
    "--processes",
    "1",
    "--threads",
    "1",
    "--max-clients-per-thread",
    "2",
  ]);
  await using first = await server.connect();
  await using second = await server.connect();
  await first.hello();
  await second.hello();
  await using third = await server.connect();
  assert.deepEqual(await third.readLine(), "ERR SERVER_FULL");
  await third.expectEof();
  // The others are served as before.
  await first.send("PING still");
  assert.deepEqual(await first.readLine(), "PONG still");
});

Deno.test("every client socket has TCP keepalive on (ss shows its keepalive timer)", async () => {
  await using server = await TestServer.start(["--processes", "1", "--threads", "1"]);
  await using client = await server.connect();
  await client.hello();
  await join(client, "idle");
  const local = client.conn.localAddr as Deno.NetAddr;
  // The server's side of this client's connection, as ss shows it.
  const serverSide = async () => {
    const output = await new Deno.Command("ss", {
      args: ["-tnoH", "state", "established", `( sport = :${server.port} )`],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    const lines = new TextDecoder().decode(output.stdout).trim().split("\n");
    const mine = lines.filter((line) => line.includes(`${local.hostname}:${local.port} `));
    assert.equal(mine.length, 1, lines.join("\n"));
    return mine[0]!;
  };
  // While a reply is unacknowledged ss shows the retransmission timer instead: wait it out.
  let line = "";
  await waitUntil(
    async () => {
      line = await serverSide();
      return !line.includes("timer:(on,");
    },
    5000,
    "the reply acknowledged",
  );
  assert.match(line, /timer:\(keepalive,/);
});
