import assert from "node:assert/strict";
import { configureSync, type LogRecord, resetSync } from "@logtape/logtape";
import {
  decodeDatagram,
  encodeControl,
  encodeRoom,
  MAGIC,
  MAX_DATAGRAM_BYTES,
} from "../src/wire.ts";
import { Endpoint, MAX_OUTBOX_BYTES, type Outbox, socketPath } from "../src/endpoint.ts";
import { withTimeout } from "./test_util.ts";

/** Records are this long: two of them and the MAGIC byte fill a datagram exactly. */
const RECORD_BYTES = Math.floor((MAX_DATAGRAM_BYTES - 1) / 2);

/** A record of `size` bytes whose first four hold `index`, so that it can be recognized. */
function record(index: number, size = 16): Uint8Array {
  const bytes = new Uint8Array(size).fill(0x61);
  new DataView(bytes.buffer).setUint32(0, index);
  return bytes;
}

/** Splits a received datagram into the indexes of its records of `size` bytes. */
function indexes(datagram: Uint8Array, size = 16): number[] {
  assert.equal(datagram[0], MAGIC);
  assert.equal((datagram.length - 1) % size, 0, `a datagram of ${datagram.length} bytes`);
  const view = new DataView(datagram.buffer, datagram.byteOffset + 1);
  return Array.from({ length: (datagram.length - 1) / size }, (_, i) => view.getUint32(i * size));
}

/** A temp runtime dir with an endpoint, and destinations that receive only when asked. */
class Fixture implements AsyncDisposable {
  readonly dir = Deno.makeTempDirSync({ prefix: "chatd-endpoint-" });
  readonly endpoint = new Endpoint(this.dir, "0-0-0-0", { onDatagram: () => {} });
  readonly #receivers: Deno.DatagramConn[] = [];

  /** Binds destination `id`; nothing is read from it until the test calls `receive`. */
  destination(id: string): Deno.DatagramConn {
    const conn = Deno.listenDatagram({ transport: "unixpacket", path: socketPath(this.dir, id) });
    this.#receivers.push(conn);
    return conn;
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.endpoint.close();
    for (const conn of this.#receivers) conn.close();
    Deno.removeSync(this.dir, { recursive: true });
    return Promise.resolve();
  }
}

async function receive(conn: Deno.DatagramConn): Promise<Uint8Array> {
  // The default buffer holds only a UDP datagram's 65,507 bytes.
  const buffer = new Uint8Array(MAX_DATAGRAM_BYTES);
  const [data] = await withTimeout(conn.receive(buffer), 5000, "a datagram");
  return data.slice();
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Whether `promise` is still pending after the turns already queued have run. */
async function pending(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(() => settled = true, () => settled = true);
  await nextTurn();
  return !settled;
}

/**
 * Sends one record per datagram to a destination that reads nothing until a send blocks
 * (its queue holds `net.unix.max_dgram_qlen` datagrams). Returns how many were pushed; the
 * last of them is the send under way. A send that is merely slow and taken for blocked does
 * no harm: it is still under way when the test pushes more, which is all the tests need.
 */
async function jam(outbox: Outbox): Promise<number> {
  for (let i = 0; i < 1000; i++) {
    outbox.push(record(i));
    const flushed = outbox.flushed();
    const sent = await Promise.race([
      flushed.then(() => true),
      new Promise<false>((resolve) => setTimeout(() => resolve(false), 200)),
    ]);
    if (!sent) return i + 1;
  }
  throw new Error("the destination never stopped taking datagrams");
}

Deno.test("Outbox packs the records pushed in one turn into one datagram", async () => {
  await using fixture = new Fixture();
  const destination = fixture.destination("1-0-0-0");
  for (let i = 0; i < 5; i++) fixture.endpoint.send("1-0-0-0", record(i));
  await withTimeout(fixture.endpoint.flushed(), 5000, "flushed");
  assert.deepEqual(indexes(await receive(destination)), [0, 1, 2, 3, 4]);
});

Deno.test("Outbox packs the records pushed while a send is under way into the next datagram", async () => {
  await using fixture = new Fixture();
  const destination = fixture.destination("1-0-0-0");
  const outbox = fixture.endpoint.outbox("1-0-0-0")!;
  const jammed = await jam(outbox);
  // Pushed in three later turns, while the last send waits.
  for (const index of [1000, 1001, 1002]) {
    outbox.push(record(index));
    await nextTurn();
  }
  const flushed = outbox.flushed();
  assert.ok(await pending(flushed), "flushed() resolved while records still waited");
  const received: number[][] = [];
  while (received.flat().length < jammed + 3) received.push(indexes(await receive(destination)));
  await withTimeout(flushed, 5000, "flushed after the destination read");
  // One datagram per record until the jam, then the three together.
  assert.deepEqual(received, [
    ...Array.from({ length: jammed }, (_, i) => [i]),
    [1000, 1001, 1002],
  ]);
});

Deno.test("Outbox drops and logs what is pushed past 16 MiB for a stuck destination", async () => {
  const logged: LogRecord[] = [];
  configureSync({
    reset: true,
    sinks: { capture: (entry) => logged.push(entry) },
    loggers: [
      { category: ["chatd"], lowestLevel: "warning", sinks: ["capture"] },
      { category: ["logtape", "meta"], lowestLevel: "error", sinks: [] },
    ],
  });
  try {
    await using fixture = new Fixture();
    const destination = fixture.destination("1-0-0-0");
    const outbox = fixture.endpoint.outbox("1-0-0-0")!;
    const jammed = await jam(outbox);
    // As many records as fit under the cap, then ten more: those are dropped, logged once.
    const fit = Math.floor(MAX_OUTBOX_BYTES / RECORD_BYTES);
    for (let i = 0; i < fit + 10; i++) outbox.push(record(10_000 + i, RECORD_BYTES));
    const full = logged.filter((entry) => entry.message.join("").includes("outbox full"));
    assert.equal(full.length, 1, `${full.length} "outbox full" warnings`);
    assert.equal(full[0]!.properties.dropped, 1);
    assert.equal(full[0]!.properties.to, socketPath(fixture.dir, "1-0-0-0"));

    // What fitted is all delivered, in order, once the destination reads again.
    const flushed = outbox.flushed();
    const small: number[] = [];
    const big: number[] = [];
    while (small.length < jammed) small.push(...indexes(await receive(destination)));
    while (big.length < fit) big.push(...indexes(await receive(destination), RECORD_BYTES));
    await withTimeout(flushed, 10_000, "flushed");
    assert.deepEqual(small, Array.from({ length: jammed }, (_, i) => i));
    assert.deepEqual(big, Array.from({ length: fit }, (_, i) => 10_000 + i));
  } finally {
    resetSync();
  }
});

Deno.test("a stuck destination does not hold up the others", async () => {
  await using fixture = new Fixture();
  fixture.destination("1-0-0-0"); // never read
  const live = fixture.destination("2-0-0-0");
  await jam(fixture.endpoint.outbox("1-0-0-0")!);
  for (let i = 0; i < 3; i++) {
    fixture.endpoint.send("2-0-0-0", record(i));
    assert.deepEqual(indexes(await receive(live)), [i]);
  }
  await withTimeout(fixture.endpoint.outbox("2-0-0-0")!.flushed(), 5000, "the live one flushed");
  assert.ok(await pending(fixture.endpoint.flushed()), "the stuck one counts as flushed");
});

Deno.test("a destination that is gone is reported, and its records count as flushed", async () => {
  await using fixture = new Fixture();
  const gone: string[] = [];
  const endpoint = new Endpoint(fixture.dir, "0-1-0-0", {
    onDatagram: () => {},
    onGone: (d) => gone.push(d),
  });
  try {
    endpoint.send("3-0-0-0", record(0));
    await withTimeout(endpoint.flushed(), 5000, "flushed");
    assert.deepEqual(gone, ["3-0-0-0"]);
    assert.deepEqual([...endpoint.destinations()], []);
  } finally {
    endpoint.close();
  }
});

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** A socket bound as endpoint `id` of `dir` that reads only when asked. */
function rawEndpoint(dir: string, id: string): Deno.DatagramConn {
  return Deno.listenDatagram({ transport: "unixpacket", path: socketPath(dir, id) });
}

Deno.test("a closed endpoint refuses sends: no outbox socket is bound again (defect 3)", async () => {
  const dir = Deno.makeTempDirSync();
  const receiver = rawEndpoint(dir, "b");
  try {
    const endpoint = new Endpoint(dir, "a", { onDatagram: () => {} });
    endpoint.close();
    endpoint.send("b", encodeRoom(new TextEncoder().encode("late\n")));
    await withTimeout(endpoint.flushed(), 2000, "flushed");
    assert.equal(exists(socketPath(dir, "a.to.b")), false);
    assert.deepEqual([...endpoint.destinations()], []);
  } finally {
    receiver.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a full outbox drops chat records but never directory records (defect 4)", async () => {
  const dir = Deno.makeTempDirSync();
  const receiver = rawEndpoint(dir, "b");
  const endpoint = new Endpoint(dir, "a", { onDatagram: () => {} });
  try {
    // The receiver reads nothing yet: the first datagrams fill its queue, the rest wait.
    const line = new Uint8Array(64 * 1024 - 6).fill(0x78);
    line[line.length - 1] = 10;
    const chat = encodeRoom(line);
    const count = Math.ceil((MAX_OUTBOX_BYTES * 1.25) / chat.length);
    for (let i = 0; i < count; i++) endpoint.send("b", chat);
    // Short records fill what room the long ones left.
    const short = encodeRoom(new TextEncoder().encode("x\n"));
    for (let i = 0; i < chat.length / short.length; i++) endpoint.send("b", short);
    const entry = { name: "alice", ep: "1-0-1-0", conn: 7 };
    endpoint.send("b", encodeControl({ kind: "release", entry }));
    const buffer = new Uint8Array(MAX_DATAGRAM_BYTES);
    let rooms = 0;
    for (;;) {
      const [data] = await withTimeout(receiver.receive(buffer), 2000, "the release record");
      let release = false;
      for (const record of decodeDatagram(data)) {
        if (record.kind === "room") rooms++;
        else if (record.kind === "control") release = record.message.kind === "release";
      }
      if (release) break;
    }
    assert.ok(rooms < count, `${rooms} chat records arrived: none was dropped`);
  } finally {
    endpoint.close();
    receiver.close();
    Deno.removeSync(dir, { recursive: true });
  }
});
