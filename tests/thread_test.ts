import assert from "node:assert/strict";
import type { BusHandlers } from "../src/bus.ts";
import { type Config, DEFAULTS } from "../src/config.ts";
import type { FromThread } from "../src/control.ts";
import { Counters } from "../src/counters.ts";
import type { ControlMessage, Entry } from "../src/directory_messages.ts";
import { DRAIN_IDLE_MS } from "../src/listener.ts";
import { Thread } from "../src/thread.ts";
import { decodeDatagram, MAGIC } from "../src/wire.ts";
import { FakeAcceptor, FakeBus, FakeClock, FakeTransport, settle } from "./_fakes.ts";

const EP = "0-0-1-0";

function setup(config: Partial<Config> = {}) {
  const clock = new FakeClock();
  const bus = new FakeBus();
  const acceptor = new FakeAcceptor();
  const posted: FromThread["kind"][] = [];
  let handlers: BusHandlers | undefined;
  const thread = new Thread({
    config: { ...DEFAULTS, rate: 0, ...config },
    pId: 0,
    tId: 0,
    ep: EP,
    counters: new Counters(),
    post: (message) => posted.push(message.kind),
    bus: (given) => {
      handlers = given;
      return bus;
    },
    acceptors: () => [{ acceptor, tls: false }],
    clock,
  });
  thread.start();
  const control = (message: ControlMessage) => handlers!.onRecord({ kind: "control", message });
  /** The control messages the thread sent, in order. */
  const sent = () =>
    bus.sent.flatMap(({ to, record }) =>
      [...decodeDatagram(new Uint8Array([MAGIC, ...record]))].map((decoded) =>
        decoded.kind === "control" ? `${to} ${decoded.message.kind}` : `${to} ${decoded.kind}`
      )
    );
  return { clock, bus, acceptor, posted, thread, control, sent };
}

Deno.test("a thread says hello, listens once the directory is in, and joins a client through it", async () => {
  const { acceptor, posted, control, sent } = setup({ history: 0 });
  assert.deepEqual(sent(), ["supervisor hello"]);
  assert.deepEqual(posted, []);
  control({ kind: "snapshot", entries: [], endpoints: [EP], rooms: [] });
  assert.deepEqual(posted, ["listening"]);
  await settle();
  const client = new FakeTransport();
  assert.ok(acceptor.arrive(client));
  await settle();
  assert.match(client.written[0]!, /^HELLO chatd \S+ p=0 t=0 /);
  client.feed("JOIN alice");
  await settle();
  assert.deepEqual(sent(), ["supervisor hello", "supervisor claim"]);
  const entry: Entry = { name: "alice", ep: EP, conn: 1 };
  control({ kind: "add", entry, seq: 1 });
  await settle();
  assert.deepEqual(client.written.slice(1), ["OK JOIN alice"]);
});

Deno.test("with history on, a joining client gets the lobby's history after OK JOIN, and the supervisor a copy of its room messages", async () => {
  const { acceptor, control, sent } = setup({ history: 100 });
  control({ kind: "snapshot", entries: [], endpoints: [EP, "1-0-2-0"], rooms: [] });
  await settle();
  const client = new FakeTransport();
  assert.ok(acceptor.arrive(client));
  await settle();
  client.feed("JOIN alice");
  await settle();
  const entry: Entry = { name: "alice", ep: EP, conn: 1 };
  const lines = [{ time: Date.UTC(2026, 10, 30, 19, 0, 0, 7), sender: "bob", text: "hi  there" }];
  control({ kind: "history", room: "*", entry, lines });
  control({ kind: "history", room: "*", entry, lines: [{ ...lines[0]!, text: "again" }] });
  control({ kind: "add", entry, seq: 1 });
  await settle();
  assert.deepEqual(client.written.slice(1), [
    "OK JOIN alice",
    "HISTORY * 2026-11-30T19:00:00.007Z bob hi  there",
    "HISTORY * 2026-11-30T19:00:00.007Z bob again",
    "HISTORY * END",
  ]);
  client.feed("CHAT * hello");
  await settle();
  assert.deepEqual(sent().slice(-2), ["1-0-2-0 room", "supervisor room"]);
});

Deno.test("a draining thread whose last client leaves sends the release before it closes its bus (defect 3)", async () => {
  const { clock, bus, acceptor, posted, thread, control, sent } = setup();
  control({ kind: "snapshot", entries: [], endpoints: [EP], rooms: [] });
  await settle();
  const client = new FakeTransport();
  acceptor.arrive(client);
  await settle();
  client.feed("JOIN alice");
  await settle();
  control({ kind: "add", entry: { name: "alice", ep: EP, conn: 1 }, seq: 1 });
  await settle();
  thread.drain();
  await settle();
  await clock.advance(DRAIN_IDLE_MS);
  assert.equal(acceptor.closed, true);
  // The release waits until what the client sent is on its way.
  bus.holdFlush = true;
  client.eof();
  await settle();
  assert.equal(client.closed, true);
  assert.equal(bus.closed, false, "the bus stays open for the release");
  assert.deepEqual(posted, ["listening"]);
  bus.releaseFlush();
  await settle();
  assert.deepEqual(sent().slice(-1), ["supervisor release"]);
  assert.equal(bus.closed, true);
  assert.deepEqual(posted, ["listening", "done"]);
});

Deno.test("a shut-down thread says BYE shutting down to every client, then is done", async () => {
  const { acceptor, posted, thread, control, bus } = setup();
  control({ kind: "snapshot", entries: [], endpoints: [EP], rooms: [] });
  await settle();
  const client = new FakeTransport();
  acceptor.arrive(client);
  await settle();
  thread.shutdown();
  await settle();
  assert.deepEqual(client.written.slice(1), ["BYE shutting down"]);
  assert.equal(client.closed, true);
  assert.equal(acceptor.closed, true);
  assert.equal(bus.closed, true);
  assert.deepEqual(posted, ["listening", "done"]);
});

Deno.test("a client past --max-clients-per-thread gets ERR SERVER_FULL and is closed", async () => {
  const { acceptor, control } = setup({ maxClientsPerThread: 1 });
  control({ kind: "snapshot", entries: [], endpoints: [EP], rooms: [] });
  await settle();
  const first = new FakeTransport();
  acceptor.arrive(first);
  await settle();
  const second = new FakeTransport();
  acceptor.arrive(second);
  await settle();
  assert.deepEqual(second.written, ["ERR SERVER_FULL"]);
  assert.equal(second.closed, true);
  assert.equal(first.closed, false);
});

Deno.test("cluster outcomes reach the client: a claim NATS cannot decide, a direct message not sent, a name lost", async (t) => {
  const { acceptor, control } = setup({ history: 0 });
  control({ kind: "snapshot", entries: [], endpoints: [EP], rooms: [] });
  await settle();
  const connect = async () => {
    const client = new FakeTransport();
    assert.ok(acceptor.arrive(client));
    await settle();
    return client;
  };
  const alice = await connect();
  const carol = await connect();
  const aliceEntry: Entry = { name: "alice", ep: EP, conn: 1 };
  const carolEntry: Entry = { name: "carol", ep: EP, conn: 2 };
  await t.step(
    "a JOIN the cluster cannot decide: ERR CLUSTER_UNAVAILABLE, and JOIN again works",
    async () => {
      alice.feed("JOIN alice");
      await settle();
      control({ kind: "unavailable", entry: aliceEntry });
      await settle();
      assert.deepEqual(alice.written.slice(1), ["ERR CLUSTER_UNAVAILABLE alice"]);
      alice.feed("JOIN alice");
      await settle();
      control({ kind: "add", entry: aliceEntry, seq: 1 });
      await settle();
      assert.deepEqual(alice.written.slice(2), ["OK JOIN alice"]);
    },
  );
  await t.step(
    "a direct message not sent: ERR CLUSTER_UNAVAILABLE <to> to its sender",
    async () => {
      control({ kind: "undelivered", entry: aliceEntry, to: "bob" });
      await settle();
      assert.deepEqual(alice.written.slice(3), ["ERR CLUSTER_UNAVAILABLE bob"]);
    },
  );
  await t.step("a name lost while joining: refused, the connection stays", async () => {
    carol.feed("JOIN carol");
    await settle();
    control({ kind: "lost", entry: carolEntry });
    await settle();
    assert.deepEqual(carol.written.slice(1), ["ERR NAME_LOST carol"]);
    assert.equal(carol.closed, false);
  });
  await t.step(
    "a name lost once joined: ERR NAME_LOST, no LEFT of itself, then closed",
    async () => {
      control({ kind: "lost", entry: aliceEntry });
      control({ kind: "remove", entries: [aliceEntry], seq: 2 });
      await settle();
      assert.deepEqual(alice.written.slice(4), ["ERR NAME_LOST alice"]);
      assert.equal(alice.closed, true);
    },
  );
});

Deno.test("history held for a claim that is refused is forgotten: the next claim's confirmation gets only its own", async (t) => {
  const { acceptor, control } = setup({ history: 100 });
  control({ kind: "snapshot", entries: [], endpoints: [EP], rooms: [] });
  await settle();
  const time = Date.UTC(2026, 10, 30, 19, 0, 0, 7);
  let conn = 0;
  let seq = 0;
  for (const refusal of ["taken", "unavailable", "lost"] as const) {
    await t.step(`refused as ${refusal}`, async () => {
      const client = new FakeTransport();
      assert.ok(acceptor.arrive(client));
      await settle();
      conn++;
      const refused: Entry = { name: `${refusal}x`, ep: EP, conn };
      client.feed(`JOIN ${refused.name}`);
      await settle();
      const old = [{ time, sender: "bob", text: "old" }];
      control({ kind: "history", room: "*", entry: refused, lines: old });
      control({ kind: refusal, entry: refused });
      await settle();
      assert.match(client.written.at(-1)!, new RegExp(`^ERR \\S+ ${refused.name}$`));
      const entry: Entry = { name: `${refusal}y`, ep: EP, conn };
      client.feed(`JOIN ${entry.name}`);
      await settle();
      const lines = [{ time, sender: "bob", text: "new" }];
      control({ kind: "history", room: "*", entry, lines });
      control({ kind: "add", entry, seq: ++seq });
      await settle();
      assert.deepEqual(client.written.slice(-3), [
        `OK JOIN ${entry.name}`,
        "HISTORY * 2026-11-30T19:00:00.007Z bob new",
        "HISTORY * END",
      ]);
    });
  }
});

Deno.test("a draining thread whose last client leaves before its listener closes is done only once the listener has closed", async () => {
  const { clock, bus, acceptor, posted, thread, control } = setup();
  control({ kind: "snapshot", entries: [], endpoints: [EP], rooms: [] });
  await settle();
  const client = new FakeTransport();
  acceptor.arrive(client);
  await settle();
  thread.drain();
  client.eof();
  await settle();
  assert.equal(client.closed, true);
  assert.equal(acceptor.closed, false, "the listener still takes late arrivals");
  assert.deepEqual(posted, ["listening"]);
  await clock.advance(DRAIN_IDLE_MS);
  assert.equal(acceptor.closed, true);
  assert.equal(bus.closed, true);
  assert.deepEqual(posted, ["listening", "done"]);
});

Deno.test("a member whose write is under way gets a join storm's notices as one span: replies to the joiners are encoded apart", async () => {
  const { acceptor, control } = setup({ history: 0 });
  control({ kind: "snapshot", entries: [], endpoints: [EP], rooms: [] });
  await settle();
  const join = async (name: string, conn: number, seq: number) => {
    const client = new FakeTransport();
    assert.ok(acceptor.arrive(client));
    await settle();
    client.feed(`JOIN ${name}`);
    await settle();
    control({ kind: "add", entry: { name, ep: EP, conn }, seq });
    await settle();
    return client;
  };
  const alice = await join("alice", 1, 1);
  // Alice's reader is slow: her next write stays under way while three users join.
  alice.holdWrites = true;
  alice.feed("PING 1");
  await settle();
  const others = [await join("bob", 2, 2), await join("carol", 3, 3), await join("dave", 4, 4)];
  for (const [i, other] of others.entries()) {
    assert.ok(other.written.includes(`OK JOIN ${["bob", "carol", "dave"][i]}`));
  }
  const writes = alice.writes.length;
  alice.releaseWrites();
  await settle();
  const next = alice.writes[writes]!;
  assert.equal(next.length, 1, "one span, not one per notice");
  assert.equal(
    new TextDecoder().decode(next[0]),
    "JOINED bob\nJOINED carol\nJOINED dave\n",
  );
});
