import assert from "node:assert/strict";
import { encodeDirect, MAGIC } from "../src/wire.ts";
import { connectTo, join, type LineClient, TestServer, withTimeout } from "./test_util.ts";

const SPREAD = ["--processes", "3", "--threads", "2"];

Deno.test("users on different processes and on one thread JOIN, CHAT, WHO and LEAV", async (t) => {
  await using server = await TestServer.start(SPREAD);
  await using alice = await connectTo(server, () => true);
  const aliceAt = /p=(\d+) t=(\d+)/.exec(alice.greeting)!;
  const [pId, tId] = [Number(aliceAt[1]), Number(aliceAt[2])];
  await using bob = await connectTo(server, (where) => where.pId !== pId);
  await using carol = await connectTo(server, (where) => where.pId === pId && where.tId === tId);
  await join(alice, "alice");
  await join(bob, "bob");
  assert.equal(await alice.readLine(), "JOINED bob");
  await join(carol, "carol");
  assert.equal(await alice.readLine(), "JOINED carol");
  assert.equal(await bob.readLine(), "JOINED carol");

  await t.step("across processes, both ways, text exactly as sent", async () => {
    await alice.send("CHAT bob hello   there, bob ");
    assert.equal(await bob.readLine(), "FROM alice hello   there, bob ");
    await bob.send("CHAT ALICE hi alice");
    assert.equal(await alice.readLine(), "FROM bob hi alice");
  });
  await t.step("on the same thread, both ways", async () => {
    await alice.send("CHAT carol same thread");
    assert.equal(await carol.readLine(), "FROM alice same thread");
    await carol.send("CHAT alice tabs\tare\ttext");
    assert.equal(await alice.readLine(), "FROM carol tabs\tare\ttext");
  });
  await t.step("to oneself", async () => {
    await bob.send("CHAT bob note to self");
    assert.equal(await bob.readLine(), "FROM bob note to self");
  });
  await t.step("WHO lists everyone, sorted, as spelled", async () => {
    await using dave = await server.connect();
    await dave.hello();
    await join(dave, "Dave");
    for (const client of [alice, bob, carol]) assert.equal(await client.readLine(), "JOINED Dave");
    await dave.send("WHO");
    assert.equal(await dave.readLine(), "USERS 4 alice bob carol Dave");
    await dave.send("LEAV");
    assert.equal(await dave.readLine(), "BYE");
    await dave.expectEof();
    for (const client of [alice, bob, carol]) assert.equal(await client.readLine(), "LEFT Dave");
  });
  await t.step("LEAV says BYE, closes, and frees the name at once", async () => {
    await bob.send("LEAV");
    assert.equal(await bob.readLine(), "BYE");
    await bob.expectEof();
    await using newBob = await server.connect();
    await newBob.hello();
    await join(newBob, "bob");
  });
});

Deno.test("every error reply is exact", async (t) => {
  await using server = await TestServer.start(SPREAD);
  await using alice = await server.connect();
  await alice.hello();
  await using other = await server.connect();
  await other.hello();
  const expect = async (client: LineClient, line: string, reply: string) => {
    await client.send(line);
    assert.equal(await client.readLine(), reply);
  };
  await t.step("before JOIN", async () => {
    await expect(alice, "CHAT bob hi", "ERR NOT_JOINED");
    await expect(alice, "CHAT * hi", "ERR NOT_JOINED");
    await expect(alice, "WHO", "USERS 0");
  });
  await t.step("bad names", async () => {
    await expect(alice, "JOIN", "ERR BAD_NAME must be 1 to 32 characters");
    await expect(alice, "JOIN " + "x".repeat(33), "ERR BAD_NAME must be 1 to 32 characters");
    await expect(alice, "JOIN a*b", "ERR BAD_NAME may contain only A-Z a-z 0-9 _ -");
    await expect(alice, "JOIN *", "ERR BAD_NAME may contain only A-Z a-z 0-9 _ -");
    await expect(alice, "JOIN two words", "ERR BAD_NAME may contain only A-Z a-z 0-9 _ -");
    await expect(alice, "JOIN héllo", "ERR BAD_NAME may contain only A-Z a-z 0-9 _ -");
    await expect(alice, "JOIN 名前", "ERR BAD_NAME may contain only A-Z a-z 0-9 _ -");
  });
  await t.step("a 32-character name is fine", async () => {
    await expect(other, "JOIN " + "Z_-9".repeat(8), "OK JOIN " + "Z_-9".repeat(8));
  });
  await t.step("names are unique case-insensitively", async () => {
    await expect(alice, "JOIN alice", "OK JOIN alice");
    await using third = await server.connect();
    await third.hello();
    await expect(third, "JOIN ALICE", "ERR NAME_TAKEN ALICE");
    await expect(third, "JOIN Alice", "ERR NAME_TAKEN Alice");
  });
  await t.step("after JOIN", async () => {
    await expect(alice, "JOIN bob", "ERR ALREADY_JOINED alice");
    await expect(alice, "join alice", "ERR ALREADY_JOINED alice");
    await expect(alice, "CHAT nobody hi", "ERR NO_SUCH_USER nobody");
    await expect(alice, "CHAT alice", "ERR BAD_COMMAND usage: CHAT <name> <text>");
    await expect(alice, "CHAT alice ", "ERR BAD_COMMAND usage: CHAT <name> <text>");
    await expect(alice, "CHAT", "ERR BAD_COMMAND usage: CHAT <name> <text>");
    await expect(
      alice,
      "CHAT alice \x1b[2Jgotcha",
      "ERR BAD_TEXT control characters are not allowed",
    );
  });
});

Deno.test("two clients on different processes racing for one name: exactly one wins, 20 rounds", async () => {
  await using server = await TestServer.start(SPREAD);
  for (let round = 0; round < 20; round++) {
    await using first = await connectTo(server, (where) => where.pId === 0);
    await using second = await connectTo(server, (where) => where.pId === 1);
    const name = `same${round}`;
    await Promise.all([first.send(`JOIN ${name}`), second.send(`JOIN ${name}`)]);
    const replies = (await Promise.all([first.readLine(), second.readLine()])).sort();
    assert.deepEqual(replies, [`ERR NAME_TAKEN ${name}`, `OK JOIN ${name}`], `round ${round}`);
  }
});

Deno.test("2000 messages from A to B on another process arrive complete and in order", async () => {
  await using server = await TestServer.start([...SPREAD, "--rate", "0"]);
  await using a = await connectTo(server, (where) => where.pId === 0);
  await using b = await connectTo(server, (where) => where.pId === 1);
  await join(a, "A");
  await join(b, "B");
  assert.equal(await a.readLine(), "JOINED B");
  const count = 2000;
  const lines = Array.from({ length: count }, (_, i) => `CHAT B message ${i}\n`).join("");
  await a.sendBytes(new TextEncoder().encode(lines));
  for (let i = 0; i < count; i++) assert.equal(await b.readLine(), `FROM A message ${i}`);
});

Deno.test("a client that disconnects without LEAV frees its name: LEFT, and it can be taken again", async () => {
  await using server = await TestServer.start(SPREAD);
  await using watcher = await connectTo(server, (where) => where.pId === 0);
  await join(watcher, "watcher");
  await using quitter = await connectTo(server, (where) => where.pId === 1);
  await join(quitter, "quitter");
  assert.equal(await watcher.readLine(), "JOINED quitter");

  quitter.close();
  assert.equal(await watcher.readLine(), "LEFT quitter");
  await using again = await server.connect();
  await again.hello();
  await join(again, "quitter");
  assert.equal(await watcher.readLine(), "JOINED quitter");
});

Deno.test("kill -9 of the child holding B frees B; A gets ERR NO_SUCH_USER; B can JOIN again", async () => {
  await using server = await TestServer.start(["--processes", "3", "--threads", "1"]);
  await using a = await connectTo(server, (where) => where.pId === 0);
  await using b = await connectTo(server, (where) => where.pId === 1);
  await join(a, "A");
  await join(b, "B");
  assert.equal(await a.readLine(), "JOINED B");
  const [pid] = server.childPids().get(1)!;

  Deno.kill(pid!, "SIGKILL");

  await b.expectEof();
  assert.equal(await a.readLine(), "LEFT B");
  await a.send("CHAT B are you there");
  assert.equal(await a.readLine(), "ERR NO_SUCH_USER B");
  await using b2 = await server.connect();
  await b2.hello();
  await join(b2, "B");
  assert.equal(await a.readLine(), "JOINED B");
  await a.send("CHAT B welcome back");
  assert.equal(await b2.readLine(), "FROM A welcome back");
});

Deno.test("a datagram for a connection that left is dropped, not given to the name's new holder", async () => {
  // One thread, so connection ids count 1, 2, 3 ... and its endpoint is 0-0-0-0.
  await using server = await TestServer.start(["--processes", "1", "--threads", "1"]);
  const dir = server.runtimeDir();
  await using first = await server.connect(); // connection 1
  await first.hello();
  await join(first, "bob");
  await first.send("LEAV");
  assert.equal(await first.readLine(), "BYE");
  await using second = await server.connect(); // connection 2
  await second.hello();
  await join(second, "bob");

  const sender = Deno.listenDatagram({ transport: "unixpacket", path: `${dir}/test.sock` });
  try {
    const send = (records: Uint8Array[]) => {
      const datagram = new Uint8Array([MAGIC, ...records.flatMap((r) => [...r])]);
      return sender.send(datagram, { transport: "unixpacket", path: `${dir}/0-0-0-0.sock` });
    };
    const line = (text: string) => new TextEncoder().encode(text + "\n");
    await send([encodeDirect(1, "bob", line("FROM eve stale: old connection"))]);
    await send([encodeDirect(2, "alice", line("FROM eve stale: wrong name"))]);
    await send([new Uint8Array([1, 2, 3])]); // malformed: dropped and logged
    await send([encodeDirect(2, "bob", line("FROM eve fresh"))]);
    // Datagrams are handled in order: the first line to arrive proves the others were dropped.
    assert.equal(await second.readLine(), "FROM eve fresh");
    await server.waitForLog({ msg: "malformed datagram dropped" });
    await second.send("PING alive");
    assert.equal(await second.readLine(), "PONG alive");
  } finally {
    sender.close();
  }
});

Deno.test("two real nc processes chat with each other", async () => {
  await using server = await TestServer.start();
  // nc 1 joins and waits; nc 2 joins, messages nc 1 and leaves; nc 1 reads, answers, leaves.
  const alice = new Deno.Command("nc", {
    args: ["-N", server.host, String(server.port)],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const bob = new Deno.Command("nc", {
    args: ["-N", server.host, String(server.port)],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const aliceIn = alice.stdin.getWriter();
  const bobIn = bob.stdin.getWriter();
  const encode = (text: string) => new TextEncoder().encode(text);
  const aliceOut = lineReader(alice.stdout);
  const bobOut = lineReader(bob.stdout);
  try {
    await aliceIn.write(encode("JOIN alice\n"));
    assert.match(await aliceOut.next(), /^HELLO chatd /);
    assert.equal(await aliceOut.next(), "OK JOIN alice");
    await bobIn.write(encode("JOIN bob\nCHAT alice hi from nc\n"));
    assert.match(await bobOut.next(), /^HELLO chatd /);
    assert.equal(await bobOut.next(), "OK JOIN bob");
    assert.equal(await aliceOut.next(), "JOINED bob");
    assert.equal(await aliceOut.next(), "FROM bob hi from nc");
    await aliceIn.write(encode("CHAT bob hello nc\nLEAV\n"));
    assert.equal(await bobOut.next(), "FROM alice hello nc");
    assert.equal(await aliceOut.next(), "BYE");
    assert.equal(await bobOut.next(), "LEFT alice");
    await bobIn.write(encode("LEAV\n"));
    assert.equal(await bobOut.next(), "BYE");
    await aliceIn.close();
    await bobIn.close();
    const [aliceStatus, bobStatus] = await withTimeout(
      Promise.all([alice.status, bob.status]),
      5000,
      "nc exit",
    );
    assert.equal(aliceStatus.code, 0);
    assert.equal(bobStatus.code, 0);
  } finally {
    for (const process of [alice, bob]) {
      try {
        process.kill("SIGKILL");
      } catch { /* exited */ }
    }
    await aliceOut.rest();
    await bobOut.rest();
  }
});

/** Reads lines from a stream, each with a timeout. */
function lineReader(stream: ReadableStream<Uint8Array>) {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  return {
    async next(timeoutMs = 5000): Promise<string> {
      return await withTimeout(
        (async () => {
          for (;;) {
            const newline = buffer.indexOf("\n");
            if (newline !== -1) {
              const line = buffer.slice(0, newline);
              buffer = buffer.slice(newline + 1);
              return line;
            }
            const { value, done } = await reader.read();
            if (done) throw new Error("end of stream");
            buffer += decoder.decode(value, { stream: true });
          }
        })(),
        timeoutMs,
        "nc output line",
      );
    },
    async rest(): Promise<void> {
      try {
        while (!(await reader.read()).done);
      } catch { /* closed */ }
    },
  };
}
