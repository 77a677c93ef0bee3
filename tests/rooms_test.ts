import assert from "node:assert/strict";
import { connectTo, join, joinAs, type LineClient, TestServer } from "./test_util.ts";
import { expectNothingPending, joinAtOnce, joinUsers, linesBefore } from "./_rooms.ts";

/** A 3×2 server: three processes of two threads. */
const SERVER = ["--processes", "3", "--threads", "2"];

/** Sends `JOIN room` and expects `OK JOIN shown` then `USERS shown ...` as given. */
async function enter(client: LineClient, room: string, shown: string, users: string) {
  await client.send(`JOIN ${room}`);
  assert.deepEqual(await client.readLines(2), [`OK JOIN ${shown}`, `USERS ${shown} ${users}`]);
}

function closeAll(clients: LineClient[]): void {
  for (const client of clients) client.close();
}

Deno.test("named rooms across processes: notices, messages only to members, WHO, ROOMS, PART, disconnect", async (t) => {
  await using server = await TestServer.start(SERVER);
  const users: LineClient[] = [];
  try {
    await joinUsers(server, ["ann", "ben", "cat", "dan"], users);
    const [ann, ben, cat, dan] = users as [LineClient, LineClient, LineClient, LineClient];
    await t.step("the first member creates the room, spelled as it spelled it", async () => {
      await enter(ann, "#Tea", "#Tea", "1 ann");
    });
    await t.step("later members get its spelling, and members hear JOINED #room", async () => {
      await enter(ben, "#tea", "#Tea", "2 ann ben");
      assert.equal(await ann.readLine(), "JOINED #Tea ben");
      await enter(cat, "#TEA", "#Tea", "3 ann ben cat");
      assert.equal(await ann.readLine(), "JOINED #Tea cat");
      assert.equal(await ben.readLine(), "JOINED #Tea cat");
    });
    await t.step("a room message reaches the other members only", async () => {
      await ben.send("CHAT #tea hi   there ");
      assert.equal(await ann.readLine(), "ROOM #Tea ben hi   there ");
      assert.equal(await cat.readLine(), "ROOM #Tea ben hi   there ");
      for (const user of [ann, ben, cat, dan]) await expectNothingPending(user);
    });
    await t.step(
      "WHO #room works for a non-member; ROOMS lists the room with its count",
      async () => {
        await dan.send("WHO #TeA");
        assert.equal(await dan.readLine(), "USERS #Tea 3 ann ben cat");
        await enter(dan, "#Coffee", "#Coffee", "1 dan");
        await dan.send("ROOMS");
        assert.equal(await dan.readLine(), "ROOMS 2 #Coffee=1 #Tea=3");
      },
    );
    await t.step(
      "PART: OK PART, LEFT #room to the others, then the room is closed to it",
      async () => {
        await cat.send("PART #tea");
        assert.equal(await cat.readLine(), "OK PART #Tea");
        assert.equal(await ann.readLine(), "LEFT #Tea cat");
        assert.equal(await ben.readLine(), "LEFT #Tea cat");
        await cat.send("CHAT #tea still here?");
        assert.equal(await cat.readLine(), "ERR NOT_IN_ROOM #tea");
        await ann.send("CHAT #Tea after");
        assert.equal(await ben.readLine(), "ROOM #Tea ann after");
        await expectNothingPending(cat);
      },
    );
    await t.step(
      "a disconnect: LEFT #room in each of its rooms, before the lobby's LEFT",
      async () => {
        await enter(ben, "#Coffee", "#Coffee", "2 ben dan");
        assert.equal(await dan.readLine(), "JOINED #Coffee ben");
        ben.close();
        assert.deepEqual(await ann.readLines(2), ["LEFT #Tea ben", "LEFT ben"]);
        assert.deepEqual(await dan.readLines(2), ["LEFT #Coffee ben", "LEFT ben"]);
        assert.equal(await cat.readLine(), "LEFT ben");
        await dan.send("ROOMS");
        assert.equal(await dan.readLine(), "ROOMS 2 #Coffee=1 #Tea=1");
      },
    );
    await t.step("LEAV: the same, and an empty room is gone", async () => {
      await ann.send("LEAV");
      assert.equal(await ann.readLine(), "BYE");
      assert.equal(await dan.readLine(), "LEFT ann");
      assert.equal(await cat.readLine(), "LEFT ann");
      await dan.send("ROOMS");
      assert.equal(await dan.readLine(), "ROOMS 1 #Coffee=1");
      await dan.send("WHO #tea");
      assert.equal(await dan.readLine(), "USERS #tea 0");
      for (const user of [cat, dan]) await expectNothingPending(user);
    });
  } finally {
    closeAll(users);
  }
});

Deno.test("a member's JOINED #room comes before anything it says there, its last words before its LEFT #room", async () => {
  await using server = await TestServer.start(SERVER);
  await using watcher = await connectTo(server, (where) => where.pId === 0);
  await join(watcher, "watcher");
  await enter(watcher, "#r", "#r", "1 watcher");
  for (let round = 0; round < 6; round++) {
    await using talker = await connectTo(server, (where) => where.pId !== 0);
    // All in one write: the order must hold even so.
    await talker.send(
      `JOIN t${round}\nJOIN #R\nCHAT #r first words\nCHAT #R last words\nPART #r\nLEAV`,
    );
    assert.deepEqual(await watcher.readLines(6), [
      `JOINED t${round}`,
      `JOINED #r t${round}`,
      `ROOM #r t${round} first words`,
      `ROOM #r t${round} last words`,
      `LEFT #r t${round}`,
      `LEFT t${round}`,
    ]);
    assert.deepEqual(await talker.readLines(5), [
      `OK JOIN t${round}`,
      "OK JOIN #r",
      `USERS #r 2 t${round} watcher`,
      "OK PART #r",
      "BYE",
    ]);
    await talker.expectEof();
  }
});

Deno.test("killing a child: each of its users leaves every room it was in, before its LEFT", async () => {
  await using server = await TestServer.start(SERVER);
  const users: LineClient[] = [];
  try {
    await joinUsers(server, ["a0", "a1", "a2", "b0", "b1", "b2"], users);
    const [a0, a1, a2, b0, b1, b2] = users as LineClient[] as [
      LineClient,
      LineClient,
      LineClient,
      LineClient,
      LineClient,
      LineClient,
    ];
    // a2 and b2 are on process 2. a0 and a2 in #x and #y, b1 and b2 in #y.
    await enter(a0, "#x", "#x", "1 a0");
    await enter(a2, "#x", "#x", "2 a0 a2");
    assert.equal(await a0.readLine(), "JOINED #x a2");
    await enter(a2, "#y", "#y", "1 a2");
    await enter(b1, "#y", "#y", "2 a2 b1");
    await enter(b2, "#Y", "#y", "3 a2 b1 b2");
    assert.equal(await b1.readLine(), "JOINED #y b2");
    const [pid] = server.childPids().get(2)!;
    Deno.kill(pid!, "SIGKILL");
    // Per user, its rooms' LEFT come first; the two users' lines may interleave.
    const a0Lines = await a0.readLines(3);
    assert.deepEqual(a0Lines.filter((line) => line.includes("a2")), ["LEFT #x a2", "LEFT a2"]);
    assert.deepEqual(a0Lines.filter((line) => line.includes("b2")), ["LEFT b2"]);
    const b1Lines = await b1.readLines(4);
    assert.deepEqual(b1Lines.filter((line) => line.includes("a2")), ["LEFT #y a2", "LEFT a2"]);
    assert.deepEqual(b1Lines.filter((line) => line.includes("b2")), ["LEFT #y b2", "LEFT b2"]);
    assert.deepEqual((await a1.readLines(2)).sort(), ["LEFT a2", "LEFT b2"]);
    assert.deepEqual((await b0.readLines(2)).sort(), ["LEFT a2", "LEFT b2"]);
    await b1.send("WHO #y");
    assert.equal(await b1.readLine(), "USERS #y 1 b1");
    await b1.send("ROOMS");
    assert.equal(await b1.readLine(), "ROOMS 2 #x=1 #y=1");
    for (const user of [a0, a1, b0, b1]) await expectNothingPending(user);
  } finally {
    closeAll(users);
  }
});

Deno.test("of two users who enter a room at once, exactly one hears JOINED #room of the other; the other finds it in USERS", async () => {
  await using server = await TestServer.start(SERVER);
  const count = 24;
  const clients = await Promise.all(Array.from({ length: count }, () => server.connect()));
  try {
    // Names first, in one go; each client's lobby notices are skipped below.
    await joinAtOnce(clients);
    await using last = await joinAs(server, "last");
    for (const client of clients) {
      while (await client.readLine() !== "JOINED last");
    }
    await Promise.all(clients.map((client) => client.send("JOIN #race")));
    const listed: Set<string>[] = [];
    for (const client of clients) {
      assert.equal(await client.readLine(), "OK JOIN #race");
      const users = (await client.readLine()).split(" ");
      assert.equal(users.slice(0, 2).join(" "), "USERS #race");
      assert.equal(Number(users[2]), users.length - 3);
      listed.push(new Set(users.slice(3)));
    }
    await last.send("JOIN #race");
    assert.equal(await last.readLine(), "OK JOIN #race");
    assert.equal((await last.readLine()).split(" ")[2], `${count + 1}`);
    const heard = await Promise.all(
      clients.map((client) => linesBefore(client, "JOINED #race last")),
    );
    for (let a = 0; a < count; a++) {
      for (let b = a + 1; b < count; b++) {
        const aHeardB = heard[a]!.has(`JOINED #race u${b}`);
        const bHeardA = heard[b]!.has(`JOINED #race u${a}`);
        assert.ok(aHeardB !== bHeardA, `u${a} and u${b}: ${aHeardB} and ${bHeardA}`);
        assert.equal(listed[a]!.has(`u${b}`), !aHeardB, `u${a} lists u${b}`);
        assert.equal(listed[b]!.has(`u${a}`), !bHeardA, `u${b} lists u${a}`);
      }
    }
  } finally {
    closeAll(clients);
  }
});

Deno.test("room errors and limits", async (t) => {
  await using server = await TestServer.start([
    ...SERVER,
    "--max-rooms-per-user",
    "2",
    "--max-rooms",
    "3",
  ]);
  await using anon = await server.connect();
  await anon.hello();
  await t.step("every room command needs JOIN <name> first", async () => {
    for (const line of ["JOIN #a", "PART #a", "CHAT #a hi", "WHO #a", "ROOMS"]) {
      await anon.send(line);
      assert.equal(await anon.readLine(), "ERR NOT_JOINED", line);
    }
  });
  const users: LineClient[] = [];
  try {
    await joinUsers(server, ["ann", "ben"], users);
    const [ann, ben] = users as [LineClient, LineClient];
    await t.step("a bad room name is ERR BAD_ROOM", async () => {
      const cases: [string, string][] = [
        ["JOIN #", "ERR BAD_ROOM must be # and 1 to 32 characters"],
        [`JOIN #${"x".repeat(33)}`, "ERR BAD_ROOM must be # and 1 to 32 characters"],
        ["JOIN #a*b", "ERR BAD_ROOM may contain only A-Z a-z 0-9 _ - after #"],
        ["PART #a b", "ERR BAD_ROOM may contain only A-Z a-z 0-9 _ - after #"],
        ["PART tea", "ERR BAD_ROOM must start with #"],
        ["PART", "ERR BAD_ROOM must start with #"],
        ["WHO #é", "ERR BAD_ROOM may contain only A-Z a-z 0-9 _ - after #"],
        ["CHAT #a.b hi", "ERR BAD_ROOM may contain only A-Z a-z 0-9 _ - after #"],
      ];
      for (const [line, reply] of cases) {
        await ann.send(line);
        assert.equal(await ann.readLine(), reply, line);
      }
    });
    await t.step("ALREADY_IN_ROOM, in any letter case", async () => {
      await enter(ann, "#a", "#a", "1 ann");
      await ann.send("JOIN #A");
      assert.equal(await ann.readLine(), "ERR ALREADY_IN_ROOM #A");
    });
    await t.step("NOT_IN_ROOM for CHAT and PART of a room one is not in", async () => {
      for (const line of ["CHAT #zz hi", "PART #zz", "CHAT #a hi"]) {
        await ben.send(line);
        assert.equal(await ben.readLine(), `ERR NOT_IN_ROOM ${line.split(" ")[1]}`, line);
      }
    });
    await t.step("CHAT #room without text, or with control characters", async () => {
      await ann.send("CHAT #a");
      assert.equal(await ann.readLine(), "ERR BAD_COMMAND usage: CHAT <name> <text>");
      await ann.send("CHAT #a \x1b[2J");
      assert.equal(await ann.readLine(), "ERR BAD_TEXT control characters are not allowed");
    });
    await t.step("--max-rooms-per-user: TOO_MANY_ROOMS <limit>", async () => {
      await enter(ann, "#b", "#b", "1 ann");
      await ann.send("JOIN #c");
      assert.equal(await ann.readLine(), "ERR TOO_MANY_ROOMS 2");
    });
    await t.step(
      "--max-rooms: a new room beyond is refused, existing ones can be entered",
      async () => {
        await enter(ben, "#c", "#c", "1 ben");
        await ben.send("JOIN #d");
        assert.equal(await ben.readLine(), "ERR TOO_MANY_ROOMS server");
        await ben.send("PART #c");
        assert.equal(await ben.readLine(), "OK PART #c");
        await enter(ben, "#d", "#d", "1 ben");
        await enter(ben, "#A", "#a", "2 ann ben");
        assert.equal(await ann.readLine(), "JOINED #a ben");
      },
    );
    for (const user of [ann, ben, anon]) await expectNothingPending(user);
  } finally {
    closeAll(users);
  }
});

Deno.test("a room of two on a four-process server costs no datagram to the two other processes", async () => {
  await using server = await TestServer.start([
    "--processes",
    "4",
    "--threads",
    "1",
    "--log-level",
    "trace",
  ]);
  const users: LineClient[] = [];
  try {
    await joinUsers(server, ["ann", "bob", "cy"], users);
    const dan = await connectTo(server, (where) => where.pId === 3);
    users.push(dan);
    await join(dan, "dan");
    const [ann, bob, cy] = users as [LineClient, LineClient, LineClient];
    for (const user of [ann, bob, cy]) assert.equal(await user.readLine(), "JOINED dan");
    // cy and dan have a room of their own, so that their threads do host named rooms.
    await enter(cy, "#other", "#other", "1 cy");
    await enter(dan, "#other", "#other", "2 cy dan");
    assert.equal(await cy.readLine(), "JOINED #other dan");
    await enter(ann, "#duo", "#duo", "1 ann");
    await enter(bob, "#duo", "#duo", "2 ann bob");
    assert.equal(await ann.readLine(), "JOINED #duo bob");
    const count = 20;
    await ann.send(Array.from({ length: count }, (_, i) => `CHAT #duo m${i}`).join("\n"));
    for (let i = 0; i < count; i++) assert.equal(await bob.readLine(), `ROOM #duo ann m${i}`);
    for (const user of users) await expectNothingPending(user);
  } finally {
    closeAll(users);
  }
  // Every child's log lines come before the supervisor's "child exited" for it (one pipe).
  server.signal("SIGTERM");
  for (const pId of [0, 1, 2, 3]) await server.waitForLog({ msg: "child exited", p_id: pId });
  const received = [0, 1, 2, 3].map((pId) =>
    server.parsedLogs().filter((fields) =>
      fields.msg === "named room record received" && fields.p_id === String(pId)
    ).length
  );
  assert.deepEqual(received, [0, 20, 0, 0], "NAMED records received per process");
});
