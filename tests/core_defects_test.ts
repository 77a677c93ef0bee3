/**
 * End-to-end reproductions of the chat-core defects of issue 10, on a 1×1 server.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join, TestServer } from "./test_util.ts";

const ONE_BY_ONE = ["--processes", "1", "--threads", "1"];

Deno.test("LEAV before JOIN still sends BYE and every reply queued with it (defect 1)", async (t) => {
  await using server = await TestServer.start(ONE_BY_ONE);
  await t.step("alone", async () => {
    await using client = await server.connect();
    await client.hello();
    await client.send("LEAV");
    assert.equal(await client.readLine(), "BYE");
    await client.expectEof();
  });
  await t.step("with a reply in the same read", async () => {
    await using client = await server.connect();
    await client.hello();
    await client.send("PING x\nLEAV");
    assert.equal(await client.readLine(), "PONG x");
    assert.equal(await client.readLine(), "BYE");
    await client.expectEof();
  });
});

Deno.test("a connection closed by its join timeout while rate-limited never joins (defect 2)", async () => {
  await using server = await TestServer.start([
    ...ONE_BY_ONE,
    "--rate",
    "2",
    "--burst",
    "1",
    "--join-timeout",
    "0.3",
  ]);
  await using alice = await server.connect();
  await alice.hello();
  await join(alice, "alice");
  await using ghost = await server.connect();
  await ghost.hello();
  // PING takes the one token; JOIN then waits 500 ms, and the timeout fires after 300.
  await ghost.send("PING\nJOIN ghost");
  assert.equal(await ghost.readLine(), "PONG");
  assert.equal(await ghost.readLine(), "ERR TIMEOUT no JOIN in time");
  await ghost.expectEof();
  // Alice's second PING waits for a token too, and its timer was set after the ghost's:
  // once its PONG is back, the ghost's JOIN has had its turn on this one thread.
  await alice.send("PING 1\nPING 2");
  assert.equal(await alice.readLine(), "PONG 1");
  assert.equal(await alice.readLine(2000), "PONG 2");
  await using bob = await server.connect();
  await bob.hello();
  await join(bob, "bob");
  // Bob's claim went to the directory after any claim of the ghost's: JOINED bob comes first.
  assert.equal(await alice.readLine(), "JOINED bob");
  await alice.send("WHO");
  assert.equal(await alice.readLine(), "USERS 2 alice bob");
});
