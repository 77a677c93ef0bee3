import assert from "node:assert/strict";
import { OutputChunks } from "../src/_output_chunks.ts";
import type { ControlMessage, Entry } from "../src/directory_messages.ts";
import { NamedRooms, type RoomUser } from "../src/named_rooms.ts";
import { RoomTable } from "../src/room_table.ts";
import { decodeDatagram, MAGIC } from "../src/wire.ts";
import { FakeBus } from "./_fakes.ts";

const decoder = new TextDecoder();
const OTHER = "2-0-2-0";

/** A client that records every line it gets, and how many bytes are charged for it. */
class User implements RoomUser {
  readonly id: number;
  readonly name: string;
  readonly lines: string[] = [];
  charged = 0;

  constructor(id: number, name: string) {
    this.id = id;
    this.name = name;
  }
  reply(line: string): void {
    this.lines.push(line);
  }
  write(bytes: Uint8Array): void {
    this.lines.push(decoder.decode(bytes));
  }
  broadcast(chunks: OutputChunks): void {
    this.lines.push(decoder.decode(chunks.chunk.subarray(chunks.start, chunks.end)));
  }
  charge(bytes: number): boolean {
    this.charged += bytes;
    return true;
  }
  discharge(bytes: number): void {
    this.charged -= bytes;
  }
}

function setup(maxRoomsPerUser = 20, history = false) {
  const bus = new FakeBus();
  const table = new RoomTable();
  const toSupervisor: ControlMessage[] = [];
  const rooms = new NamedRooms({
    ep: bus.id,
    bus,
    table,
    toSupervisor: (message) => toSupervisor.push(message),
    maxRoomsPerUser,
    history,
    chunks: new OutputChunks(),
  });
  return { bus, table, rooms, toSupervisor };
}

function entryOf(user: User, ep = "1-0-1-0"): Entry {
  return { name: user.name, ep, conn: user.id };
}

/** Enters `user` into `room` and confirms it as change `seq`. */
async function enterConfirmed(
  rooms: NamedRooms,
  user: User,
  room: string,
  seq: number,
): Promise<void> {
  const entering = rooms.enter(user, room);
  rooms.entered(room, entryOf(user), seq, user);
  await entering;
}

Deno.test("a room message goes once to each thread hosting members, and to no other thread", async () => {
  const { bus, table, rooms } = setup();
  const [ann, ben] = [new User(1, "ann"), new User(2, "ben")];
  // Four threads with users; #tea has members on this thread and on OTHER only.
  table.add("#other", { name: "x", ep: "3-0-3-0", conn: 1 }, 1);
  table.add("#other", { name: "y", ep: "4-1-4-0", conn: 1 }, 2);
  table.add("#tea", { name: "bob", ep: OTHER, conn: 5 }, 3);
  table.add("#tea", { name: "cy", ep: OTHER, conn: 6 }, 4);
  await enterConfirmed(rooms, ann, "#tea", 5);
  await enterConfirmed(rooms, ben, "#Tea", 6);
  ann.lines.length = 0;
  ben.lines.length = 0;
  rooms.say(ann, "#TEA", "hi  there");
  assert.deepEqual(ben.lines, ["ROOM #tea ann hi  there\n"]);
  assert.deepEqual(ann.lines, []);
  assert.deepEqual(bus.sent.map((sent) => sent.to), [OTHER]);
  const records = [...decodeDatagram(new Uint8Array([MAGIC, ...bus.sent[0]!.record]))];
  assert.equal(records.length, 1);
  const record = records[0]!;
  assert.equal(record.kind, "named");
  if (record.kind === "named") {
    assert.equal(record.room, "#tea");
    assert.equal(decoder.decode(record.line), "ROOM #tea ann hi  there\n");
  }
});

Deno.test("a room with members on this thread only costs no record at all", async () => {
  const { bus, rooms } = setup();
  const [ann, ben] = [new User(1, "ann"), new User(2, "ben")];
  await enterConfirmed(rooms, ann, "#a", 1);
  await enterConfirmed(rooms, ben, "#a", 2);
  rooms.say(ben, "#a", "hello");
  assert.deepEqual(ann.lines.at(-1), "ROOM #a ben hello\n");
  assert.deepEqual(bus.sent, []);
});

Deno.test("entering: OK JOIN, USERS of the members that came before, then held notices of later changes only", async () => {
  const { table, rooms, toSupervisor } = setup();
  const ann = new User(1, "ann");
  table.add("#r", { name: "zed", ep: OTHER, conn: 9 }, 3);
  const entering = rooms.enter(ann, "#R");
  assert.deepEqual(toSupervisor, [{ kind: "enter", room: "#R", entry: entryOf(ann) }]);
  // Changes that reach this thread before ann's confirmation (seq 6):
  rooms.entered("#r", { name: "bob", ep: OTHER, conn: 5 }, 5, undefined);
  rooms.entered("#r", { name: "cy", ep: OTHER, conn: 6 }, 7, undefined);
  assert.deepEqual(ann.lines, [], "held while entering");
  assert.ok(ann.charged > 0, "held lines count against the send queue");
  rooms.entered("#r", entryOf(ann), 6, ann);
  await entering;
  assert.deepEqual(ann.lines, [
    "OK JOIN #r\nUSERS #r 3 ann bob zed\n",
    "JOINED #r cy\n",
  ]);
  assert.equal(ann.charged, 0);
});

Deno.test("a removed user leaves each of its rooms, in room order, with the change's seq", async () => {
  const { rooms, table } = setup();
  const ann = new User(1, "ann");
  await enterConfirmed(rooms, ann, "#b", 1);
  await enterConfirmed(rooms, ann, "#a", 2);
  const bob: Entry = { name: "bob", ep: OTHER, conn: 3 };
  rooms.entered("#a", bob, 3, undefined);
  rooms.entered("#B", bob, 4, undefined);
  rooms.entered("#c", bob, 5, undefined);
  ann.lines.length = 0;
  // Another claim of the name "bob" does not take bob's seats away.
  rooms.removed({ ...bob, conn: 4 }, 6);
  assert.deepEqual(ann.lines, []);
  rooms.removed(bob, 7);
  assert.deepEqual(ann.lines, ["LEFT #a bob\n", "LEFT #b bob\n"]);
  assert.deepEqual(table.counts(), ["#a=1", "#b=1"]);
});

Deno.test("a user who goes while entering lets its next line run, and a late confirmation is taken back", async () => {
  const { rooms, toSupervisor, table } = setup();
  const ann = new User(1, "ann");
  const entering = rooms.enter(ann, "#r");
  rooms.drop(ann);
  await entering;
  assert.equal(rooms.localRooms, 0);
  rooms.entered("#r", entryOf(ann), 1, undefined);
  assert.deepEqual(toSupervisor.at(-1), { kind: "part", room: "#r", entry: entryOf(ann) });
  assert.deepEqual(ann.lines, []);
  assert.deepEqual(table.counts(), ["#r=1"], "until the directory's parted comes back");
});

Deno.test("ALREADY_IN_ROOM, TOO_MANY_ROOMS, NOT_IN_ROOM and the server's room limit", async () => {
  const { rooms } = setup(2);
  const ann = new User(1, "ann");
  await enterConfirmed(rooms, ann, "#a", 1);
  ann.lines.length = 0;
  rooms.enter(ann, "#A");
  const entering = rooms.enter(ann, "#b");
  rooms.enter(ann, "#c");
  rooms.part(ann, "#b");
  rooms.say(ann, "#b", "not yet");
  rooms.roomsFull("#b", ann);
  await entering;
  rooms.part(ann, "#b");
  assert.deepEqual(ann.lines, [
    "ERR ALREADY_IN_ROOM #A\n",
    "ERR TOO_MANY_ROOMS 2\n",
    "ERR NOT_IN_ROOM #b\n",
    "ERR NOT_IN_ROOM #b\n",
    "ERR TOO_MANY_ROOMS server\n",
    "ERR NOT_IN_ROOM #b\n",
  ]);
});

Deno.test("PART answers at once and tells the directory only once what was sent is on its way", async () => {
  const { bus, rooms, toSupervisor } = setup();
  const ann = new User(1, "ann");
  await enterConfirmed(rooms, ann, "#a", 1);
  toSupervisor.length = 0;
  bus.holdFlush = true;
  const parting = rooms.part(ann, "#A");
  assert.equal(ann.lines.at(-1), "OK PART #a\n");
  await Promise.resolve();
  assert.deepEqual(toSupervisor, []);
  bus.releaseFlush();
  await parting;
  assert.deepEqual(toSupervisor, [{ kind: "part", room: "#A", entry: entryOf(ann) }]);
});

Deno.test("a room with members on other nodes costs one record to the supervisor, whatever their threads", async () => {
  const { bus, table, rooms } = setup();
  const ann = new User(1, "ann");
  table.add("#tea", { name: "bob", ep: "n2/1-0-3-0", conn: 5 }, 1);
  table.add("#tea", { name: "cy", ep: "n2/1-1-3-0", conn: 6 }, 2);
  table.add("#tea", { name: "dee", ep: "n3/0-0-1-0", conn: 7 }, 3);
  table.add("#tea", { name: "eve", ep: OTHER, conn: 8 }, 4);
  await enterConfirmed(rooms, ann, "#tea", 5);
  rooms.say(ann, "#tea", "hi");
  assert.deepEqual(bus.sent.map((sent) => sent.to).sort(), [OTHER, "supervisor"]);
});
