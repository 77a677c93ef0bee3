/**
 * DirectoryService in a cluster, with a fake cluster link and a fake thread on a real bus.
 */
import assert from "node:assert/strict";
import type { ClusterEntry, ClusterHandlers, ClusterLink } from "../src/cluster.ts";
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
  readonly claims: { name: string; decide: (won: boolean) => void }[] = [];
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

  claim(name: string): Promise<boolean> {
    const decided = Promise.withResolvers<boolean>();
    this.claims.push({ name, decide: decided.resolve });
    this.#changed();
    return decided.promise;
  }
  release(name: string): void {
    this.released.push(name);
  }
  publish(node: string, data: Uint8Array): void {
    this.published.push({ node, records: decode(data) });
    this.#changed();
  }
  publishAll(data: Uint8Array): void {
    this.published.push({ node: "*", records: decode(data) });
    this.#changed();
  }
  publishHistory(room: string, line: HistoryLine): void {
    this.history.push({ room, line });
    this.#changed();
  }
  historySynced(): Promise<void> {
    return Promise.resolve();
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
    fixture: { cluster: FakeCluster; thread: UnixBus; inbox: Inbox; handlers: ClusterHandlers },
  ) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "chatd-ds-" });
  const service = new DirectoryService({ runtimeDir: dir, isLive: () => true });
  const inbox = new Inbox();
  const thread = new UnixBus(dir, THREAD, {
    onRecord: (record) => inbox.push(decode(datagram(encodeRecord(record)))[0]!),
  });
  try {
    const cluster = new FakeCluster();
    await service.joinCluster({ servers: [], node: "n1" }, (_options, handlers) => {
      cluster.handlers = handlers;
      return Promise.resolve(cluster);
    });
    thread.send("supervisor", encodeControl({ kind: "hello", ep: THREAD }));
    assert.equal((await inbox.next()).kind, "control"); // the snapshot
    await run({ cluster, thread, inbox, handlers: cluster.handlers! });
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
    cluster.claims[0]!.decide(true);
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
    cluster.claims[0]!.decide(false);
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
    cluster.claims[0]!.decide(true);
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
