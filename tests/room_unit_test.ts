import assert from "node:assert/strict";
import type { OutputChunks } from "../src/_output_chunks.ts";
import { decodeDatagram, encodeRoom, MAGIC } from "../src/wire.ts";
import { Room, type RoomMember } from "../src/room.ts";
import { FakeBus } from "./_fakes.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

class Member implements RoomMember {
  readonly got: { line: string; seq: number }[] = [];
  /** The chunk and offsets of each line, to check they are shared. */
  readonly spans: { chunk: Uint8Array; start: number }[] = [];
  broadcast(chunks: OutputChunks, seq: number): void {
    this.got.push({ line: decoder.decode(chunks.chunk.subarray(chunks.start, chunks.end)), seq });
    this.spans.push({ chunk: chunks.chunk, start: chunks.start });
  }
}

function setup() {
  const bus = new FakeBus();
  bus.setPeers([bus.id, "1-1-1-0", "2-0-2-0"]);
  const room = new Room<Member>((line) => bus.sendAll(encodeRoom(line)));
  const [a, b, c] = [new Member(), new Member(), new Member()];
  for (const member of [a, b, c]) room.add(member);
  return { bus, room, a, b, c };
}

Deno.test("a member's message goes to every other member, copied once, and once to each other thread", () => {
  const { bus, room, a, b, c } = setup();
  room.post(a, "ALL a hi\n");
  assert.deepEqual(a.got, []);
  assert.deepEqual(b.got, [{ line: "ALL a hi\n", seq: Infinity }]);
  assert.deepEqual(c.got, [{ line: "ALL a hi\n", seq: Infinity }]);
  assert.equal(b.spans[0]!.chunk, c.spans[0]!.chunk, "one shared copy");
  assert.deepEqual(bus.sent.map((sent) => sent.to), ["1-1-1-0", "2-0-2-0"]);
  const records = [...decodeDatagram(new Uint8Array([MAGIC, ...bus.sent[0]!.record]))];
  assert.equal(records[0]!.kind, "room");
});

Deno.test("a message from another thread reaches every member and goes nowhere else", () => {
  const { bus, room, a, b } = setup();
  room.deliver(encoder.encode("ALL x hi\n"));
  assert.equal(a.got.length, 1);
  assert.equal(b.got.length, 1);
  assert.deepEqual(bus.sent, []);
});

Deno.test("JOINED carries its change's seq and skips the one joining; LEFT reaches all", () => {
  const { bus, room, a, b, c } = setup();
  room.joined("a", 7, a);
  room.left("z", 8);
  assert.deepEqual(a.got, [{ line: "LEFT z\n", seq: 8 }]);
  assert.deepEqual(b.got, [{ line: "JOINED a\n", seq: 7 }, { line: "LEFT z\n", seq: 8 }]);
  assert.deepEqual(c.got, b.got);
  assert.deepEqual(bus.sent, [], "notices are not relayed: each thread has its directory");
});

Deno.test("a member that left gets nothing more", () => {
  const { room, a, b } = setup();
  room.delete(b);
  assert.equal(room.has(b), false);
  assert.equal(room.size, 2);
  room.post(a, "ALL a hi\n");
  assert.deepEqual(b.got, []);
});
