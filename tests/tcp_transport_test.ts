/**
 * TcpTransport's line cutting on a fake connection: reads of whole lines are decoded at once,
 * and whatever that shortcut cannot take (a bad byte, a long line, a line cut between reads)
 * still comes out line by line, in order, as the splitter alone would give it.
 */
import { deepEqual as assertEquals } from "node:assert/strict";
import { TcpTransport } from "../src/tcp_transport.ts";
import type { InvalidLine, LineReceiver } from "../src/transport.ts";

const encoder = new TextEncoder();

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
  assertEquals(await readAll([bytes("PING a\r\nCHAT bob hé\n\n\rx\n")]), [
    "PING a",
    "CHAT bob hé",
    "",
    "\rx",
  ]);
});

Deno.test("tcp transport: a bad byte in a read of whole lines spoils only its own line", async () => {
  assertEquals(await readAll([bytes("PING a\n", [0xff, 0x0a], "PING b\n")]), [
    "PING a",
    "!BAD_ENCODING",
    "PING b",
  ]);
});

Deno.test("tcp transport: a too-long line among short ones in one read", async () => {
  assertEquals(await readAll([bytes("a\n", "x".repeat(65), "\nb\n")], 64), [
    "a",
    "!LINE_TOO_LONG",
    "b",
  ]);
  // Exactly the limit, with and without a CR, still passes.
  assertEquals(await readAll([bytes("y".repeat(64), "\r\n", "z".repeat(64), "\n")], 64), [
    "y".repeat(64),
    "z".repeat(64),
  ]);
});

Deno.test("tcp transport: lines cut between reads, then whole ones again", async () => {
  assertEquals(await readAll([bytes("PING a\nPI"), bytes("NG b\nPING c\n"), bytes("d\ne\n")]), [
    "PING a",
    "PING b",
    "PING c",
    "d",
    "e",
  ]);
});
