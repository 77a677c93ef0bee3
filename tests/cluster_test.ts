/**
 * Two chatd nodes (2 processes × 2 threads each) joined through one real nats-server.
 */
import assert from "node:assert/strict";
import {
  join,
  LineClient,
  outputWithin,
  serverCommand,
  TestServer,
  waitUntil,
} from "./test_util.ts";
import { natsMissing, NatsServer } from "./_nats.ts";
import { historySubject, parseHistoryMessage } from "../src/cluster.ts";
import { connect } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { jetstreamManager } from "@nats-io/jetstream";

const ignore = natsMissing();
if (ignore) console.warn(`cluster tests skipped: ${ignore}`);

function nodeArgs(nats: NatsServer, node: string): string[] {
  return ["--processes", "2", "--threads", "2", "--cluster", nats.url, "--node-name", node];
}

Deno.test({
  name: "two nodes: WHO, direct messages both ways and lobby messages cross nodes",
  ignore: ignore !== undefined,
  async fn() {
    await using nats = await NatsServer.start();
    await using a = await TestServer.start(nodeArgs(nats, "na"));
    await using b = await TestServer.start(nodeArgs(nats, "nb"));
    await using alice = await LineClient.connect(a.port);
    await using bob = await LineClient.connect(b.port);
    await alice.hello();
    await bob.hello();
    await join(alice, "alice");
    await join(bob, "bob");
    assert.equal(await alice.readLine(), "JOINED bob");
    await alice.send("WHO");
    assert.equal(await alice.readLine(), "USERS 2 alice bob");
    await bob.send("WHO");
    assert.equal(await bob.readLine(), "USERS 2 alice bob");
    await alice.send("CHAT bob hi");
    assert.equal(await bob.readLine(), "FROM alice hi");
    await bob.send("CHAT * hello all");
    assert.equal(await alice.readLine(), "ALL bob hello all");
  },
});

Deno.test({
  name: "two nodes: a JOIN race across nodes has exactly one winner, 20 rounds",
  ignore: ignore !== undefined,
  async fn() {
    await using nats = await NatsServer.start();
    await using a = await TestServer.start(nodeArgs(nats, "na"));
    await using b = await TestServer.start(nodeArgs(nats, "nb"));
    for (let round = 0; round < 20; round++) {
      await using x = await LineClient.connect(a.port);
      await using y = await LineClient.connect(b.port);
      await x.hello();
      await y.hello();
      const name = `Race${round}`;
      // Different case on each side: the race is decided case-insensitively.
      await Promise.all([x.send(`JOIN ${name}`), y.send(`JOIN ${name.toLowerCase()}`)]);
      const replies = await Promise.all([x.readLine(), y.readLine()]);
      const won = replies.filter((line) => line.startsWith("OK JOIN ")).length;
      const lost = replies.filter((line) => line.startsWith("ERR NAME_TAKEN ")).length;
      assert.deepEqual([won, lost], [1, 1], `round ${round}: ${replies.join(" | ")}`);
    }
  },
});

Deno.test({
  name: "two nodes: 2,000 direct messages each way arrive in order",
  ignore: ignore !== undefined,
  async fn() {
    await using nats = await NatsServer.start();
    const args = (node: string) => [...nodeArgs(nats, node), "--rate", "0"];
    await using a = await TestServer.start(args("na"));
    await using b = await TestServer.start(args("nb"));
    await using alice = await LineClient.connect(a.port);
    await using bob = await LineClient.connect(b.port);
    await alice.hello();
    await bob.hello();
    await join(alice, "alice");
    await join(bob, "bob");
    assert.equal(await alice.readLine(), "JOINED bob");
    const count = 2000;
    const burst = (to: string) =>
      new TextEncoder().encode(
        Array.from({ length: count }, (_, i) => `CHAT ${to} m${i}\n`).join(""),
      );
    await Promise.all([alice.sendBytes(burst("bob")), bob.sendBytes(burst("alice"))]);
    const [atBob, atAlice] = await Promise.all([
      bob.readLines(count, 30_000),
      alice.readLines(count, 30_000),
    ]);
    assert.deepEqual(atBob, Array.from({ length: count }, (_, i) => `FROM alice m${i}`));
    assert.deepEqual(atAlice, Array.from({ length: count }, (_, i) => `FROM bob m${i}`));
  },
});

Deno.test({
  name: "two nodes: kill -9 of a node gives LEFT for its users on the other within 5 s",
  ignore: ignore !== undefined,
  async fn() {
    await using nats = await NatsServer.start();
    await using a = await TestServer.start(nodeArgs(nats, "na"));
    await using b = await TestServer.start(nodeArgs(nats, "nb"));
    await using alice = await LineClient.connect(a.port);
    await using bob = await LineClient.connect(b.port);
    await using carol = await LineClient.connect(b.port);
    for (const client of [alice, bob, carol]) await client.hello();
    await join(alice, "alice");
    await join(bob, "bob");
    await join(carol, "carol");
    assert.deepEqual(new Set(await alice.readLines(2)), new Set(["JOINED bob", "JOINED carol"]));
    await alice.send("WHO");
    assert.equal(await alice.readLine(), "USERS 3 alice bob carol");
    const children = [...b.childPids().values()].flat();
    const killedAt = performance.now();
    b.process.kill("SIGKILL");
    for (const pid of children) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone with its supervisor */ }
    }
    const left = await alice.readLines(2, 8000);
    const elapsed = performance.now() - killedAt;
    assert.deepEqual(new Set(left), new Set(["LEFT bob", "LEFT carol"]));
    assert.ok(elapsed < 5000, `LEFT after ${Math.round(elapsed)} ms`);
    console.log(`LEFT after ${Math.round(elapsed)} ms`);
    await alice.send("WHO");
    assert.equal(await alice.readLine(), "USERS 1 alice");
    await using bob2 = await LineClient.connect(a.port);
    await bob2.hello();
    await join(bob2, "bob");
  },
});

Deno.test("a node whose NATS server cannot be reached says so and exits 1", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const output = await outputWithin(
    serverCommand(["--port", "0", "--cluster", `nats://127.0.0.1:${port}`]),
    20_000,
  );
  assert.equal(output.code, 1);
  const stderr = new TextDecoder().decode(output.stderr);
  assert.match(
    stderr,
    new RegExp(`^chatd: Cannot join the cluster at nats://127.0.0.1:${port}: `, "m"),
  );
});

Deno.test({
  name:
    "two nodes: NATS down for longer than the node timeout and back: no LEFT, WHO equal, messages flow",
  ignore: ignore !== undefined,
  async fn() {
    await using nats = await NatsServer.start();
    await using a = await TestServer.start(nodeArgs(nats, "na"));
    await using b = await TestServer.start(nodeArgs(nats, "nb"));
    await using alice = await LineClient.connect(a.port);
    await using bob = await LineClient.connect(b.port);
    await alice.hello();
    await bob.hello();
    await join(alice, "alice");
    await join(bob, "bob");
    assert.equal(await alice.readLine(), "JOINED bob");
    await nats.stop();
    // Down until each node has missed more heartbeats than the node timeout allows (3 s).
    const failures = (server: TestServer) =>
      server.logs.filter((line) => line.includes('msg="heartbeat failed"')).length;
    await waitUntil(() => failures(a) >= 4 && failures(b) >= 4, 30_000, "missed heartbeats");
    // A JOIN that needs the cluster while NATS is down is refused; it must not come back as a
    // ghost once NATS takes the claim late.
    await using carol = await LineClient.connect(a.port);
    await carol.hello();
    await carol.send("JOIN carol");
    assert.equal(await carol.readLine(20_000), "ERR NAME_TAKEN carol");
    const reconnects = [a.logs.length, b.logs.length];
    await nats.restart();
    await a.waitForLog({ msg: "cluster reconnected" }, { from: reconnects[0], timeoutMs: 20_000 });
    await b.waitForLog({ msg: "cluster reconnected" }, { from: reconnects[1], timeoutMs: 20_000 });
    await alice.send("WHO");
    assert.equal(await alice.readLine(), "USERS 2 alice bob");
    await bob.send("WHO");
    assert.equal(await bob.readLine(), "USERS 2 alice bob");
    await alice.send("CHAT bob back");
    assert.equal(await bob.readLine(10_000), "FROM alice back");
    await bob.send("CHAT * hello again");
    assert.equal(await alice.readLine(10_000), "ALL bob hello again");
  },
});

Deno.test({
  name: "a node stopped with SIGTERM deletes its names and its heartbeat before it exits",
  ignore: ignore !== undefined,
  async fn() {
    await using nats = await NatsServer.start();
    await using a = await TestServer.start(nodeArgs(nats, "na"));
    await using alice = await LineClient.connect(a.port);
    await using bob = await LineClient.connect(a.port);
    await alice.hello();
    await bob.hello();
    await join(alice, "alice");
    await join(bob, "bob");
    assert.equal(await alice.readLine(), "JOINED bob");
    a.signal("SIGTERM");
    assert.equal((await a.status).code, 0);
    const nc = await connect({ servers: nats.url });
    try {
      const kvm = new Kvm(nc);
      const keys = async (bucket: string) => {
        const found: string[] = [];
        for await (const key of await (await kvm.open(bucket)).keys()) found.push(key);
        return found.sort();
      };
      assert.deepEqual(await keys("chatd_names"), []);
      assert.deepEqual(await keys("chatd_nodes"), []);
    } finally {
      await nc.close();
    }
  },
});

Deno.test({
  name: "two nodes: JOINED comes before a remote user's first message and LEFT after its last",
  ignore: ignore !== undefined,
  async fn() {
    await using nats = await NatsServer.start();
    await using a = await TestServer.start(nodeArgs(nats, "na"));
    await using b = await TestServer.start(nodeArgs(nats, "nb"));
    await using alice = await LineClient.connect(a.port);
    await alice.hello();
    await join(alice, "alice");
    for (let round = 0; round < 10; round++) {
      await using bob = await LineClient.connect(b.port);
      await bob.hello();
      await bob.send(`JOIN bob${round}\nCHAT * hi ${round}\nLEAV`);
      assert.deepEqual(await alice.readLines(3), [
        `JOINED bob${round}`,
        `ALL bob${round} hi ${round}`,
        `LEFT bob${round}`,
      ]);
    }
  },
});

Deno.test({
  name: "two nodes: room messages and JOINED/LEFT #room notices cross nodes",
  ignore: ignore !== undefined,
  async fn() {
    await using nats = await NatsServer.start();
    await using a = await TestServer.start(nodeArgs(nats, "na"));
    await using b = await TestServer.start(nodeArgs(nats, "nb"));
    await using alice = await LineClient.connect(a.port);
    await using bob = await LineClient.connect(b.port);
    await using carol = await LineClient.connect(b.port);
    for (const client of [alice, bob, carol]) await client.hello();
    await join(carol, "carol");
    await join(alice, "alice");
    await join(bob, "bob");
    assert.deepEqual(await alice.readLines(1), ["JOINED bob"]);
    assert.deepEqual(await carol.readLines(2), ["JOINED alice", "JOINED bob"]);
    await alice.send("JOIN #Tea");
    assert.deepEqual(await alice.readLines(2), ["OK JOIN #Tea", "USERS #Tea 1 alice"]);
    // The room as its first member spelled it, on the other node too.
    await bob.send("JOIN #tea");
    assert.deepEqual(await bob.readLines(2), ["OK JOIN #Tea", "USERS #Tea 2 alice bob"]);
    assert.equal(await alice.readLine(), "JOINED #Tea bob");
    await alice.send("CHAT #tea hi  there");
    assert.equal(await bob.readLine(), "ROOM #Tea alice hi  there");
    await bob.send("CHAT #TEA yo");
    assert.equal(await alice.readLine(), "ROOM #Tea bob yo");
    for (const client of [alice, carol]) {
      await client.send("WHO #tea");
      assert.equal(await client.readLine(), "USERS #Tea 2 alice bob");
      await client.send("ROOMS");
      assert.equal(await client.readLine(), "ROOMS 1 #Tea=2");
    }
    await bob.send("PART #tea");
    assert.equal(await bob.readLine(), "OK PART #Tea");
    assert.equal(await alice.readLine(), "LEFT #Tea bob");
    await alice.send("CHAT #tea anyone?");
    await alice.send("WHO #tea");
    assert.equal(await alice.readLine(), "USERS #Tea 1 alice");
    // Neither bob, who left, nor carol, never in, got a room line.
    for (const client of [bob, carol]) {
      await client.send("PING x");
      assert.equal(await client.readLine(), "PONG x");
    }
  },
});

Deno.test({
  name:
    "two nodes: JOINED #room comes before a remote member's first room message and LEFT after its last",
  ignore: ignore !== undefined,
  async fn() {
    await using nats = await NatsServer.start();
    await using a = await TestServer.start(nodeArgs(nats, "na"));
    await using b = await TestServer.start(nodeArgs(nats, "nb"));
    await using alice = await LineClient.connect(a.port);
    await alice.hello();
    await join(alice, "alice");
    await alice.send("JOIN #tea");
    assert.deepEqual(await alice.readLines(2), ["OK JOIN #tea", "USERS #tea 1 alice"]);
    await using bob = await LineClient.connect(b.port);
    await bob.hello();
    await join(bob, "bob");
    assert.equal(await alice.readLine(), "JOINED bob");
    for (let round = 0; round < 10; round++) {
      await bob.send(`JOIN #tea\nCHAT #tea hi ${round}\nCHAT #tea bye ${round}\nPART #tea`);
      assert.deepEqual(await alice.readLines(4), [
        "JOINED #tea bob",
        `ROOM #tea bob hi ${round}`,
        `ROOM #tea bob bye ${round}`,
        "LEFT #tea bob",
      ]);
      assert.deepEqual(await bob.readLines(3), [
        "OK JOIN #tea",
        "USERS #tea 2 alice bob",
        "OK PART #tea",
      ]);
    }
  },
});

Deno.test({
  name: "two nodes: kill -9 of a node takes its users out of rooms on the other, LEFT #room first",
  ignore: ignore !== undefined,
  async fn() {
    await using nats = await NatsServer.start();
    await using a = await TestServer.start(nodeArgs(nats, "na"));
    await using b = await TestServer.start(nodeArgs(nats, "nb"));
    await using alice = await LineClient.connect(a.port);
    await using bob = await LineClient.connect(b.port);
    await alice.hello();
    await bob.hello();
    await join(alice, "alice");
    await join(bob, "bob");
    assert.equal(await alice.readLine(), "JOINED bob");
    await alice.send("JOIN #tea");
    assert.deepEqual(await alice.readLines(2), ["OK JOIN #tea", "USERS #tea 1 alice"]);
    await bob.send("JOIN #tea\nJOIN #solo");
    assert.deepEqual(await bob.readLines(4), [
      "OK JOIN #tea",
      "USERS #tea 2 alice bob",
      "OK JOIN #solo",
      "USERS #solo 1 bob",
    ]);
    assert.equal(await alice.readLine(), "JOINED #tea bob");
    await alice.send("ROOMS");
    assert.equal(await alice.readLine(), "ROOMS 2 #solo=1 #tea=2");
    const children = [...b.childPids().values()].flat();
    b.process.kill("SIGKILL");
    for (const pid of children) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone with its supervisor */ }
    }
    assert.deepEqual(await alice.readLines(2, 8000), ["LEFT #tea bob", "LEFT bob"]);
    await alice.send("ROOMS");
    assert.equal(await alice.readLine(), "ROOMS 1 #tea=1");
    await alice.send("WHO #tea");
    assert.equal(await alice.readLine(), "USERS #tea 1 alice");
  },
});

Deno.test({
  name: "a node that starts later learns the rooms of the other node's users",
  ignore: ignore !== undefined,
  async fn() {
    await using nats = await NatsServer.start();
    await using a = await TestServer.start(nodeArgs(nats, "na"));
    await using alice = await LineClient.connect(a.port);
    await alice.hello();
    await join(alice, "alice");
    await alice.send("JOIN #tea");
    assert.deepEqual(await alice.readLines(2), ["OK JOIN #tea", "USERS #tea 1 alice"]);
    await using b = await TestServer.start(nodeArgs(nats, "nb"));
    await using bob = await LineClient.connect(b.port);
    await bob.hello();
    await join(bob, "bob");
    // Node a tells nb its members when it first hears nb's heartbeat: within a heartbeat.
    const deadline = performance.now() + 5000;
    let who = "";
    while (who !== "USERS #tea 1 alice" && performance.now() < deadline) {
      await bob.send("WHO #tea");
      who = await bob.readLine();
    }
    assert.equal(who, "USERS #tea 1 alice");
    await bob.send("JOIN #tea\nCHAT #tea hi");
    assert.deepEqual(await bob.readLines(2), ["OK JOIN #tea", "USERS #tea 2 alice bob"]);
    assert.deepEqual(await alice.readLines(3), [
      "JOINED bob",
      "JOINED #tea bob",
      "ROOM #tea bob hi",
    ]);
  },
});

/** `JOIN <what>` and the replies up to the end of its history, the history lines returned. */
async function historyOf(client: LineClient, what: string): Promise<string[]> {
  await client.send(`JOIN ${what}`);
  const lines: string[] = [];
  const room = what.startsWith("#") ? undefined : "*";
  for (;;) {
    const line = await client.readLine();
    if (line.startsWith("OK JOIN ")) continue;
    if (line === `HISTORY ${room ?? line.split(" ")[1]} END`) break;
    lines.push(line);
  }
  if (room === undefined) await client.readLine(); // USERS #room …
  return lines;
}

Deno.test({
  name:
    "two nodes: history is shared: a node that joins the room later replays lines said on the other, in one order everywhere",
  ignore: ignore !== undefined,
  async fn() {
    await using nats = await NatsServer.start();
    const args = (node: string) => [...nodeArgs(nats, node), "--history", "5"];
    await using a = await TestServer.start(args("na"));
    await using b = await TestServer.start(args("nb"));
    await using alice = await LineClient.connect(a.port);
    await using bob = await LineClient.connect(b.port);
    await alice.hello();
    await bob.hello();
    assert.deepEqual(await historyOf(alice, "alice"), []);
    assert.deepEqual(await historyOf(alice, "#tea"), []);
    assert.deepEqual(await historyOf(bob, "bob"), []);
    assert.equal(await alice.readLine(), "JOINED bob");
    await alice.send("CHAT * lobby 1");
    assert.equal(await bob.readLine(), "ALL alice lobby 1");
    // Six lines from alice on node a, then bob on node b enters: the last five are replayed.
    await alice.send(Array.from({ length: 6 }, (_, i) => `CHAT #tea line ${i}`).join("\n"));
    await waitForStream(nats, 7);
    const atB = await historyOf(bob, "#tea");
    assert.deepEqual(
      atB.map((line) => line.replace(/^(HISTORY #tea) \S+ /, "$1 T ")),
      [1, 2, 3, 4, 5].map((i) => `HISTORY #tea T alice line ${i}`),
    );
    assert.equal(await alice.readLine(), "JOINED #tea bob");
    // Lines from both nodes, then a reader on each node: the same lines, times and order.
    await alice.send("CHAT #tea from a");
    await bob.send("CHAT #tea from b");
    assert.equal(await bob.readLine(), "ROOM #tea alice from a");
    assert.equal(await alice.readLine(), "ROOM #tea bob from b");
    await waitForStream(nats, 9);
    await using carol = await LineClient.connect(a.port);
    await using dave = await LineClient.connect(b.port);
    await carol.hello();
    await dave.hello();
    const lobbyAtA = await historyOf(carol, "carol");
    const lobbyAtB = await historyOf(dave, "dave");
    assert.equal(await carol.readLine(), "JOINED dave");
    assert.equal(lobbyAtA.length, 1);
    assert.match(lobbyAtA[0]!, /^HISTORY \* \S+ alice lobby 1$/);
    assert.deepEqual(lobbyAtB, lobbyAtA);
    const tea = [await historyOf(carol, "#tea"), await historyOf(dave, "#tea")];
    assert.equal(tea[0]!.length, 5);
    assert.deepEqual(tea[1], tea[0]);
    assert.deepEqual(
      new Set(tea[0]!.slice(3).map((line) => line.split(" ").slice(3).join(" "))),
      new Set(["alice from a", "bob from b"]),
    );
  },
});

Deno.test({
  name:
    "two nodes: a replay waits until the node has read the stream as far as it went at the entry",
  ignore: ignore !== undefined,
  async fn() {
    await using nats = await NatsServer.start();
    const args = (node: string) => [...nodeArgs(nats, node), "--history", "3", "--rate", "0"];
    await using a = await TestServer.start(args("na"));
    await using b = await TestServer.start(args("nb"));
    await using alice = await LineClient.connect(a.port);
    await using bob = await LineClient.connect(b.port);
    await alice.hello();
    await bob.hello();
    assert.deepEqual(await historyOf(alice, "alice"), []);
    assert.deepEqual(await historyOf(alice, "#tea"), []);
    assert.deepEqual(await historyOf(bob, "bob"), []);
    // Node b's supervisor is stopped while the lines are said and bob asks to enter, so that
    // when it runs again it has the entry to handle and most of the lines still to read.
    const count = 20_000;
    b.signal("SIGSTOP");
    try {
      await alice.sendBytes(
        new TextEncoder().encode(
          Array.from({ length: count }, (_, i) => `CHAT #tea m${i}\n`).join(""),
        ),
      );
      await waitForStream(nats, count);
      await bob.send("JOIN #tea");
    } finally {
      b.signal("SIGCONT");
    }
    const replies = await bob.readLines(6);
    assert.deepEqual(
      replies.map((line) => line.replace(/^(HISTORY #tea) \S+ /, "$1 T ")),
      [
        "OK JOIN #tea",
        ...[3, 2, 1].map((back) => `HISTORY #tea T alice m${count - back}`),
        "HISTORY #tea END",
        "USERS #tea 2 alice bob",
      ],
    );
  },
});

/** Waits until the history stream has taken `count` lines (some may be gone since, beyond the limit). */
async function waitForStream(nats: NatsServer, count: number): Promise<void> {
  const nc = await connect({ servers: nats.url });
  try {
    const jsm = await jetstreamManager(nc);
    await waitUntil(
      async () => (await jsm.streams.info("chatd_history")).state.last_seq >= count,
      10_000,
      `${count} lines in the history stream`,
    );
  } finally {
    await nc.close();
  }
}

Deno.test("history messages: the subject names the room, and a malformed line is refused", () => {
  const data = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
  const line = { time: 7, sender: "alice", text: "hi  there" };
  assert.equal(historySubject("*"), "chatd.history.lobby");
  assert.equal(historySubject("#Tea-2"), "chatd.history.room.tea-2");
  assert.deepEqual(parseHistoryMessage(historySubject("#Tea"), data(line)), { room: "#tea", line });
  assert.deepEqual(parseHistoryMessage(historySubject("*"), data(line)), { room: "*", line });
  for (
    const [subject, value] of [
      ["chatd.history.room.t%a", line],
      ["chatd.history.other", line],
      ["chatd.history.room.tea", { ...line, text: "bell\u0007" }],
      ["chatd.history.room.tea", { ...line, sender: "a b" }],
      ["chatd.history.room.tea", { ...line, time: "now" }],
      ["chatd.history.room.tea", "junk"],
    ] as const
  ) {
    assert.equal(parseHistoryMessage(subject, data(value)), undefined, `${subject} ${value}`);
  }
  assert.equal(parseHistoryMessage("chatd.history.lobby", new Uint8Array([0xff])), undefined);
});
