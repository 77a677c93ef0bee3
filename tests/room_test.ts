import assert from "node:assert/strict";
import { connectTo, join, joinAs, type LineClient, TestServer } from "./test_util.ts";
import { expectNothingPending, joinAtOnce, joinUsers, linesBefore } from "./_rooms.ts";

/**
 * Joins users `u0`..`u<count-1>` one after another into `users` (filled as they join, so the
 * caller can close them however this ends) and checks that each earlier user hears every
 * later one's `JOINED`, in order.
 */
async function joinRoom(server: TestServer, count: number, users: LineClient[]): Promise<void> {
  for (let i = 0; i < count; i++) {
    const client = await server.connect();
    users.push(client);
    await client.hello();
    await join(client, `u${i}`);
  }
  for (const [i, user] of users.entries()) {
    const expected = users.slice(i + 1).map((_, j) => `JOINED u${i + 1 + j}`);
    assert.deepEqual(await user.readLines(expected.length), expected);
  }
}

Deno.test("three users on three processes: JOINED notices, room messages, LEFT on LEAV and on disconnect", async (t) => {
  await using server = await TestServer.start(["--processes", "3", "--threads", "1"]);
  // Connected before anyone joins, on every process: it must hear none of what follows.
  const lurkers: LineClient[] = [];
  const users: LineClient[] = [];
  try {
    for (let pId = 0; pId < 3; pId++) {
      lurkers.push(await connectTo(server, (where) => where.pId === pId));
    }
    await joinUsers(server, ["ann", "ben", "cat"], users);
    const [ann, ben, cat] = users as [LineClient, LineClient, LineClient];
    await t.step("nobody sees their own JOINED", async () => {
      for (const user of [ann, ben, cat]) await expectNothingPending(user);
    });
    await t.step("a room message reaches both others, not the sender", async () => {
      await ben.send("CHAT * hello   everyone ");
      assert.equal(await ann.readLine(), "ALL ben hello   everyone ");
      assert.equal(await cat.readLine(), "ALL ben hello   everyone ");
      await expectNothingPending(ben);
    });
    await t.step("clients that have not joined get nothing", async () => {
      await using lurker = await server.connect();
      await lurker.hello();
      await cat.send("CHAT * anyone?");
      assert.equal(await ann.readLine(), "ALL cat anyone?");
      assert.equal(await ben.readLine(), "ALL cat anyone?");
      await expectNothingPending(lurker);
    });
    await t.step("LEAV produces LEFT", async () => {
      await cat.send("LEAV");
      assert.equal(await cat.readLine(), "BYE");
      assert.equal(await ann.readLine(), "LEFT cat");
      assert.equal(await ben.readLine(), "LEFT cat");
    });
    await t.step("a dropped connection produces LEFT", async () => {
      ben.close();
      assert.equal(await ann.readLine(), "LEFT ben");
      await expectNothingPending(ann);
    });
    await t.step("clients that have not joined got no JOINED, ALL or LEFT", async () => {
      for (const lurker of lurkers) await expectNothingPending(lurker);
    });
  } finally {
    for (const client of [...lurkers, ...users]) client.close();
  }
});

Deno.test("a user's JOINED comes before anything it says, and its last words before its LEFT", async () => {
  await using server = await TestServer.start(["--processes", "3", "--threads", "2"]);
  await using watcher = await connectTo(server, (where) => where.pId === 0);
  await join(watcher, "watcher");
  for (let round = 0; round < 10; round++) {
    await using talker = await connectTo(server, (where) => where.pId !== 0);
    // JOIN, speak and leave in one write: the order must hold even so.
    await talker.send(`JOIN talker${round}\nCHAT * first words\nCHAT * last words\nLEAV`);
    assert.deepEqual(await watcher.readLines(4), [
      `JOINED talker${round}`,
      `ALL talker${round} first words`,
      `ALL talker${round} last words`,
      `LEFT talker${round}`,
    ]);
  }
});

Deno.test("200 room messages from one sender reach every other user complete and in order", async () => {
  await using server = await TestServer.start([
    "--processes",
    "3",
    "--threads",
    "2",
    "--rate",
    "0",
  ]);
  const users: LineClient[] = [];
  try {
    await joinRoom(server, 6, users);
    const [sender, ...receivers] = users as [LineClient, ...LineClient[]];
    const lines = Array.from({ length: 200 }, (_, i) => `CHAT * message ${i}\n`).join("");
    await sender.sendBytes(new TextEncoder().encode(lines));
    for (const receiver of receivers) {
      for (let i = 0; i < 200; i++) assert.equal(await receiver.readLine(), `ALL u0 message ${i}`);
    }
    await expectNothingPending(sender);
  } finally {
    for (const user of users) user.close();
  }
});

Deno.test("killing a child produces LEFT for each of its users at every other user", async () => {
  await using server = await TestServer.start(["--processes", "3", "--threads", "2"]);
  const doomed: string[] = [];
  const survivors: LineClient[] = [];
  const all: LineClient[] = [];
  try {
    await joinUsers(server, Array.from({ length: 9 }, (_, i) => `n${i}`), all);
    for (const [i, client] of all.entries()) {
      if (i % 3 === 2) doomed.push(`n${i}`);
      else survivors.push(client);
    }
    const [pid] = server.childPids().get(2)!;
    Deno.kill(pid!, "SIGKILL");
    for (const survivor of survivors) {
      const lines = await survivor.readLines(doomed.length);
      assert.deepEqual(lines.sort(), doomed.map((name) => `LEFT ${name}`).sort());
      await expectNothingPending(survivor);
    }
  } finally {
    for (const client of all) client.close();
  }
});

Deno.test("of two users who join at once, exactly one hears JOINED of the other: nobody is missed", async () => {
  await using server = await TestServer.start(["--processes", "3", "--threads", "2"]);
  const count = 30;
  const clients = await Promise.all(Array.from({ length: count }, () => server.connect()));
  try {
    // Held notices come after OK JOIN, so every client has seen none yet.
    await joinAtOnce(clients);
    // The supervisor sends every change to a thread in order: once a client has read
    // JOINED last, it has read every notice of the joins before.
    await using _last = await joinAs(server, "last");
    const heard = await Promise.all(clients.map((client) => linesBefore(client, "JOINED last")));
    for (let a = 0; a < count; a++) {
      for (let b = a + 1; b < count; b++) {
        const aHeardB = heard[a]!.has(`JOINED u${b}`);
        const bHeardA = heard[b]!.has(`JOINED u${a}`);
        assert.ok(aHeardB !== bHeardA, `u${a} and u${b}: ${aHeardB} and ${bHeardA}`);
      }
    }
  } finally {
    for (const client of clients) client.close();
  }
});

Deno.test("one sender's room and direct messages to a member keep their order, though they are written in different rounds", async () => {
  // Room output is copied into the thread's shared chunks and direct messages are the
  // member's own lines (src/_output_queue.ts): the direct message must go after the room
  // message queued before it. 100 members on one thread make the rounds large.
  await using server = await TestServer.start([
    "--processes",
    "1",
    "--threads",
    "1",
    "--rate",
    "0",
  ]);
  const users: LineClient[] = [];
  try {
    await joinRoom(server, 100, users);
    const [sender, first, ...others] = users as [LineClient, LineClient, ...LineClient[]];
    const lines = Array.from({ length: 100 }, (_, i) => `CHAT * room ${i}\nCHAT u1 direct ${i}\n`);
    await sender.sendBytes(new TextEncoder().encode(lines.join("")));
    const expectedFirst = Array.from(
      { length: 100 },
      (_, i) => [`ALL u0 room ${i}`, `FROM u0 direct ${i}`],
    ).flat();
    assert.deepEqual(await first.readLines(200), expectedFirst);
    const expectedOthers = Array.from({ length: 100 }, (_, i) => `ALL u0 room ${i}`);
    for (const other of others) assert.deepEqual(await other.readLines(100), expectedOthers);
    await expectNothingPending(sender);
    await expectNothingPending(first);
  } finally {
    for (const user of users) user.close();
  }
});
