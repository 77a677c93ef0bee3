import assert from "node:assert/strict";
import { startTarget } from "../bench/_targets.ts";
import { join, LineClient } from "./test_util.ts";

const GREETING = "HELLO chatd reference p=0 t=0 — JOIN <name> to start";

async function connect(port: number): Promise<LineClient> {
  const client = await LineClient.connect(port);
  assert.equal(await client.readLine(), GREETING);
  return client;
}

Deno.test("the reference server speaks chatd's protocol subset line for line", async () => {
  await using server = await startTarget("reference", { chatdArgs: [] });
  await using alice = await connect(server.port);
  await using bob = await connect(server.port);

  await join(alice, "alice");
  await bob.send("JOIN Alice");
  assert.equal(await bob.readLine(), "ERR NAME_TAKEN Alice");
  await join(bob, "bob");
  assert.equal(await alice.readLine(), "JOINED bob");
  await bob.send("JOIN again");
  assert.equal(await bob.readLine(), "ERR ALREADY_JOINED bob");

  await alice.send("CHAT bob hi  there");
  assert.equal(await bob.readLine(), "FROM alice hi  there");
  await alice.send("CHAT * to all");
  assert.equal(await bob.readLine(), "ALL alice to all");
  // The sender does not hear its own room message: its next line answers the next command.
  await alice.send("PING t1");
  assert.equal(await alice.readLine(), "PONG t1");
  await alice.send("CHAT nobody x\r\nWHO");
  assert.deepEqual(await alice.readLines(2), ["ERR NO_SUCH_USER nobody", "USERS 2 alice bob"]);

  await bob.send("LEAV");
  assert.equal(await bob.readLine(), "BYE");
  await bob.expectEof();
  assert.equal(await alice.readLine(), "LEFT bob");

  // A connection that closes without LEAV leaves all the same.
  const carol = await connect(server.port);
  await join(carol, "carol");
  assert.equal(await alice.readLine(), "JOINED carol");
  carol.close();
  assert.equal(await alice.readLine(), "LEFT carol");
});

Deno.test("the reference server refuses CHAT before JOIN and unknown verbs", async () => {
  await using server = await startTarget("reference", { chatdArgs: [] });
  await using client = await connect(server.port);
  await client.send("CHAT bob x");
  await client.send("frob");
  await client.send("JOIN bad*name");
  await client.send("PING");
  assert.deepEqual(await client.readLines(4), [
    "ERR NOT_JOINED",
    "ERR BAD_COMMAND FROB",
    "ERR BAD_NAME may contain only A-Z a-z 0-9 _ -",
    "PONG",
  ]);
});

Deno.test("the reference server survives bad input and a line split across reads", async () => {
  await using server = await startTarget("reference", { chatdArgs: [] });
  await using client = await connect(server.port);
  await client.sendBytes(new Uint8Array([0xff, 0xfe, 0x00, 10]));
  await client.sendBytes(new TextEncoder().encode("x".repeat(100_000)));
  await client.sendBytes(new TextEncoder().encode("\nPING a\nPI"));
  // The invalid bytes decode to U+FFFD and make an unknown verb; the long line is one too.
  const lines = await client.readLines(3);
  assert.match(lines[0]!, /^ERR BAD_COMMAND /);
  assert.match(lines[1]!, /^ERR BAD_COMMAND X/);
  // Past 64 KiB without a LF the start of a line is dropped, not kept growing.
  assert.ok(lines[1]!.length < 65536, `${lines[1]!.length} characters`);
  assert.equal(lines[2], "PONG a");
  // "PI" came with the line before, so it waits for the rest of its line.
  await client.sendBytes(new TextEncoder().encode("NG split\n"));
  assert.equal(await client.readLine(), "PONG split");
  // And it still serves new clients.
  await using other = await connect(server.port);
  await join(other, "still");
});
