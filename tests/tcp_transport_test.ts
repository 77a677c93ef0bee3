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

// Line cutting on a fake connection: reads of whole lines are decoded at once, and whatever
// that shortcut cannot take (a bad byte, a long line, a line cut between reads) still comes
// out line by line, in order, as the splitter alone would give it.

/** A Deno.Conn that hands out the given reads, then the end. */
function fakeConn(reads: Uint8Array[]): Deno.Conn {
  return {
    remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 },
    read(buffer: Uint8Array): Promise<number | null> {
      const next = reads.shift();
      if (next === undefined) return Promise.resolve(null);
      buffer.set(next);
      return Promise.resolve(next.length);
    },
    close() {},
  } as unknown as Deno.Conn;
}

/** Everything a transport passes on, as text (`!PROBLEM` for an invalid line). */
async function readAll(reads: Uint8Array[], maxLineBytes = 64): Promise<string[]> {
  const seen: string[] = [];
  const receiver: LineReceiver = {
    line: (text: string) => void seen.push(text),
    invalid: (problem: InvalidLine) => void seen.push(`!${problem}`),
  };
  const transport = new TcpTransport(fakeConn(reads), { maxLineBytes });
  for (;;) {
    const count = await transport.read();
    if (count === null) return seen;
    transport.lines(count, receiver);
  }
}

const bytes = (...parts: (string | number[])[]) => {
  const chunks = parts.map((part) => typeof part === "string" ? encoder.encode(part) : part);
  const out = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) out.set(chunk, offset), offset += chunk.length;
  return out;
};

Deno.test("tcp transport: several whole lines in one read, CRLF and empty lines kept apart", async () => {
  assert.deepEqual(await readAll([bytes("PING a\r\nCHAT bob hé\n\n\rx\n")]), [
    "PING a",
    "CHAT bob hé",
    "",
    "\rx",
  ]);
});

Deno.test("tcp transport: a bad byte in a read of whole lines spoils only its own line", async () => {
  assert.deepEqual(await readAll([bytes("PING a\n", [0xff, 0x0a], "PING b\n")]), [
    "PING a",
    "!BAD_ENCODING",
    "PING b",
  ]);
});

Deno.test("tcp transport: a too-long line among short ones in one read", async () => {
  assert.deepEqual(await readAll([bytes("a\n", "x".repeat(65), "\nb\n")], 64), [
    "a",
    "!LINE_TOO_LONG",
    "b",
  ]);
  // Exactly the limit, with and without a CR, still passes.
  assert.deepEqual(await readAll([bytes("y".repeat(64), "\r\n", "z".repeat(64), "\n")], 64), [
    "y".repeat(64),
    "z".repeat(64),
  ]);
});

Deno.test("tcp transport: lines cut between reads, then whole ones again", async () => {
  assert.deepEqual(await readAll([bytes("PING a\nPI"), bytes("NG b\nPING c\n"), bytes("d\ne\n")]), [
    "PING a",
    "PING b",
    "PING c",
    "d",
    "e",
  ]);
});
