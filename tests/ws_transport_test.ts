import assert from "node:assert/strict";
import { CloseCode, encodeFrame, Opcode } from "../src/_websocket.ts";
import type { InvalidLine, WriteDone } from "../src/transport.ts";
import { frameLines, WsTransport } from "../src/ws_transport.ts";
import { FakeClock, settle } from "./_fakes.ts";

const encoder = new TextEncoder();
const MASK = { mask: new Uint8Array([1, 2, 3, 4]) };

/** A `Deno.Conn` whose reads and writes the test completes. */
class FakeConn {
  readonly remoteAddr = { transport: "tcp", hostname: "127.0.0.1", port: 5 } as const;
  readonly written: Uint8Array[] = [];
  closed = false;
  #reads: { buffer: Uint8Array; resolve: (n: number | null) => void }[] = [];
  #writes: { resolve: (n: number) => void; bytes: Uint8Array }[] = [];
  /** When false, writes stay pending until {@linkcode finishWrites}. */
  writesComplete = true;
  /** Set when a write started while another was pending: frames could interleave. */
  overlapped = false;

  read(buffer: Uint8Array): Promise<number | null> {
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => this.#reads.push({ buffer, resolve }));
  }
  /** Delivers `bytes` to the pending read. */
  arrive(bytes: Uint8Array): void {
    const read = this.#reads.shift();
    assert.ok(read, "no read pending");
    read.buffer.set(bytes);
    read.resolve(bytes.length);
  }
  get readPending(): boolean {
    return this.#reads.length > 0;
  }
  write(bytes: Uint8Array): Promise<number> {
    if (this.closed) return Promise.reject(new Deno.errors.BadResource("closed"));
    if (this.writesComplete) {
      this.written.push(bytes.slice());
      return Promise.resolve(bytes.length);
    }
    if (this.#writes.length > 0) this.overlapped = true;
    return new Promise((resolve) => this.#writes.push({ resolve, bytes: bytes.slice() }));
  }
  finishWrites(): void {
    for (const { resolve, bytes } of this.#writes.splice(0)) {
      this.written.push(bytes);
      resolve(bytes.length);
    }
  }
  close(): void {
    this.closed = true;
    for (const read of this.#reads.splice(0)) read.resolve(null);
  }
  /** The peer closes its side: the pending read ends. */
  end(): void {
    for (const read of this.#reads.splice(0)) read.resolve(null);
  }
}

function setup(closeTimeoutMs = 2000) {
  const conn = new FakeConn();
  const clock = new FakeClock();
  const transport = new WsTransport(conn as unknown as Deno.Conn, {
    maxLineBytes: 64,
    closeTimeoutMs,
    clock,
  });
  const lines: string[] = [];
  const invalid: InvalidLine[] = [];
  const receiver = {
    line: (text: string) => lines.push(text),
    invalid: (p: InvalidLine) => invalid.push(p),
  };
  return { conn, clock, transport, lines, receiver };
}

function recorder() {
  const events: string[] = [];
  const done: WriteDone = {
    written: () => events.push("written"),
    failed: () => events.push("failed"),
  };
  return { events, done };
}

Deno.test("frameLines makes one unmasked text frame per line, with 16-bit lengths past 125 bytes", () => {
  const long = "x".repeat(200);
  const frames = frameLines([encoder.encode("ab\nc\n"), encoder.encode(`${long}\n`)]);
  assert.deepEqual([...frames.subarray(0, 4)], [0x81, 2, 0x61, 0x62]);
  assert.deepEqual([...frames.subarray(4, 7)], [0x81, 1, 0x63]);
  assert.deepEqual([...frames.subarray(7, 11)], [0x81, 126, 0, 200]);
  assert.equal(frames.length, 11 + 200);
});

Deno.test("frameLines cuts its frames from a shared slab, not a backing store per write", () => {
  // One backing store per write was malloc'd and freed outside V8 per notice per member.
  for (const text of ["JOINED bob\n", `SAID alice ${"y".repeat(300)}\n`]) {
    const frames = frameLines([encoder.encode(text)]);
    assert.ok(
      frames.buffer.byteLength > frames.byteLength,
      `a view of a larger store: ${text.length}`,
    );
  }
});

Deno.test("a write is reported only once the connection has taken its bytes", async () => {
  const { conn, transport } = setup();
  conn.writesComplete = false;
  const { events, done } = recorder();
  transport.write([encoder.encode("PONG\n")], done);
  await settle();
  assert.deepEqual(events, [], "reported before the kernel took the bytes");
  conn.finishWrites();
  await settle();
  assert.deepEqual(events, ["written"]);
  assert.deepEqual(conn.written.map((bytes) => [...bytes]), [[0x81, 4, ...encoder.encode("PONG")]]);
});

Deno.test("a ping is answered with a pong after the write under way, never inside it", async () => {
  const { conn, transport, receiver } = setup();
  conn.writesComplete = false;
  const { events, done } = recorder();
  transport.write([encoder.encode("A\n")], done);
  const reading = transport.read();
  conn.arrive(encodeFrame(Opcode.PING, encoder.encode("p"), MASK));
  assert.equal(transport.lines((await reading)!, receiver), true);
  await settle();
  conn.finishWrites();
  await settle();
  conn.finishWrites();
  await settle();
  assert.deepEqual(conn.written.map((bytes) => [...bytes]), [[0x81, 1, 0x41], [0x8a, 1, 0x70]]);
  assert.deepEqual(events, ["written"]);
  assert.equal(conn.overlapped, false, "the pong was written while the data write was pending");
});

Deno.test("text frames become lines; a message over the limit ends the stream with 1009", async () => {
  const { conn, transport, lines, receiver } = setup();
  const reading = transport.read();
  conn.arrive(
    new Uint8Array([
      ...encodeFrame(Opcode.TEXT, encoder.encode("JOIN a"), MASK),
      ...encodeFrame(Opcode.TEXT, encoder.encode("y".repeat(65)), MASK),
    ]),
  );
  assert.equal(transport.lines((await reading)!, receiver), false);
  assert.deepEqual(lines, ["JOIN a"]);
  await settle();
  assert.equal(conn.written[0]![0], 0x88);
  assert.equal((conn.written[0]![2]! << 8) | conn.written[0]![3]!, CloseCode.MESSAGE_TOO_BIG);
  // Later writes fail: nothing follows a close frame.
  const { events, done } = recorder();
  transport.write([encoder.encode("ERR X\n")], done);
  await settle();
  assert.deepEqual(events, ["failed"]);
  // The rest of the oversized message is still coming: closing now would answer it with a
  // reset, which can overtake the close frame. The transport reads on, discarding.
  transport.close();
  await settle();
  assert.equal(conn.closed, false, "closed with the peer's bytes unread");
  conn.arrive(new Uint8Array(40).fill(0x79));
  await settle();
  conn.arrive(encodeFrame(Opcode.CLOSE, new Uint8Array([0x03, 0xf1]), MASK));
  await settle();
  assert.equal(conn.closed, false);
  conn.end();
  await settle();
  assert.equal(conn.closed, true, "the peer closed: so does the transport");
});

Deno.test("after a protocol error a peer that never closes is cut off at the close timeout", async () => {
  const { conn, clock, transport, receiver } = setup(2000);
  const reading = transport.read();
  conn.arrive(encodeFrame(Opcode.TEXT, encoder.encode("y".repeat(65)), MASK));
  assert.equal(transport.lines((await reading)!, receiver), false);
  transport.close();
  await settle();
  await clock.advance(1999);
  assert.equal(conn.closed, false);
  await clock.advance(1);
  assert.equal(conn.closed, true);
});

Deno.test("close() waits for the peer's close frame, and no longer than the close timeout", async (t) => {
  await t.step("a silent peer is cut off at the timeout, not before", async () => {
    const { conn, clock, transport } = setup(2000);
    transport.close();
    await settle();
    assert.deepEqual([...conn.written[0]!.subarray(0, 4)], [0x88, 2, 0x03, 0xe8]);
    await clock.advance(1999);
    assert.equal(conn.closed, false);
    await clock.advance(1);
    assert.equal(conn.closed, true);
  });
  await t.step("a peer that answers is closed at once, the read under way included", async () => {
    const { conn, clock, transport, receiver } = setup(2000);
    const reading = transport.read(); // The session's read, under way as it closes.
    transport.close();
    await settle();
    conn.arrive(encodeFrame(Opcode.CLOSE, new Uint8Array([0x03, 0xe8]), MASK));
    assert.equal(transport.lines((await reading)!, receiver), false);
    await settle();
    assert.equal(conn.closed, true);
    assert.equal(clock.pending, 0, "the timer is cleared");
  });
  await t.step("with no read under way, the transport reads for the answer itself", async () => {
    const { conn, transport } = setup(2000);
    transport.close();
    await settle();
    assert.ok(conn.readPending);
    conn.arrive(encodeFrame(Opcode.CLOSE, new Uint8Array([]), MASK));
    await settle();
    assert.equal(conn.closed, true);
  });
  await t.step(
    "a peer that never reads: the close frame cannot be written, the timeout closes",
    async () => {
      const { conn, clock, transport } = setup(2000);
      conn.writesComplete = false;
      const { events, done } = recorder();
      transport.write([encoder.encode("a lot\n")], done);
      transport.close();
      await clock.advance(2000);
      assert.equal(conn.closed, true);
      await settle();
      assert.deepEqual(events, [], "the write stays unreported until the connection fails");
    },
  );
});
