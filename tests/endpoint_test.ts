import assert from "node:assert/strict";
import { decodeDatagram, encodeControl, encodeRoom, MAX_DATAGRAM_BYTES } from "../src/wire.ts";
import { Endpoint, MAX_OUTBOX_BYTES, socketPath } from "../src/endpoint.ts";
import { withTimeout } from "./test_util.ts";

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
  let dropped = 0;
  const endpoint = new Endpoint(dir, "a", { onDatagram: () => {}, onDropped: () => dropped++ });
  try {
    // The receiver reads nothing yet: the first datagrams fill its queue, the rest wait.
    const line = new Uint8Array(64 * 1024 - 6).fill(0x78);
    line[line.length - 1] = 10;
    const chat = encodeRoom(line);
    const count = Math.ceil((MAX_OUTBOX_BYTES * 1.25) / chat.length);
    for (let i = 0; i < count; i++) endpoint.send("b", chat);
    // Short records fill what room the long ones left.
    const short = encodeRoom(new TextEncoder().encode("x\n"));
    let shorts = 0;
    for (let i = 0; i < chat.length / short.length; i++, shorts++) endpoint.send("b", short);
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
    // Every chat record arrived or was counted as dropped (for /metrics).
    assert.equal(dropped, count + shorts - rooms);
  } finally {
    endpoint.close();
    receiver.close();
    Deno.removeSync(dir, { recursive: true });
  }
});
