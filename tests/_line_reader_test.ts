import assert from "node:assert/strict";
import { LineSplitter } from "../src/_line_reader.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What a sink saw: each line as text, each too-long line as `TOO_LONG`. */
const TOO_LONG = Symbol("TOO_LONG");
type Event = string | typeof TOO_LONG;

/** Feeds `chunks` to `splitter` and returns what its sink saw, in order. */
function feed(splitter: LineSplitter, ...chunks: (string | Uint8Array)[]): Event[] {
  const events: Event[] = [];
  const sink = {
    // The view is valid only during the call: decode it right away.
    line: (bytes: Uint8Array) => events.push(decoder.decode(bytes)),
    tooLong: () => events.push(TOO_LONG),
  };
  for (const chunk of chunks) {
    splitter.push(typeof chunk === "string" ? encoder.encode(chunk) : chunk, sink);
  }
  return events;
}

Deno.test("LineSplitter emits the lines of one chunk without their LF", () => {
  const splitter = new LineSplitter(64);
  assert.deepEqual(feed(splitter, "JOIN alice\nPING\n"), ["JOIN alice", "PING"]);
  assert.equal(splitter.hasPartial, false);
});

Deno.test("LineSplitter joins a line split across chunks", async (t) => {
  await t.step("in two", () => {
    const splitter = new LineSplitter(64);
    assert.deepEqual(feed(splitter, "CHAT bob he"), []);
    assert.equal(splitter.hasPartial, true);
    assert.deepEqual(feed(splitter, "llo\nPI"), ["CHAT bob hello"]);
    assert.equal(splitter.hasPartial, true);
    assert.deepEqual(feed(splitter, "NG\n"), ["PING"]);
    assert.equal(splitter.hasPartial, false);
  });
  await t.step("one byte at a time", () => {
    const splitter = new LineSplitter(64);
    const text = "JOIN alice\r\nCHAT * hi there\n\nWHO\n";
    assert.deepEqual(feed(splitter, ...text.split("")), [
      "JOIN alice",
      "CHAT * hi there",
      "",
      "WHO",
    ]);
  });
  await t.step("with the LF alone in the next chunk", () => {
    assert.deepEqual(feed(new LineSplitter(64), "WHO", "\n"), ["WHO"]);
  });
  await t.step("with a multi-byte character cut in half", () => {
    const bytes = encoder.encode("CHAT bob é\n");
    const cut = bytes.indexOf(0xc3) + 1;
    assert.deepEqual(feed(new LineSplitter(64), bytes.subarray(0, cut), bytes.subarray(cut)), [
      "CHAT bob é",
    ]);
  });
});

Deno.test("LineSplitter strips the CR of a CRLF and keeps any other CR", async (t) => {
  await t.step("CRLF in one chunk", () => {
    assert.deepEqual(feed(new LineSplitter(64), "PING a\r\nPING b\r\n"), ["PING a", "PING b"]);
  });
  await t.step("CR and LF in different chunks", () => {
    assert.deepEqual(feed(new LineSplitter(64), "PING a\r", "\nPING b\r", "\n"), [
      "PING a",
      "PING b",
    ]);
  });
  await t.step("a CR inside a line", () => {
    assert.deepEqual(feed(new LineSplitter(64), "a\rb\n"), ["a\rb"]);
  });
  await t.step("only the last of two CRs", () => {
    assert.deepEqual(feed(new LineSplitter(64), "a\r\r\n"), ["a\r"]);
  });
});

Deno.test("LineSplitter emits empty lines", () => {
  assert.deepEqual(feed(new LineSplitter(64), "\n\r\n\nPING\n\n"), ["", "", "", "PING", ""]);
});

Deno.test("LineSplitter holds a line without LF until it ends", () => {
  const splitter = new LineSplitter(64);
  assert.deepEqual(feed(splitter, "PING"), []);
  assert.equal(splitter.hasPartial, true);
  assert.deepEqual(feed(splitter, new Uint8Array(0)), []);
  assert.equal(splitter.hasPartial, true);
  assert.deepEqual(feed(splitter, "\n"), ["PING"]);
});

Deno.test("LineSplitter accepts a line of exactly the limit", async (t) => {
  const line = "x".repeat(16);
  for (
    const [what, chunks] of [
      ["LF, one chunk", [`${line}\n`]],
      ["CRLF, one chunk", [`${line}\r\n`]],
      ["LF, split", [line.slice(0, 5), line.slice(5), "\n"]],
      ["CRLF, split before the CR", [line, "\r\n"]],
      ["CRLF, split between CR and LF", [`${line}\r`, "\n"]],
      ["CRLF, split in the line", [line.slice(0, 10), `${line.slice(10)}\r`, "\n"]],
    ] as const
  ) {
    await t.step(what, () => {
      const splitter = new LineSplitter(16);
      assert.deepEqual(feed(splitter, ...chunks, "next\n"), [line, "next"]);
      assert.equal(splitter.hasPartial, false);
    });
  }
});

Deno.test("LineSplitter rejects a line of the limit plus one byte, once", async (t) => {
  const line = "x".repeat(17);
  for (
    const [what, chunks] of [
      ["LF, one chunk", [`${line}\n`]],
      ["CRLF, one chunk", [`${line}\r\n`]],
      ["LF, split", [line.slice(0, 5), line.slice(5), "\n"]],
      ["LF alone in the next chunk", [line, "\n"]],
      ["CRLF, split between CR and LF", [`${line}\r`, "\n"]],
      ["CRLF, split in the line", [line.slice(0, 16), `${line.slice(16)}\r\n`]],
      ["one byte at a time", [...`${line}\r\n`]],
    ] as const
  ) {
    await t.step(what, () => {
      const splitter = new LineSplitter(16);
      assert.deepEqual(feed(splitter, ...chunks, "next\n"), [TOO_LONG, "next"]);
      assert.equal(splitter.hasPartial, false);
    });
  }
});

Deno.test("LineSplitter reports a line that never ends once and does not buffer it", async (t) => {
  await t.step("in one chunk", () => {
    const splitter = new LineSplitter(16);
    assert.deepEqual(feed(splitter, "y".repeat(1000)), [TOO_LONG]);
    assert.equal(splitter.hasPartial, false);
  });
  await t.step("in many chunks", () => {
    const splitter = new LineSplitter(16);
    const events: Event[] = [];
    for (let i = 0; i < 1000; i++) {
      events.push(...feed(splitter, "y".repeat(7)));
      assert.equal(splitter.hasPartial, events.length === 0, `after chunk ${i}`);
    }
    assert.deepEqual(events, [TOO_LONG]);
  });
  await t.step("as soon as it is longer than the limit and a CR", () => {
    const splitter = new LineSplitter(16);
    assert.deepEqual(feed(splitter, "y".repeat(16)), []);
    assert.deepEqual(feed(splitter, "y", "y"), [TOO_LONG]);
    assert.equal(splitter.hasPartial, false);
  });
});

Deno.test("LineSplitter recovers after a too-long line", async (t) => {
  await t.step("ending in the same chunk", () => {
    assert.deepEqual(
      feed(new LineSplitter(16), `PING ${"z".repeat(40)}\nPING ok\n`),
      [TOO_LONG, "PING ok"],
    );
  });
  await t.step("ending in a later chunk", () => {
    const splitter = new LineSplitter(16);
    assert.deepEqual(feed(splitter, "z".repeat(20), "z".repeat(20), "zz\r\nPING ok\nPI"), [
      TOO_LONG,
      "PING ok",
    ]);
    assert.deepEqual(feed(splitter, "NG 2\n"), ["PING 2"]);
  });
  await t.step("with its LF alone in the next chunk", () => {
    assert.deepEqual(feed(new LineSplitter(16), "z".repeat(20), "\n", "PING ok\n"), [
      TOO_LONG,
      "PING ok",
    ]);
  });
  await t.step("twice in a row", () => {
    const long = "z".repeat(20);
    assert.deepEqual(feed(new LineSplitter(16), `${long}\n${long}`, `${long}\nok\n`), [
      TOO_LONG,
      TOO_LONG,
      "ok",
    ]);
  });
  await t.step("with a line of exactly the limit next", () => {
    const max = "m".repeat(16);
    assert.deepEqual(
      feed(new LineSplitter(16), "z".repeat(30), `\n${max.slice(0, 8)}`, `${max.slice(8)}\n`),
      [
        TOO_LONG,
        max,
      ],
    );
  });
});

Deno.test("LineSplitter emits many lines of one chunk in order", () => {
  const lines = Array.from({ length: 1000 }, (_, i) => `PING ${i}`);
  const chunk = lines.map((line, i) => line + (i % 2 === 0 ? "\n" : "\r\n")).join("");
  const splitter = new LineSplitter(16);
  assert.deepEqual(feed(splitter, chunk), lines);
  assert.equal(splitter.hasPartial, false);
});

Deno.test("LineSplitter emits the bytes as sent, invalid UTF-8 included", () => {
  const bytes: number[][] = [];
  new LineSplitter(16).push(new Uint8Array([0x61, 0xff, 0x00, 0x0a, 0xc3, 0x0d, 0x0a]), {
    line: (line) => bytes.push([...line]),
    tooLong: () => assert.fail("no line is too long"),
  });
  assert.deepEqual(bytes, [[0x61, 0xff, 0x00], [0xc3]]);
});
