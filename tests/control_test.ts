import assert from "node:assert/strict";
import {
  ControlError,
  encodeLine,
  parseFromChild,
  parseFromThread,
  parseToChild,
  readLines,
} from "../src/control.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Asserts that `parse` throws a ControlError saying exactly `message`. */
function assertControlError(parse: () => unknown, message: string): void {
  assert.throws(parse, (error: unknown) => {
    assert.ok(error instanceof ControlError, `not a ControlError: ${error}`);
    assert.equal(error.name, "ControlError");
    assert.equal(error.message, message);
    return true;
  });
}

/** A stream that yields `chunks`, given as text or bytes, then closes. */
function streamOf(...chunks: (string | Uint8Array)[]): ReadableStream<Uint8Array> {
  return ReadableStream.from(
    chunks.map((chunk) => typeof chunk === "string" ? encoder.encode(chunk) : chunk),
  );
}

/** Every line `readLines` yields until the stream closes. */
async function linesOf(stream: ReadableStream<Uint8Array>, maxLength?: number): Promise<string[]> {
  return await Array.fromAsync(readLines(stream, maxLength));
}

Deno.test("parseToChild accepts shutdown and drain", () => {
  assert.deepEqual(parseToChild('{"kind":"shutdown"}'), { kind: "shutdown" });
  assert.deepEqual(parseToChild('{"kind":"drain"}'), { kind: "drain" });
  assert.deepEqual(parseToChild(' { "kind" : "drain", "extra": 1 } '), { kind: "drain" });
});

Deno.test("parseToChild throws ControlError for anything else", async (t) => {
  await t.step("not JSON", () => {
    assertControlError(() => parseToChild("shutdown"), "Not JSON: shutdown");
    assertControlError(() => parseToChild(""), "Not JSON: ");
    assertControlError(() => parseToChild('{"kind":"shutdown"'), 'Not JSON: {"kind":"shutdown"');
  });
  for (
    const line of [
      '{"kind":"listening"}',
      '{"kind":"thread_exit","ep":"0-0-0-0"}',
      '{"kind":"SHUTDOWN"}',
      '{"kind":"init"}',
      "{}",
      "null",
      "[]",
      '["shutdown"]',
      '"shutdown"',
      "42",
    ]
  ) {
    await t.step(line, () => {
      assertControlError(() => parseToChild(line), `Unknown control message: ${line}`);
    });
  }
  await t.step("a long line, cut to 80 characters in the message", () => {
    const line = JSON.stringify({ kind: "frob", padding: "p".repeat(200) });
    assertControlError(() => parseToChild(line), `Unknown control message: ${line.slice(0, 80)}`);
    assertControlError(() => parseToChild("x".repeat(200)), `Not JSON: ${"x".repeat(80)}`);
  });
});

Deno.test("parseFromChild accepts listening, retiring and thread_exit", () => {
  assert.deepEqual(parseFromChild('{"kind":"listening"}'), { kind: "listening" });
  assert.deepEqual(parseFromChild('{"kind":"retiring"}'), { kind: "retiring" });
  assert.deepEqual(parseFromChild('{"kind":"thread_exit","ep":"1-0-7-2"}'), {
    kind: "thread_exit",
    ep: "1-0-7-2",
  });
  const ep = "e".repeat(63);
  assert.deepEqual(parseFromChild(JSON.stringify({ kind: "thread_exit", ep, more: 1 })), {
    kind: "thread_exit",
    ep,
  });
});

Deno.test("parseFromChild throws ControlError for anything else", async (t) => {
  await t.step("not JSON", () => {
    assertControlError(() => parseFromChild("listening"), "Not JSON: listening");
  });
  for (
    const line of [
      '{"kind":"shutdown"}',
      '{"kind":"drain"}',
      '{"kind":"quota"}',
      '{"kind":"thread_exit"}',
      '{"kind":"thread_exit","ep":7}',
      '{"kind":"thread_exit","ep":null}',
      JSON.stringify({ kind: "thread_exit", ep: "e".repeat(64) }),
      "{}",
      "null",
      "[]",
      '"listening"',
    ]
  ) {
    await t.step(line, () => {
      assertControlError(
        () => parseFromChild(line),
        `Unknown control message: ${line.slice(0, 80)}`,
      );
    });
  }
});

Deno.test("parseFromChild takes a pong with the child's metrics, or a bare one; refuses a bad one", async (t) => {
  assert.deepEqual(parseFromChild('{"kind":"pong"}'), { kind: "pong" });
  const full = { kind: "pong", rss: 50_000_000, serving: 2, metrics: [0, 1, 2.5] };
  assert.deepEqual(parseFromChild(JSON.stringify({ ...full, extra: true })), full);
  for (
    const bad of [
      { ...full, rss: -1 },
      { ...full, rss: "1" },
      { ...full, serving: undefined },
      { ...full, metrics: [1, "2"] },
      { ...full, metrics: [1, null] },
      { ...full, metrics: {} },
      { ...full, metrics: new Array(64 * 64 + 1).fill(0) },
    ]
  ) {
    const line = JSON.stringify(bad);
    await t.step(line.slice(0, 60), () => {
      assertControlError(() => parseFromChild(line), `Bad pong: ${line.slice(0, 80)}`);
    });
  }
});

Deno.test("parseFromThread accepts listening, quota and done", () => {
  assert.deepEqual(parseFromThread({ kind: "listening" }), { kind: "listening" });
  assert.deepEqual(parseFromThread({ kind: "quota" }), { kind: "quota" });
  assert.deepEqual(parseFromThread({ kind: "done", extra: true }), { kind: "done" });
});

Deno.test("parseFromThread throws ControlError for anything else", async (t) => {
  const cases: [string, unknown, string][] = [
    ["a process → thread message", { kind: "init" }, "init"],
    ["shutdown", { kind: "shutdown" }, "shutdown"],
    ["a child → supervisor message", { kind: "retiring" }, "retiring"],
    ["a kind in the wrong case", { kind: "DONE" }, "DONE"],
    ["no kind", {}, "undefined"],
    ["null", null, "undefined"],
    ["undefined", undefined, "undefined"],
    ["a string", "done", "undefined"],
    ["a number", 3, "undefined"],
  ];
  for (const [what, value, kind] of cases) {
    await t.step(what, () => {
      assertControlError(() => parseFromThread(value), `Unknown thread message: ${kind}`);
    });
  }
});

Deno.test("encodeLine writes one JSON object and LF, which the other side parses back", () => {
  assert.equal(decoder.decode(encodeLine({ kind: "drain" })), '{"kind":"drain"}\n');
  assert.equal(
    decoder.decode(encodeLine({ kind: "thread_exit", ep: "0-1-2-3" })),
    '{"kind":"thread_exit","ep":"0-1-2-3"}\n',
  );
  for (const message of [{ kind: "shutdown" }, { kind: "drain" }] as const) {
    assert.deepEqual(parseToChild(decoder.decode(encodeLine(message)).slice(0, -1)), message);
  }
  for (
    const message of [
      { kind: "listening" },
      { kind: "retiring" },
      { kind: "thread_exit", ep: "0-1-2-3" },
    ] as const
  ) {
    assert.deepEqual(parseFromChild(decoder.decode(encodeLine(message)).slice(0, -1)), message);
  }
});

Deno.test("readLines yields the lines of a stream without their LF", async () => {
  assert.deepEqual(await linesOf(streamOf('{"kind":"listening"}\n{"kind":"retiring"}\n')), [
    '{"kind":"listening"}',
    '{"kind":"retiring"}',
  ]);
  assert.deepEqual(await linesOf(streamOf()), []);
  assert.deepEqual(await linesOf(streamOf("\n\na\n")), ["", "", "a"]);
});

Deno.test("readLines joins lines split across chunks", async (t) => {
  await t.step("in the middle of a line", async () => {
    assert.deepEqual(
      await linesOf(streamOf('{"kind":"lis', 'tening"}\n{"ki', 'nd":"retiring"}\n')),
      [
        '{"kind":"listening"}',
        '{"kind":"retiring"}',
      ],
    );
  });
  await t.step("with the LF alone in a chunk", async () => {
    assert.deepEqual(await linesOf(streamOf("abc", "\n", "def", "\n")), ["abc", "def"]);
  });
  await t.step("one byte at a time", async () => {
    const text = "first\nsecond line\n\nthird\n";
    assert.deepEqual(await linesOf(streamOf(...text.split(""))), [
      "first",
      "second line",
      "",
      "third",
    ]);
  });
  await t.step("in the middle of a multi-byte character", async () => {
    const bytes = encoder.encode("é😀\nz\n");
    const chunks = [...bytes].map((byte) => new Uint8Array([byte]));
    assert.deepEqual(await linesOf(streamOf(...chunks)), ["é😀", "z"]);
  });
});

Deno.test("readLines yields many lines of one chunk in order", async () => {
  const lines = Array.from(
    { length: 1000 },
    (_, i) => JSON.stringify({ kind: "thread_exit", ep: `0-0-${i}-0` }),
  );
  assert.deepEqual(await linesOf(streamOf(lines.join("\n") + "\n")), lines);
});

Deno.test("readLines drops lines longer than maxLength and keeps the rest", async (t) => {
  await t.step("in one chunk", async () => {
    const text = `short\n${"x".repeat(11)}\n${"y".repeat(10)}\nafter\n`;
    assert.deepEqual(await linesOf(streamOf(text), 10), ["short", "y".repeat(10), "after"]);
  });
  await t.step("ending in the chunk that makes it too long", async () => {
    assert.deepEqual(await linesOf(streamOf("ok\nxxxxxx", "xxxxxx\nafter\n"), 10), ["ok", "after"]);
  });
  await t.step("with the default limit of 65536", async () => {
    const text = `${"x".repeat(65537)}\n${"y".repeat(65536)}\nafter\n`;
    assert.deepEqual(await linesOf(streamOf(text)), ["y".repeat(65536), "after"]);
  });
});

// When a line passes maxLength before its LF has arrived, readLines must remember that it is
// inside that line, or the rest of it, once its LF arrives, is yielded as a line of its own
// ("xx" here).
Deno.test("readLines drops a too-long line that spans chunks, its tail included", async () => {
  const chunks = ["ok\n", "x".repeat(13), "x".repeat(13), 'xx\n{"kind":"listening"}\n'];
  assert.deepEqual(await linesOf(streamOf(...chunks), 24), ["ok", '{"kind":"listening"}']);
});

Deno.test("the TLS reload order crosses the pipe whole, and a malformed one is refused", () => {
  const order = { kind: "tls", cert: "-----BEGIN CERTIFICATE-----\nA\n", key: "K\n" } as const;
  const line = decoder.decode(encodeLine(order)).trimEnd();
  assert.ok(!line.includes("\n"), "one line");
  assert.deepEqual(parseToChild(line), order);
  assert.throws(() => parseToChild(JSON.stringify({ kind: "tls", cert: "A" })), ControlError);
  assert.throws(
    () => parseToChild(JSON.stringify({ kind: "tls", cert: 1, key: "K" })),
    ControlError,
  );
});
