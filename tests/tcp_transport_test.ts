import assert from "node:assert/strict";
import { TcpTransport } from "../src/tcp_transport.ts";
import type { InvalidLine, LineReceiver } from "../src/transport.ts";
import { withTimeout } from "./test_util.ts";

const encoder = new TextEncoder();

/** Records lines, and invalid ones as `!PROBLEM`. */
class Recorder implements LineReceiver {
  readonly lines: string[] = [];
  line(text: string): void {
    this.lines.push(text);
  }
  invalid(problem: InvalidLine): void {
    this.lines.push(`!${problem}`);
  }
}

/** Two loopback connections, each a client socket and the server side in a TcpTransport. */
async function connections(count: number, maxLineBytes = 64) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const pairs: { client: Deno.TcpConn; server: Deno.Conn; transport: TcpTransport }[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const [client, server] = await withTimeout(
        Promise.all([
          Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
          listener.accept(),
        ]),
        5000,
        "loopback connection",
      );
      pairs.push({ client, server, transport: new TcpTransport(server, { maxLineBytes }) });
    }
  } finally {
    listener.close();
  }
  return {
    pairs,
    [Symbol.dispose]() {
      for (const { client, transport } of pairs) {
        transport.close();
        try {
          client.close();
        } catch { /* closed by the test */ }
      }
    },
  };
}

/** Sends `bytes` from the client side and runs one read of the transport into `receiver`. */
async function readInto(
  pair: { client: Deno.TcpConn; transport: TcpTransport },
  bytes: Uint8Array | string,
  receiver: LineReceiver,
): Promise<void> {
  await pair.client.write(typeof bytes === "string" ? encoder.encode(bytes) : bytes);
  const count = await withTimeout(pair.transport.read(), 5000, "read");
  assert.ok(count !== null);
  pair.transport.lines(count, receiver);
}

Deno.test("TcpTransport hands each connection's lines to that connection's receiver", async () => {
  using setup = await connections(2);
  const [a, b] = setup.pairs as [typeof setup.pairs[0], typeof setup.pairs[0]];
  const ra = new Recorder();
  const rb = new Recorder();
  // Reads of both are under way at once, as in a thread, and complete in either order.
  const readA = a.transport.read();
  const readB = b.transport.read();
  await b.client.write(encoder.encode("b1\n"));
  await a.client.write(encoder.encode("a1\r\na2\npar"));
  b.transport.lines((await withTimeout(readB, 5000, "read b"))!, rb);
  a.transport.lines((await withTimeout(readA, 5000, "read a"))!, ra);
  await readInto(b, new Uint8Array([0xff, 0x0a]), rb);
  await readInto(a, "tial\n", ra);
  assert.deepEqual(ra.lines, ["a1", "a2", "partial"]);
  assert.deepEqual(rb.lines, ["b1", "!BAD_ENCODING"]);
});

Deno.test("TcpTransport reports a line over the limit once, then reads on", async () => {
  using setup = await connections(1, 8);
  const [pair] = setup.pairs as [typeof setup.pairs[0]];
  const receiver = new Recorder();
  await readInto(pair, "123456789\nok\n", receiver);
  assert.deepEqual(receiver.lines, ["!LINE_TOO_LONG", "ok"]);
});

Deno.test("TcpTransport names its peer HOST:PORT, also once closed", async () => {
  using setup = await connections(1);
  const [{ client, transport }] = setup.pairs as [typeof setup.pairs[0]];
  const expected = `127.0.0.1:${client.localAddr.port}`;
  assert.equal(transport.peer, expected);
  transport.close();
  assert.equal(transport.peer, expected);
});

Deno.test("TcpTransport writes all of a write the kernel takes in parts, in order", async () => {
  using setup = await connections(1);
  const [{ client, transport }] = setup.pairs as [typeof setup.pairs[0]];
  // More than loopback's socket buffers hold: the kernel takes it in several parts.
  const data = new Uint8Array(8 * 1024 * 1024);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 12)) & 0xff;
  const { promise: written, resolve, reject } = Promise.withResolvers<void>();
  transport.write([data.subarray(0, 4096), data.subarray(4096)], {
    written: resolve,
    failed: reject,
  });
  const received = new Uint8Array(data.length);
  let at = 0;
  while (at < data.length) {
    const n = await withTimeout(client.read(received.subarray(at)), 5000, "client read");
    assert.ok(n !== null, `end of stream after ${at} bytes`);
    at += n;
  }
  await withTimeout(written, 5000, "write done");
  assert.ok(received.every((byte, i) => byte === data[i]), "bytes differ");
});
