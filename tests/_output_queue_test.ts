import assert from "node:assert/strict";
import { OutputChunks } from "../src/_output_chunks.ts";
import { type OutputOwner, OutputQueue } from "../src/_output_queue.ts";
import { FakeClock, FakeTransport, settle } from "./_fakes.ts";

const encoder = new TextEncoder();

/** Records the queue's calls; flushes it when asked, as a round would, at once. */
class Owner implements OutputOwner {
  requests = 0;
  finishes = 0;
  overflows = 0;
  autoFlush = true;
  wantsFlush(queue: OutputQueue): void {
    this.requests++;
    if (this.autoFlush) queueMicrotask(() => queue.flush());
  }
  overflowed(): Uint8Array {
    this.overflows++;
    return encoder.encode("ERR SLOW_CONSUMER not reading\n");
  }
  finished(): void {
    this.finishes++;
  }
}

function setup(maxBytes = 100) {
  const clock = new FakeClock();
  const transport = new FakeTransport();
  const owner = new Owner();
  const queue = new OutputQueue(transport, owner, { maxBytes, clock });
  return { clock, transport, owner, queue };
}

function appendTo(chunks: OutputChunks, line: string): OutputChunks {
  chunks.append(encoder.encode(line));
  return chunks;
}

Deno.test("own lines and broadcast lines ask for one round at the end of the turn", () => {
  const { owner, queue } = setup();
  owner.autoFlush = false;
  queue.broadcast(appendTo(new OutputChunks(), "JOINED a\n"));
  assert.equal(owner.requests, 1);
  queue.write(encoder.encode("PONG\n"));
  queue.write(encoder.encode("PONG\n"));
  assert.equal(owner.requests, 1, "one request per round");
  queue.flush();
  queue.write(encoder.encode("PONG\n"));
  assert.equal(owner.requests, 1, "a write under way asks again when it is done");
});

Deno.test("what comes while a write is under way goes in one next write, at once", async () => {
  const { transport, owner, queue } = setup(1000);
  transport.holdWrites = true;
  const chunks = new OutputChunks();
  queue.broadcast(appendTo(chunks, "JOINED a\n"));
  await settle();
  assert.equal(transport.writes.length, 1);
  for (const name of ["b", "c", "d"]) queue.broadcast(appendTo(chunks, `JOINED ${name}\n`));
  queue.write(encoder.encode("OK\n"));
  await settle();
  assert.equal(transport.writes.length, 1, "one write at a time");
  assert.equal(owner.requests, 1);
  transport.releaseWrites();
  await settle();
  assert.equal(transport.writes.length, 2);
  assert.equal(owner.requests, 2);
  assert.deepEqual(transport.written, ["JOINED a", "JOINED b", "JOINED c", "JOINED d", "OK"]);
});

Deno.test("a broadcast line after an own line does not grow the span before it", async () => {
  const { transport, queue } = setup();
  const chunks = new OutputChunks();
  queue.broadcast(appendTo(chunks, "ALL a 1\n"));
  queue.write(encoder.encode("PONG\n"));
  queue.broadcast(appendTo(chunks, "ALL a 2\n"));
  await settle();
  assert.equal(transport.writes.length, 1);
  assert.deepEqual(transport.written, ["ALL a 1", "PONG", "ALL a 2"]);
});

Deno.test("consecutive broadcast lines grow one span and go out in one write, in order", async () => {
  const { transport, queue } = setup();
  const chunks = new OutputChunks();
  queue.broadcast(appendTo(chunks, "ALL a 1\n"));
  queue.broadcast(appendTo(chunks, "ALL a 2\n"));
  queue.write(encoder.encode("PONG\n"));
  await settle();
  assert.equal(transport.writes.length, 1);
  assert.equal(transport.writes[0]!.length, 2, "one span and one line");
  assert.deepEqual(transport.written, ["ALL a 1", "ALL a 2", "PONG"]);
  assert.equal(queue.queuedBytes, 0);
});

Deno.test("what is queued during a write goes out in the next one", async () => {
  const { transport, queue } = setup();
  transport.holdWrites = true;
  queue.write(encoder.encode("one\n"));
  await settle();
  queue.write(encoder.encode("two\n"));
  assert.equal(queue.queuedBytes, 8, "bytes under way count");
  await settle();
  assert.equal(transport.writes.length, 1);
  transport.releaseWrites();
  await settle();
  assert.deepEqual(transport.written, ["one", "two"]);
});

Deno.test("end() finishes once the queued output has been written", async () => {
  const { transport, owner, queue } = setup();
  transport.holdWrites = true;
  queue.write(encoder.encode("BYE\n"));
  queue.end();
  await settle();
  assert.equal(owner.finishes, 0);
  transport.releaseWrites();
  await settle();
  assert.deepEqual(transport.written, ["BYE"]);
  assert.equal(owner.finishes, 1);
});

Deno.test("end() with nothing queued finishes at once", () => {
  const { owner, queue } = setup();
  queue.end();
  assert.equal(owner.finishes, 1);
});

Deno.test("past the limit, the queue is replaced by the owner's last line and ends, at most after the grace period", async () => {
  const { clock, transport, owner, queue } = setup(20);
  transport.holdWrites = true;
  queue.write(encoder.encode("0123456789\n"));
  await settle();
  queue.write(encoder.encode("0123456789\n")); // 22 bytes with the one under way
  assert.equal(owner.overflows, 1);
  queue.write(encoder.encode("ignored\n"));
  transport.releaseWrites();
  transport.holdWrites = true;
  await settle();
  assert.deepEqual(transport.written, ["0123456789"]);
  assert.equal(owner.finishes, 0);
  await clock.advance(250);
  assert.equal(owner.finishes, 1);
  const last = new TextDecoder().decode(transport.writes[1]![0]!);
  assert.equal(last, "ERR SLOW_CONSUMER not reading\n");
});

Deno.test("charged bytes count against the limit until discharged", () => {
  const { owner, queue } = setup(100);
  assert.equal(queue.charge(60), true);
  assert.equal(queue.queuedBytes, 60);
  queue.discharge(60);
  assert.equal(queue.charge(90), true);
  assert.equal(queue.charge(20), false);
  assert.equal(owner.overflows, 1);
});

Deno.test("a failed write finishes the queue", async () => {
  const { transport, owner, queue } = setup();
  transport.failWrites();
  queue.write(encoder.encode("PONG\n"));
  await settle();
  assert.equal(owner.finishes, 1);
});

Deno.test("a closed queue takes and writes nothing", async () => {
  const { transport, owner, queue } = setup();
  queue.close();
  queue.write(encoder.encode("PONG\n"));
  queue.broadcast(appendTo(new OutputChunks(), "ALL a 1\n"));
  await settle();
  assert.equal(owner.requests, 0);
  assert.deepEqual(transport.writes, []);
});
