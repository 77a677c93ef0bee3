import assert from "node:assert/strict";
import { OutputChunks } from "../src/_output_chunks.ts";
import { type OutputOwner, OutputQueue } from "../src/_output_queue.ts";
import { FakeClock, FakeTransport, settle } from "./_fakes.ts";

const encoder = new TextEncoder();

/** Records the queue's calls; flushes it when asked, as a round would, at once. */
class Owner implements OutputOwner {
  readonly requests: ("soon" | "paced")[] = [];
  finishes = 0;
  overflows = 0;
  autoFlush = true;
  wantsFlush(queue: OutputQueue, paced: boolean): void {
    this.requests.push(paced ? "paced" : "soon");
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

Deno.test("own lines ask for the round at the end of the turn; broadcast only for a paced one", () => {
  const { owner, queue } = setup();
  owner.autoFlush = false;
  queue.broadcast(appendTo(new OutputChunks(), "JOINED a\n"));
  assert.deepEqual(owner.requests, ["paced"]);
  queue.write(encoder.encode("PONG\n"));
  assert.deepEqual(owner.requests, ["paced", "soon"]);
  queue.write(encoder.encode("PONG\n"));
  assert.deepEqual(owner.requests, ["paced", "soon"], "one request per round");
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
  assert.deepEqual(owner.requests, []);
  assert.deepEqual(transport.writes, []);
});
