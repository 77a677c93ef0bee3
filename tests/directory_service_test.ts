/**
 * DirectoryService in a cluster, with a fake cluster link and a fake thread on a real bus.
 */
import assert from "node:assert/strict";
import type {
  ClaimResult,
  ClusterEntry,
  ClusterHandlers,
  ClusterLink,
  ClusterOptions,
} from "../src/cluster.ts";
import { DirectoryService } from "../src/directory_service.ts";
import type { HistoryLine } from "../src/history.ts";
import type { ControlMessage } from "../src/directory_messages.ts";
import { UnixBus } from "../src/unix_bus.ts";
import {
  decodeDatagram,
  encodeControl,
  encodeDirect,
  encodeNamedRoom,
  encodeRoom,
  MAGIC,
} from "../src/wire.ts";
import { withTimeout } from "./test_util.ts";

const THREAD = "0-0-1-0";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What the fake thread received, decoded and copied. */
type Received =
  | { kind: "control"; message: ControlMessage }
  | { kind: "direct"; conn: number; name: string; line: string }
  | { kind: "room"; line: string }
  | { kind: "named"; room: string; line: string };

class Inbox {
  readonly #items: Received[] = [];
  #wake: (() => void) | undefined;

  push(item: Received): void {
    this.#items.push(item);
    this.#wake?.();
  }

  async next(): Promise<Received> {
    while (this.#items.length === 0) {
      await withTimeout(new Promise<void>((resolve) => this.#wake = resolve), 5000, "a record");
    }
    return this.#items.shift()!;
  }
}

class FakeCluster implements ClusterLink {
  handlers: ClusterHandlers | undefined;
  readonly claims: { name: string; decide: (result: ClaimResult) => void }[] = [];
  /** False: NATS is unreachable, and publish says so. */
  available = true;
  readonly released: string[] = [];
  readonly history: { room: string; line: HistoryLine }[] = [];
  readonly published: { node: string | "*"; records: Received[] }[] = [];
  readonly #waiters: (() => void)[] = [];

  /** Resolves once `check` holds, re-checked after each claim or publish. */
  async until(check: () => boolean, what: string): Promise<void> {
    while (!check()) {
      await withTimeout(new Promise<void>((resolve) => this.#waiters.push(resolve)), 5000, what);
    }
  }

  #changed(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }

  claim(name: string): Promise<ClaimResult> {
    const decided = Promise.withResolvers<ClaimResult>();
    this.claims.push({ name, decide: decided.resolve });
    this.#changed();
    return decided.promise;
  }
  release(name: string): void {
    this.released.push(name);
  }
  /** What to call for each publish, should the connection break before NATS confirms it. */
  readonly unconfirmed: (() => void)[] = [];

  publish(node: string, data: Uint8Array, unconfirmed?: () => void): boolean {
    if (!this.available) return false;
    if (unconfirmed) this.unconfirmed.push(unconfirmed);
    this.published.push({ node, records: decode(data) });
    this.#changed();
    return true;
  }
  publishAll(data: Uint8Array): boolean {
    if (!this.available) return false;
    this.published.push({ node: "*", records: decode(data) });
    this.#changed();
    return true;
  }
  publishHistory(room: string, line: HistoryLine): void {
    this.history.push({ room, line });
    this.#changed();
  }
  /** When set, each historySynced waits until the test calls the resolver it pushes here. */
  syncs: (() => void)[] | undefined;
  historySynced(): Promise<void> {
    if (this.syncs === undefined) return Promise.resolve();
    const synced = Promise.withResolvers<void>();
    this.syncs.push(synced.resolve);
    this.#changed();
    return synced.promise;
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

function decode(data: Uint8Array): Received[] {
  return [...decodeDatagram(data)].map((record): Received => {
    switch (record.kind) {
      case "control":
        return record;
      case "direct":
        return { ...record, line: decoder.decode(record.line) };
      case "room":
        return { kind: "room", line: decoder.decode(record.line) };
      case "named":
        return { kind: "named", room: record.room, line: decoder.decode(record.line) };
    }
  });
}

function datagram(record: Uint8Array): Uint8Array {
  return new Uint8Array([MAGIC, ...record]);
}

/** A service in a cluster, a thread that said hello, and the thread's snapshot read. */
async function setup(
  run: (
    fixture: {
      cluster: FakeCluster;
      thread: UnixBus;
      inbox: Inbox;
      handlers: ClusterHandlers;
      options: ClusterOptions;
    },
  ) => Promise<void>,
  history = 0,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "chatd-ds-" });
  const service = new DirectoryService({
    runtimeDir: dir,
    isLive: () => true,
    history,
    now: () => 1000,
  });
  const inbox = new Inbox();
  const thread = new UnixBus(dir, THREAD, {
    onRecord: (record) => inbox.push(decode(datagram(encodeRecord(record)))[0]!),
  });
  try {
    const cluster = new FakeCluster();
    let joined: ClusterOptions | undefined;
    await service.joinCluster({ servers: [], node: "n1" }, (options, handlers) => {
      joined = options;
      cluster.handlers = handlers;
      return Promise.resolve(cluster);
    });
    thread.send("supervisor", encodeControl({ kind: "hello", ep: THREAD }));
    assert.equal((await inbox.next()).kind, "control"); // the snapshot
    await run({ cluster, thread, inbox, handlers: cluster.handlers!, options: joined! });
  } finally {
    thread.close();
    await service.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Re-encodes a received record, so that the inbox can copy it out of its datagram. */
function encodeRecord(record: Parameters<ConstructorParameters<typeof UnixBus>[2]["onRecord"]>[0]) {
  switch (record.kind) {
    case "control":
      return encodeControl(record.message);
    case "direct":
      return encodeDirect(record.conn, record.name, record.line);
    case "room":
      return encodeRoom(record.line);
    case "named":
      return encodeNamedRoom(record.room, record.line);
  }
}

const remoteBob: ClusterEntry = { name: "bob", node: "n2", boot: "b", ep: "1-1-3-0", conn: 9 };

Deno.test("DirectoryService in a cluster: a local claim is confirmed only once the cluster says so", async () => {
  await setup(async ({ cluster, thread, inbox }) => {
    const entry = { name: "alice", ep: THREAD, conn: 1 };
    thread.send("supervisor", encodeControl({ kind: "claim", entry }));
    await cluster.until(() => cluster.claims.length > 0, "the cluster claim");
    assert.equal(cluster.claims[0]!.name, "alice");
    cluster.claims[0]!.decide("won");
    assert.deepEqual(await inbox.next(), {
      kind: "control",
      message: { kind: "add", entry, seq: 1 },
    });
  });
});

Deno.test("DirectoryService in a cluster: a local claim that loses is refused, and the winner's entry follows", async () => {
  await setup(async ({ cluster, thread, inbox, handlers }) => {
    const entry = { name: "Bob", ep: THREAD, conn: 1 };
    thread.send("supervisor", encodeControl({ kind: "claim", entry }));
    await cluster.until(() => cluster.claims.length > 0, "the cluster claim");
    // The other node's claim shows up in the watch while ours is being decided; ours loses.
    handlers.onAdd(remoteBob);
    cluster.claims[0]!.decide("taken");
    assert.deepEqual(await inbox.next(), { kind: "control", message: { kind: "taken", entry } });
    assert.deepEqual(await inbox.next(), {
      kind: "control",
      message: { kind: "add", entry: { name: "bob", ep: "n2/1-1-3-0", conn: 9 }, seq: 1 },
    });
  });
});

Deno.test("DirectoryService in a cluster: chat records go to the other node and come back to the thread", async (t) => {
  await setup(async ({ cluster, thread, inbox, handlers }) => {
    handlers.onAdd(remoteBob);
    assert.equal((await inbox.next()).kind, "control"); // bob's add
    await t.step("a DIRECT record for a remote user is published to its node", async () => {
      thread.send("supervisor", encodeDirect(9, "bob", encoder.encode("FROM alice hi\n")));
      await cluster.until(() => cluster.published.length > 0, "a publish");
      assert.deepEqual(cluster.published.shift(), {
        node: "n2",
        records: [{ kind: "direct", conn: 9, name: "bob", line: "FROM alice hi\n" }],
      });
    });
    await t.step("a ROOM record is published to every node", async () => {
      thread.send("supervisor", encodeRoom(encoder.encode("ALL alice yo\n")));
      await cluster.until(() => cluster.published.length > 0, "a publish");
      assert.deepEqual(cluster.published.shift(), {
        node: "*",
        records: [{ kind: "room", line: "ALL alice yo\n" }],
      });
    });
    await t.step("a remote user's removal reaches the thread", async () => {
      handlers.onRemove(remoteBob, false);
      assert.deepEqual(await inbox.next(), {
        kind: "control",
        message: { kind: "remove", entries: [{ name: "bob", ep: "n2/1-1-3-0", conn: 9 }], seq: 2 },
      });
    });
    await t.step("a datagram from another node reaches the thread", async () => {
      handlers.onDatagram(datagram(encodeRoom(encoder.encode("ALL carol hey\n"))));
      assert.deepEqual(await inbox.next(), { kind: "room", line: "ALL carol hey\n" });
    });
    await t.step("a malformed datagram from another node is dropped", async () => {
      handlers.onDatagram(new Uint8Array([MAGIC, 7, 1]));
      handlers.onDatagram(datagram(encodeRoom(encoder.encode("ALL carol again\n"))));
      assert.deepEqual(await inbox.next(), { kind: "room", line: "ALL carol again\n" });
    });
  });
});

Deno.test("DirectoryService in a cluster: a confirmed claim and its release are announced to the other nodes", async () => {
  await setup(async ({ cluster, thread, inbox }) => {
    const entry = { name: "alice", ep: THREAD, conn: 1 };
    thread.send("supervisor", encodeControl({ kind: "claim", entry }));
    await cluster.until(() => cluster.claims.length > 0, "the cluster claim");
    cluster.claims[0]!.decide("won");
    assert.deepEqual(await inbox.next(), {
      kind: "control",
      message: { kind: "add", entry, seq: 1 },
    });
    const remote = { name: "alice", ep: `n1/${THREAD}`, conn: 1 };
    assert.deepEqual(cluster.published, [{
      node: "*",
      records: [{ kind: "control", message: { kind: "add", entry: remote, seq: 1 } }],
    }]);
    cluster.published.length = 0;
    thread.send("supervisor", encodeControl({ kind: "release", entry }));
    await cluster.until(() => cluster.published.length > 0, "the remove notice");
    assert.deepEqual(cluster.published, [{
      node: "*",
      records: [{ kind: "control", message: { kind: "remove", entries: [remote], seq: 2 } }],
    }]);
    assert.deepEqual(cluster.released, ["alice"]);
  });
});

Deno.test("DirectoryService in a cluster: a notice and the watch bring one JOINED and one LEFT", async () => {
  await setup(async ({ inbox, handlers }) => {
    const bob = { name: "bob", ep: "n2/1-1-3-0", conn: 9 };
    const notice = (message: ControlMessage) =>
      handlers.onDatagram(datagram(encodeControl(message)));
    notice({ kind: "add", entry: bob, seq: 5 });
    assert.deepEqual(await inbox.next(), {
      kind: "control",
      message: { kind: "add", entry: bob, seq: 1 },
    });
    handlers.onAdd(remoteBob); // the watch, later: nothing new
    notice({ kind: "remove", entries: [bob], seq: 6 });
    assert.deepEqual(await inbox.next(), {
      kind: "control",
      message: { kind: "remove", entries: [bob], seq: 2 },
    });
    handlers.onAdd(remoteBob); // a watch lagging behind the notice: no ghost
    handlers.onRemove(remoteBob, false);
    // A notice for a local endpoint is refused: another node cannot speak for this one.
    notice({ kind: "add", entry: { name: "eve", ep: THREAD, conn: 3 }, seq: 7 });
    handlers.onDatagram(datagram(encodeRoom(encoder.encode("ALL carol fence\n"))));
    assert.deepEqual(await inbox.next(), { kind: "room", line: "ALL carol fence\n" });
  });
});

Deno.test("DirectoryService in a cluster: the watch's delete of an announced user waits for its node's notice", async (t) => {
  await setup(async ({ inbox, handlers }) => {
    const bob = { name: "bob", ep: "n2/1-1-3-0", conn: 9 };
    const notice = (message: ControlMessage) =>
      handlers.onDatagram(datagram(encodeControl(message)));
    notice({ kind: "add", entry: bob, seq: 5 });
    assert.deepEqual(await inbox.next(), {
      kind: "control",
      message: { kind: "add", entry: bob, seq: 1 },
    });
    await t.step("LEFT comes with the notice, after the messages before it", async () => {
      handlers.onRemove(remoteBob, false); // the watch overtook bob's last message and notice
      handlers.onDatagram(datagram(encodeRoom(encoder.encode("ALL bob last\n"))));
      notice({ kind: "remove", entries: [bob], seq: 6 });
      assert.deepEqual(await inbox.next(), { kind: "room", line: "ALL bob last\n" });
      assert.deepEqual(await inbox.next(), {
        kind: "control",
        message: { kind: "remove", entries: [bob], seq: 2 },
      });
    });
    await t.step("without the notice, LEFT comes after a bounded wait", async () => {
      const bob2 = { ...bob, conn: 10 };
      notice({ kind: "add", entry: bob2, seq: 7 });
      assert.deepEqual(await inbox.next(), {
        kind: "control",
        message: { kind: "add", entry: bob2, seq: 3 },
      });
      handlers.onRemove({ ...remoteBob, conn: 10 }, false);
      assert.deepEqual(await inbox.next(), {
        kind: "control",
        message: { kind: "remove", entries: [bob2], seq: 4 },
      });
    });
  });
});

/** Claims `name` for connection `conn` of the thread, the cluster agreeing. */
async function joinLocal(
  fixture: { cluster: FakeCluster; thread: UnixBus; inbox: Inbox },
  name: string,
  conn: number,
): Promise<{ name: string; ep: string; conn: number }> {
  const entry = { name, ep: THREAD, conn };
  const before = fixture.cluster.claims.length;
  fixture.thread.send("supervisor", encodeControl({ kind: "claim", entry }));
  await fixture.cluster.until(() => fixture.cluster.claims.length > before, "the cluster claim");
  fixture.cluster.claims[before]!.decide("won");
  const confirmed = await fixture.inbox.next();
  assert.equal(confirmed.kind === "control" && confirmed.message.kind, "add");
  return entry;
}

Deno.test("DirectoryService in a cluster: a claim the cluster cannot decide is refused as unavailable, and the name stays free", async () => {
  await setup(async ({ cluster, thread, inbox }) => {
    const entry = { name: "alice", ep: THREAD, conn: 1 };
    thread.send("supervisor", encodeControl({ kind: "claim", entry }));
    await cluster.until(() => cluster.claims.length > 0, "the cluster claim");
    cluster.claims[0]!.decide("unavailable");
    assert.deepEqual(await inbox.next(), {
      kind: "control",
      message: { kind: "unavailable", entry },
    });
    // Once NATS is back, the same name can be claimed.
    await joinLocal({ cluster, thread, inbox }, "alice", 2);
  });
});

Deno.test("DirectoryService in a cluster: a direct message the cluster cannot take is answered undelivered to its sender", async () => {
  await setup(async (fixture) => {
    const { cluster, thread, inbox, handlers } = fixture;
    const alice = await joinLocal(fixture, "alice", 1);
    handlers.onAdd(remoteBob);
    assert.equal((await inbox.next()).kind, "control"); // bob's add
    cluster.available = false;
    thread.send("supervisor", encodeDirect(9, "bob", encoder.encode("FROM alice hi\n")));
    assert.deepEqual(await inbox.next(), {
      kind: "control",
      message: { kind: "undelivered", entry: alice, to: "bob" },
    });
    cluster.available = true;
    thread.send("supervisor", encodeDirect(9, "bob", encoder.encode("FROM alice back\n")));
    await cluster.until(
      () => cluster.published.some((p) => p.node === "n2" && p.records[0]?.kind === "direct"),
      "the direct publish",
    );
    // Published, then the connection broke before NATS confirmed it: the sender hears so too.
    assert.equal(cluster.unconfirmed.length, 1);
    cluster.unconfirmed[0]!();
    assert.deepEqual(await inbox.next(), {
      kind: "control",
      message: { kind: "undelivered", entry: alice, to: "bob" },
    });
  });
});

Deno.test("DirectoryService in a cluster: a name lost to another node after an outage: its holder is told, leaves, and the winner joins", async () => {
  await setup(async (fixture) => {
    const { cluster, inbox, handlers } = fixture;
    const alice = await joinLocal(fixture, "Alice", 1);
    cluster.published.length = 0;
    // Reconciliation found alice in the bucket held by n2: the bucket wins.
    handlers.onLost("alice");
    assert.deepEqual(await inbox.next(), {
      kind: "control",
      message: { kind: "lost", entry: alice },
    });
    assert.deepEqual(await inbox.next(), {
      kind: "control",
      message: { kind: "remove", entries: [alice], seq: 2 },
    });
    const winner: ClusterEntry = { name: "alice", node: "n2", boot: "b", ep: "1-1-3-0", conn: 4 };
    handlers.onAdd(winner);
    assert.deepEqual(await inbox.next(), {
      kind: "control",
      message: { kind: "add", entry: { name: "alice", ep: "n2/1-1-3-0", conn: 4 }, seq: 3 },
    });
    assert.deepEqual(cluster.released, ["Alice"]);
    // A name not held here, or held by another node, is left alone.
    handlers.onLost("alice");
    handlers.onLost("nobody");
    handlers.onDatagram(datagram(encodeRoom(encoder.encode("ALL carol fence\n"))));
    assert.deepEqual(await inbox.next(), { kind: "room", line: "ALL carol fence\n" });
  });
});

/** The control messages in what was published, with where to. */
function notices(cluster: FakeCluster): { node: string; message: ControlMessage }[] {
  return cluster.published.flatMap(({ node, records }) =>
    records.flatMap((record) =>
      record.kind === "control" ? [{ node, message: record.message }] : []
    )
  );
}

const bobAt2 = { name: "bob", ep: "n2/1-1-3-0", conn: 9 };

Deno.test("DirectoryService in a cluster: a local user's entry and PART are announced to the other nodes", async () => {
  await setup(async (fixture) => {
    const { cluster, thread, inbox } = fixture;
    const alice = await joinLocal(fixture, "alice", 1);
    cluster.published.length = 0;
    thread.send("supervisor", encodeControl({ kind: "enter", room: "#Tea", entry: alice }));
    assert.deepEqual(await inbox.next(), {
      kind: "control",
      message: { kind: "entered", room: "#Tea", entry: alice, seq: 2 },
    });
    const remote = { ...alice, ep: `n1/${THREAD}` };
    assert.deepEqual(notices(cluster), [{
      node: "*",
      message: { kind: "entered", room: "#Tea", entry: remote, seq: 2 },
    }]);
    cluster.published.length = 0;
    thread.send("supervisor", encodeControl({ kind: "part", room: "#tea", entry: alice }));
    assert.deepEqual(await inbox.next(), {
      kind: "control",
      message: { kind: "parted", room: "#Tea", entry: alice, seq: 3 },
    });
    assert.deepEqual(notices(cluster), [{
      node: "*",
      message: { kind: "parted", room: "#Tea", entry: remote, seq: 3 },
    }]);
  });
});

Deno.test("DirectoryService in a cluster: another node's room notices and messages reach the thread; room traffic goes only to nodes with members", async (t) => {
  await setup(async (fixture) => {
    const { cluster, thread, inbox, handlers } = fixture;
    const notice = (message: ControlMessage) =>
      handlers.onDatagram(datagram(encodeControl(message)));
    const alice = await joinLocal(fixture, "alice", 1);
    thread.send("supervisor", encodeControl({ kind: "enter", room: "#tea", entry: alice }));
    assert.equal((await inbox.next()).kind, "control"); // alice's confirmation
    await t.step("an entry of a name not held here is ignored: no ghost member", async () => {
      notice({ kind: "entered", room: "#tea", entry: bobAt2, seq: 1 });
      handlers.onDatagram(datagram(encodeRoom(encoder.encode("ALL carol fence\n"))));
      assert.deepEqual(await inbox.next(), { kind: "room", line: "ALL carol fence\n" });
    });
    await t.step("a remote member's entry, message and part, in order", async () => {
      notice({ kind: "add", entry: bobAt2, seq: 1 });
      notice({ kind: "entered", room: "#TEA", entry: bobAt2, seq: 2 });
      handlers.onDatagram(datagram(encodeNamedRoom("#tea", encoder.encode("ROOM #tea bob hi\n"))));
      assert.deepEqual(await inbox.next(), {
        kind: "control",
        message: { kind: "add", entry: bobAt2, seq: 3 },
      });
      assert.deepEqual(await inbox.next(), {
        kind: "control",
        message: { kind: "entered", room: "#tea", entry: bobAt2, seq: 4 },
      });
      assert.deepEqual(await inbox.next(), {
        kind: "named",
        room: "#tea",
        line: "ROOM #tea bob hi\n",
      });
    });
    await t.step("a member's message goes to the nodes with members only", async () => {
      cluster.published.length = 0;
      thread.send("supervisor", encodeNamedRoom("#tea", encoder.encode("ROOM #tea alice yo\n")));
      await cluster.until(() => cluster.published.length > 0, "a publish");
      assert.deepEqual(cluster.published, [{
        node: "n2",
        records: [{ kind: "named", room: "#tea", line: "ROOM #tea alice yo\n" }],
      }]);
    });
    await t.step(
      "cut off from NATS: the sender of a room or lobby line hears the other nodes missed it",
      async () => {
        cluster.available = false;
        thread.send("supervisor", encodeNamedRoom("#tea", encoder.encode("ROOM #tea alice cut\n")));
        assert.deepEqual(await inbox.next(), {
          kind: "control",
          message: { kind: "undelivered", entry: alice, to: "#tea" },
        });
        thread.send("supervisor", encodeRoom(encoder.encode("ALL alice cut\n")));
        assert.deepEqual(await inbox.next(), {
          kind: "control",
          message: { kind: "undelivered", entry: alice, to: "*" },
        });
        cluster.available = true;
      },
    );
    await t.step("a remote part reaches the thread; then no node hosts members", async () => {
      notice({ kind: "parted", room: "#tea", entry: bobAt2, seq: 5 });
      assert.deepEqual(await inbox.next(), {
        kind: "control",
        message: { kind: "parted", room: "#tea", entry: bobAt2, seq: 5 },
      });
      cluster.published.length = 0;
      thread.send("supervisor", encodeNamedRoom("#tea", encoder.encode("ROOM #tea alice x\n")));
      // A message of a room with members on another thread of this node only: nothing out.
      handlers.onDatagram(datagram(encodeNamedRoom("#else", encoder.encode("ROOM #else z y\n"))));
      handlers.onDatagram(datagram(encodeRoom(encoder.encode("ALL carol fence\n"))));
      assert.deepEqual(await inbox.next(), { kind: "room", line: "ALL carol fence\n" });
      assert.deepEqual(cluster.published, []);
    });
    await t.step("a remote member's death takes it out of the room", async () => {
      notice({ kind: "entered", room: "#tea", entry: bobAt2, seq: 6 });
      assert.equal((await inbox.next()).kind, "control");
      handlers.onRemove(remoteBob, true);
      assert.deepEqual(await inbox.next(), {
        kind: "control",
        message: { kind: "remove", entries: [bobAt2], seq: 7 },
      });
      cluster.published.length = 0;
      thread.send("supervisor", encodeNamedRoom("#tea", encoder.encode("ROOM #tea alice z\n")));
      handlers.onDatagram(datagram(encodeRoom(encoder.encode("ALL carol fence\n"))));
      assert.deepEqual(await inbox.next(), { kind: "room", line: "ALL carol fence\n" });
      assert.deepEqual(cluster.published, []);
    });
  });
});

Deno.test("DirectoryService in a cluster: a node heard from for the first time learns this node's room members", async () => {
  await setup(async (fixture) => {
    const { cluster, thread, inbox, handlers } = fixture;
    const alice = await joinLocal(fixture, "alice", 1);
    await joinLocal(fixture, "carol", 2); // in no room: the name reaches n3 by the watch only
    thread.send("supervisor", encodeControl({ kind: "enter", room: "#a", entry: alice }));
    thread.send("supervisor", encodeControl({ kind: "enter", room: "#b", entry: alice }));
    await inbox.next();
    await inbox.next();
    handlers.onAdd(remoteBob);
    assert.equal((await inbox.next()).kind, "control");
    handlers.onDatagram(
      datagram(encodeControl({ kind: "entered", room: "#a", entry: bobAt2, seq: 1 })),
    );
    assert.equal((await inbox.next()).kind, "control");
    cluster.published.length = 0;
    handlers.onNode!("n3");
    const remote = { ...alice, ep: `n1/${THREAD}` };
    assert.deepEqual(
      notices(cluster).map(({ node, message }) => ({
        node,
        kind: message.kind,
        room: "room" in message ? message.room : "",
        entry: "entry" in message ? message.entry : undefined,
      })),
      [
        { node: "n3", kind: "add", room: "", entry: remote },
        { node: "n3", kind: "entered", room: "#a", entry: remote },
        { node: "n3", kind: "entered", room: "#b", entry: remote },
      ],
    );
  });
});

Deno.test("DirectoryService in a cluster with history: lines go to the stream, and a replay waits for the stream", async (t) => {
  await setup(async (fixture) => {
    const { cluster, thread, inbox, handlers, options } = fixture;
    assert.equal(options.history, 3);
    const alice = await joinLocal(fixture, "alice", 1);
    await t.step("a thread's room and lobby lines are published, not kept here", async () => {
      thread.send("supervisor", encodeNamedRoom("#tea", encoder.encode("ROOM #tea alice hi\n")));
      thread.send("supervisor", encodeRoom(encoder.encode("ALL alice yo\n")));
      await cluster.until(() => cluster.history.length === 2, "two history lines");
      assert.deepEqual(cluster.history, [
        { room: "#tea", line: { time: 1000, sender: "alice", text: "hi" } },
        { room: "*", line: { time: 1000, sender: "alice", text: "yo" } },
      ]);
    });
    await t.step(
      "an entry's replay holds what the stream brought before it was synced",
      async () => {
        cluster.syncs = [];
        thread.send("supervisor", encodeControl({ kind: "enter", room: "#tea", entry: alice }));
        await cluster.until(() => cluster.syncs!.length > 0, "a history sync");
        handlers.onHistory!("#tea", { time: 5, sender: "bob", text: "from n2" });
        cluster.syncs[0]!();
        assert.deepEqual(await inbox.next(), {
          kind: "control",
          message: {
            kind: "history",
            room: "#tea",
            entry: alice,
            lines: [{ time: 5, sender: "bob", text: "from n2" }],
          },
        });
        assert.equal((await inbox.next()).kind, "control"); // the confirmation
      },
    );
    await t.step("a lobby claim's replay too", async () => {
      handlers.onHistory!("*", { time: 6, sender: "bob", text: "lobby" });
      const entry = { name: "dan", ep: THREAD, conn: 4 };
      thread.send("supervisor", encodeControl({ kind: "claim", entry }));
      await cluster.until(() => cluster.syncs!.length > 1 && cluster.claims.length > 1, "sync");
      cluster.claims[1]!.decide("won");
      // A line through the bus and back out: the service has taken in the claim's decision.
      thread.send("supervisor", encodeRoom(encoder.encode("ALL alice fence\n")));
      await cluster.until(() => cluster.history.length === 3, "the fence line");
      handlers.onHistory!("*", { time: 7, sender: "bob", text: "while claiming" });
      cluster.syncs![1]!();
      assert.deepEqual(await inbox.next(), {
        kind: "control",
        message: {
          kind: "history",
          room: "*",
          entry,
          lines: [
            { time: 6, sender: "bob", text: "lobby" },
            { time: 7, sender: "bob", text: "while claiming" },
          ],
        },
      });
    });
  }, 3);
});
