import assert from "node:assert/strict";
import {
  type ControlMessage,
  endpointId,
  parseControlMessage,
  parseEndpointId,
} from "../src/directory_messages.ts";
import {
  DatagramError,
  type DatagramRecord,
  decodeDatagram,
  encodeControl,
  encodeDirect,
  encodeNamedRoom,
  encodeRoom,
  MAGIC,
  RECORD_HEADER_BYTES,
  RecordKind,
} from "../src/wire.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A datagram as Outbox packs it: the MAGIC byte, then the records back to back. */
function pack(...records: (Uint8Array | number[])[]): Uint8Array {
  return new Uint8Array([MAGIC, ...records.flatMap((record) => [...record])]);
}

/** A record header: kind, then the body length as u32 little-endian. */
function header(kind: number, length: number): number[] {
  return [kind, length & 0xff, (length >> 8) & 0xff, (length >> 16) & 0xff, length >>> 24];
}

/** A raw record with `body`. */
function raw(kind: number, body: Uint8Array | number[]): number[] {
  return [...header(kind, body.length), ...body];
}

/** Decodes every record, with lines as text so they compare with deepEqual. */
function decodeAll(datagram: Uint8Array): unknown[] {
  return [...decodeDatagram(datagram)].map(readable);
}

function readable(record: DatagramRecord): unknown {
  return record.kind === "control" ? record : { ...record, line: decoder.decode(record.line) };
}

/** Asserts that decoding `datagram` throws a DatagramError saying exactly `message`. */
function assertBad(datagram: Uint8Array, message: string): void {
  assert.throws(() => [...decodeDatagram(datagram)], (error: unknown) => {
    assert.ok(error instanceof DatagramError, `not a DatagramError: ${error}`);
    assert.equal(error.name, "DatagramError");
    assert.equal(error.message, message);
    return true;
  });
}

/** Asserts that a CONTROL record holding `json` is refused with `message`. */
function assertBadControl(json: string, message: string): void {
  assertBad(pack(raw(RecordKind.CONTROL, encoder.encode(json))), message);
}

const ENTRY = { name: "Alice", ep: "1-0-7-0", conn: 42 };

Deno.test("the wire constants are those of format version 1", () => {
  assert.equal(MAGIC, 0xc1);
  assert.equal(RECORD_HEADER_BYTES, 5);
  assert.deepEqual(RecordKind, { DIRECT: 1, ROOM: 2, CONTROL: 3, NAMED: 4 });
});

Deno.test("encodeDirect lays out kind, length, conn, name length, name and line", () => {
  assert.deepEqual(
    [...encodeDirect(0x01020304, "bob", encoder.encode("FROM al hi\n"))],
    [
      ...[1, 19, 0, 0, 0],
      ...[0x04, 0x03, 0x02, 0x01],
      3,
      ...encoder.encode("bob"),
      ...encoder.encode("FROM al hi\n"),
    ],
  );
});

Deno.test("encodeRoom and encodeControl lay out kind, length and body", () => {
  assert.deepEqual([...encodeRoom(encoder.encode("ALL al hi\n"))], [
    2,
    10,
    0,
    0,
    0,
    ...encoder.encode("ALL al hi\n"),
  ]);
  const json = '{"kind":"hello","ep":"0-1-2-3"}';
  assert.deepEqual([...encodeControl({ kind: "hello", ep: "0-1-2-3" })], [
    3,
    json.length,
    0,
    0,
    0,
    ...encoder.encode(json),
  ]);
});

Deno.test("a DIRECT record decodes to what was encoded", async (t) => {
  const cases: [number, string, string][] = [
    [0, "alice", "FROM bob hello\n"],
    [42, "Bob_2", "FROM alice \t tabs and  spaces \n"],
    [0xffffffff, "x".repeat(32), "FROM y é ünïcödé 😀\n"],
    [7, "", "\n"],
    // Not a valid name, but the record carries any UTF-8: decoded in full, not byte by byte.
    [8, "zoë", "FROM a b\n"],
  ];
  for (const [conn, name, line] of cases) {
    await t.step(`conn ${conn} name ${JSON.stringify(name)}`, () => {
      assert.deepEqual(decodeAll(pack(encodeDirect(conn, name, encoder.encode(line)))), [
        { kind: "direct", conn, name, line },
      ]);
    });
  }
});

Deno.test("a ROOM record decodes to what was encoded", () => {
  for (const line of ["ALL alice hi\n", "JOINED bob\n", "\n", `ALL a ${"w".repeat(65536)}\n`]) {
    assert.deepEqual(decodeAll(pack(encodeRoom(encoder.encode(line)))), [{ kind: "room", line }]);
  }
});

Deno.test("a NAMED record decodes to what was encoded", () => {
  const line = encoder.encode("ROOM #Tea al hi\n");
  assert.deepEqual(decodeAll(pack(encodeNamedRoom("#Tea", line))), [
    { kind: "named", room: "#Tea", line: "ROOM #Tea al hi\n" },
  ]);
});

Deno.test("a malformed NAMED record throws DatagramError", async (t) => {
  await t.step("a room name past the end", () => {
    assertBad(pack(raw(4, [40, 35, 97])), "Bad NAMED record: room");
  });
  await t.step("not a room name", () => {
    assertBad(pack(raw(4, [2, 97, 98, 10])), "Bad NAMED record: room");
  });
  await t.step("no line", () => {
    assertBad(pack(raw(4, [2, 35, 97])), "Bad record: the line does not end in LF");
  });
});

Deno.test("a CONTROL record decodes to what was encoded, for every kind", async (t) => {
  const messages: ControlMessage[] = [
    { kind: "hello", ep: "0-1-2-3" },
    { kind: "claim", entry: ENTRY },
    { kind: "release", entry: ENTRY },
    { kind: "add", entry: ENTRY, seq: 1 },
    { kind: "taken", entry: ENTRY },
    { kind: "unavailable", entry: ENTRY },
    { kind: "lost", entry: ENTRY },
    { kind: "undelivered", entry: ENTRY, to: "bob" },
    { kind: "remove", entries: [ENTRY, { name: "bob", ep: "0-0-1-2", conn: 0 }], seq: 2 },
    { kind: "remove", entries: [], seq: 3 },
    { kind: "snapshot", entries: [ENTRY], endpoints: ["1-0-7-0", "0-1-6-3"], rooms: [] },
    {
      kind: "snapshot",
      entries: [ENTRY],
      endpoints: [],
      rooms: [{ name: "#Tea", members: [ENTRY] }],
    },
    { kind: "snapshot", entries: [], endpoints: [], rooms: [] },
    { kind: "endpoints", endpoints: ["1-0-7-0", "999-999-9999999999-999999"] },
    { kind: "enter", room: "#Tea", entry: ENTRY },
    { kind: "part", room: "#tea", entry: ENTRY },
    { kind: "roomsFull", room: "#x-1", entry: ENTRY },
    { kind: "entered", room: "#Tea", entry: ENTRY, seq: 4 },
    { kind: "parted", room: "#Tea", entry: ENTRY, seq: 5 },
    { kind: "history", room: "*", entry: ENTRY, lines: [] },
    {
      kind: "history",
      room: "#Tea",
      entry: ENTRY,
      lines: [{ time: 1764531444123, sender: "al", text: "hi  \there" }],
    },
  ];
  for (const message of messages) {
    await t.step(JSON.stringify(message), () => {
      assert.deepEqual(decodeAll(pack(encodeControl(message))), [{ kind: "control", message }]);
    });
  }
});

Deno.test("a datagram of several records decodes to each record in order", () => {
  const datagram = pack(
    encodeDirect(3, "bob", encoder.encode("FROM alice hi\n")),
    encodeRoom(encoder.encode("ALL alice hello all\n")),
    encodeControl({ kind: "add", entry: ENTRY, seq: 7 }),
    encodeDirect(4, "carol", encoder.encode("FROM alice yo\n")),
    encodeRoom(encoder.encode("LEFT dave\n")),
  );
  assert.deepEqual(decodeAll(datagram), [
    { kind: "direct", conn: 3, name: "bob", line: "FROM alice hi\n" },
    { kind: "room", line: "ALL alice hello all\n" },
    { kind: "control", message: { kind: "add", entry: ENTRY, seq: 7 } },
    { kind: "direct", conn: 4, name: "carol", line: "FROM alice yo\n" },
    { kind: "room", line: "LEFT dave\n" },
  ]);
});

Deno.test("a datagram of the MAGIC byte alone holds no records", () => {
  assert.deepEqual(decodeAll(new Uint8Array([MAGIC])), []);
});

Deno.test("a datagram that is a view into a larger buffer decodes from its own start", () => {
  const inner = pack(
    encodeDirect(9, "bob", encoder.encode("FROM al x\n")),
    encodeRoom(encoder.encode("ALL al y\n")),
  );
  const buffer = new Uint8Array(inner.length + 20).fill(0xee);
  buffer.set(inner, 13);
  assert.deepEqual(decodeAll(buffer.subarray(13, 13 + inner.length)), [
    { kind: "direct", conn: 9, name: "bob", line: "FROM al x\n" },
    { kind: "room", line: "ALL al y\n" },
  ]);
});

Deno.test("decoded lines point into the datagram", () => {
  const datagram = pack(encodeRoom(encoder.encode("ALL a b\n")));
  const [record] = [...decodeDatagram(datagram)];
  assert.ok(record?.kind === "room");
  assert.equal(record.line.buffer, datagram.buffer);
  assert.equal(record.line.byteOffset, 1 + RECORD_HEADER_BYTES);
});

Deno.test("the records before a malformed one are yielded, then DatagramError is thrown", () => {
  const records = decodeDatagram(pack(encodeRoom(encoder.encode("ALL a b\n")), raw(9, [])));
  const first = records.next();
  assert.equal(first.done, false);
  assert.equal(decoder.decode((first.value as { line: Uint8Array }).line), "ALL a b\n");
  assert.throws(() => records.next(), {
    name: "DatagramError",
    message: "Bad record: unknown kind 9",
  });
});

Deno.test("a datagram without its MAGIC byte throws DatagramError", async (t) => {
  await t.step(
    "empty",
    () => assertBad(new Uint8Array(0), "Bad datagram: no magic byte (length 0)"),
  );
  await t.step("another first byte", () => {
    const room = encodeRoom(encoder.encode("ALL a b\n"));
    assertBad(new Uint8Array([0xc2, ...room]), "Bad datagram: no magic byte (length 14)");
  });
  await t.step("a record without any magic", () => {
    assertBad(encodeRoom(encoder.encode("ALL a b\n")), "Bad datagram: no magic byte (length 13)");
  });
});

Deno.test("a record that does not fit its datagram throws DatagramError", async (t) => {
  await t.step(
    "a header of 1 byte",
    () => assertBad(pack([2]), "Bad record at 1: truncated header"),
  );
  await t.step(
    "a header of 4 bytes",
    () => assertBad(pack([2, 0, 0, 0]), "Bad record at 1: truncated header"),
  );
  await t.step("a truncated header after a good record", () => {
    assertBad(
      pack(encodeRoom(encoder.encode("ALL a b\n")), [2, 0]),
      "Bad record at 14: truncated header",
    );
  });
  await t.step("a length one past the end", () => {
    assertBad(pack(header(2, 4), encoder.encode("abc")), "Bad record at 1: length 4 past the end");
  });
  await t.step("a length of 2^32 - 1", () => {
    assertBad(
      pack(header(2, 0xffffffff), encoder.encode("a\n")),
      "Bad record at 1: length 4294967295 past the end",
    );
  });
  await t.step("a body without its header's length", () => {
    assertBad(pack(header(3, 1)), "Bad record at 1: length 1 past the end");
  });
});

Deno.test("a record of an unknown kind throws DatagramError", async (t) => {
  for (const kind of [0, 5, 255]) {
    await t.step(`kind ${kind}`, () => {
      assertBad(pack(raw(kind, encoder.encode("a\n"))), `Bad record: unknown kind ${kind}`);
    });
  }
});

Deno.test("a malformed DIRECT record throws DatagramError", async (t) => {
  const line = [...encoder.encode("FROM a b\n")];
  await t.step("a body shorter than conn and name length", () => {
    assertBad(pack(raw(RecordKind.DIRECT, [1, 0, 0, 0])), "Bad DIRECT record: too short");
  });
  await t.step("a name length past the end of the body", () => {
    assertBad(pack(raw(RecordKind.DIRECT, [1, 0, 0, 0, 3, 0x61, 0x62])), "Bad DIRECT record: name");
  });
  await t.step("a name length of 255 in a short body", () => {
    assertBad(pack(raw(RecordKind.DIRECT, [1, 0, 0, 0, 255, ...line])), "Bad DIRECT record: name");
  });
  await t.step("a name that is not UTF-8", () => {
    assertBad(
      pack(raw(RecordKind.DIRECT, [1, 0, 0, 0, 2, 0xc3, 0x28, ...line])),
      "Bad record: invalid UTF-8",
    );
  });
  await t.step("no line after the name", () => {
    assertBad(
      pack(raw(RecordKind.DIRECT, [1, 0, 0, 0, 1, 0x61])),
      "Bad record: the line does not end in LF",
    );
  });
  await t.step("a line without LF", () => {
    assertBad(
      pack(encodeDirect(1, "a", encoder.encode("FROM a b"))),
      "Bad record: the line does not end in LF",
    );
  });
  await t.step("a line with two LFs", () => {
    assertBad(
      pack(encodeDirect(1, "a", encoder.encode("FROM a b\nFROM a c\n"))),
      "Bad record: the line holds more than one line",
    );
  });
});

Deno.test("a malformed ROOM record throws DatagramError", async (t) => {
  await t.step("an empty line", () => {
    assertBad(pack(encodeRoom(new Uint8Array(0))), "Bad record: the line does not end in LF");
  });
  await t.step("a line without LF", () => {
    assertBad(
      pack(encodeRoom(encoder.encode("ALL a b"))),
      "Bad record: the line does not end in LF",
    );
  });
  await t.step("a line ending in CR", () => {
    assertBad(
      pack(encodeRoom(encoder.encode("ALL a b\n\r"))),
      "Bad record: the line does not end in LF",
    );
  });
  await t.step("a line with two LFs", () => {
    assertBad(
      pack(encodeRoom(encoder.encode("\n\n"))),
      "Bad record: the line holds more than one line",
    );
    assertBad(
      pack(encodeRoom(encoder.encode("ALL a b\nJOINED x\n"))),
      "Bad record: the line holds more than one line",
    );
  });
});

Deno.test("a line with a control character or invalid UTF-8 throws DatagramError", async (t) => {
  const CONTROL = "Bad record: the line holds a control character";
  const UTF8 = "Bad record: the line is not valid UTF-8";
  const bad: [string, number[], string][] = [
    ["ESC", [0x1b, 0x5b, 0x33, 0x31, 0x6d], CONTROL],
    ["NUL", [0x00], CONTROL],
    ["BEL", [0x07], CONTROL],
    ["CR", [0x0d], CONTROL],
    ["US", [0x1f], CONTROL],
    ["DEL", [0x7f], CONTROL],
    ["C1 U+0080", [0xc2, 0x80], CONTROL],
    ["C1 U+009B (CSI)", [0xc2, 0x9b], CONTROL],
    ["C1 U+009F", [0xc2, 0x9f], CONTROL],
    ["a lone continuation byte", [0x80], UTF8],
    ["a truncated sequence", [0xe2, 0x82], UTF8],
    ["a sequence cut by the LF", [0xe2], UTF8],
    ["an overlong NUL", [0xc0, 0x80], UTF8],
    ["an overlong slash", [0xe0, 0x80, 0xaf], UTF8],
    ["a surrogate", [0xed, 0xa0, 0x80], UTF8],
    ["past U+10FFFF", [0xf4, 0x90, 0x80, 0x80], UTF8],
    ["0xF5", [0xf5, 0x80, 0x80, 0x80], UTF8],
    ["0xFF", [0xff], UTF8],
  ];
  for (const [what, bytes, message] of bad) {
    await t.step(what, () => {
      const line = new Uint8Array([...encoder.encode("ALL a "), ...bytes, 10]);
      assertBad(pack(encodeRoom(line)), message);
      assertBad(pack(encodeDirect(1, "a", line)), message);
    });
  }
});

Deno.test("a line of TAB, printable ASCII and valid UTF-8 up to U+10FFFF decodes", () => {
  const text = "ALL a \tx~ \u00a0é€\u{10ffff}😀\u009f".slice(0, -1) + "\n";
  assert.deepEqual(decodeAll(pack(encodeRoom(encoder.encode(text)))), [{
    kind: "room",
    line: text,
  }]);
  assert.deepEqual(decodeAll(pack(encodeDirect(7, "b", encoder.encode(text)))), [
    { kind: "direct", conn: 7, name: "b", line: text },
  ]);
});

Deno.test("a CONTROL record that is not a JSON object throws DatagramError", async (t) => {
  await t.step(
    "not JSON",
    () => assertBadControl('{"kind":"hello"', "Bad CONTROL record: not JSON"),
  );
  await t.step("empty", () => assertBadControl("", "Bad CONTROL record: not JSON"));
  await t.step("invalid UTF-8", () => {
    const body = [...encoder.encode('{"kind":"hello","ep":"'), 0xff, ...encoder.encode('"}')];
    assertBad(pack(raw(RecordKind.CONTROL, body)), "Bad CONTROL record: not JSON");
  });
  for (const json of ["null", "[]", '"hello"', "42", "true"]) {
    await t.step(json, () => assertBadControl(json, "Bad CONTROL record: not an object"));
  }
});

Deno.test("a CONTROL record of an unknown kind throws DatagramError", async (t) => {
  await t.step("a made-up kind", () => {
    assertBadControl('{"kind":"frob"}', "Bad CONTROL record: unknown kind frob");
  });
  await t.step("a kind in the wrong case", () => {
    assertBadControl('{"kind":"HELLO","ep":"0-0-0-0"}', "Bad CONTROL record: unknown kind HELLO");
  });
  await t.step(
    "no kind",
    () => assertBadControl('{"ep":"0-0-0-0"}', "Bad CONTROL record: unknown kind undefined"),
  );
  await t.step("a kind that is not a string", () => {
    assertBadControl('{"kind":3}', "Bad CONTROL record: unknown kind 3");
  });
});

Deno.test("a CONTROL record with a malformed entry throws DatagramError", async (t) => {
  const bad: [string, unknown][] = [
    ["no entry", undefined],
    ["entry null", null],
    ["entry an array", ["Alice", "1-0-7-0", 42]],
    ["no name", { ep: "1-0-7-0", conn: 42 }],
    ["name not a string", { name: 5, ep: "1-0-7-0", conn: 42 }],
    ["name of 65 characters", { name: "n".repeat(65), ep: "1-0-7-0", conn: 42 }],
    ["ep not an endpoint id", { name: "a", ep: "supervisor", conn: 42 }],
    ["ep missing", { name: "a", conn: 42 }],
    ["conn negative", { name: "a", ep: "1-0-7-0", conn: -1 }],
    ["conn a fraction", { name: "a", ep: "1-0-7-0", conn: 1.5 }],
    ["conn 2^32", { name: "a", ep: "1-0-7-0", conn: 4294967296 }],
    ["conn a string", { name: "a", ep: "1-0-7-0", conn: "42" }],
  ];
  for (const kind of ["claim", "release", "add", "taken", "unavailable", "lost"]) {
    for (const [what, entry] of bad) {
      await t.step(`${kind}: ${what}`, () => {
        assertBadControl(JSON.stringify({ kind, entry }), "Bad CONTROL record: malformed entry");
      });
    }
  }
  for (const [what, to] of [["missing", undefined], ["not a name", "b ob"], ["a number", 5]]) {
    await t.step(`undelivered: to ${what}`, () => {
      assertBadControl(
        JSON.stringify({ kind: "undelivered", entry: ENTRY, to }),
        "Bad CONTROL record: undelivered",
      );
    });
  }
  await t.step("remove: one bad entry among good ones", () => {
    assertBadControl(
      JSON.stringify({ kind: "remove", entries: [ENTRY, { ...ENTRY, conn: -1 }] }),
      "Bad CONTROL record: malformed entry",
    );
  });
  await t.step("snapshot: a bad entry", () => {
    assertBadControl(
      JSON.stringify({ kind: "snapshot", entries: [{ ...ENTRY, ep: "1-0-7" }], endpoints: [] }),
      "Bad CONTROL record: malformed entry",
    );
  });
  await t.step("a name of 32 characters and conn 2^32 - 1 are accepted", () => {
    const entry = { name: "n".repeat(32), ep: "1-0-7-0", conn: 0xffffffff };
    assert.deepEqual(decodeAll(pack(encodeControl({ kind: "claim", entry }))), [
      { kind: "control", message: { kind: "claim", entry } },
    ]);
  });
  await t.step("a name the protocol refuses: 33 characters, a space, a control character", () => {
    for (const name of ["n".repeat(33), "a b", "a\x1bb", ""]) {
      assertBadControl(
        JSON.stringify({ kind: "claim", entry: { ...ENTRY, name } }),
        "Bad CONTROL record: malformed entry",
      );
    }
  });
});

Deno.test("a CONTROL record with malformed entries or endpoint ids throws DatagramError", async (t) => {
  await t.step("hello without an endpoint id", () => {
    assertBadControl('{"kind":"hello"}', "Bad CONTROL record: hello");
    assertBadControl('{"kind":"hello","ep":"supervisor"}', "Bad CONTROL record: hello");
    assertBadControl('{"kind":"hello","ep":1}', "Bad CONTROL record: hello");
  });
  await t.step("remove without entries", () => {
    assertBadControl('{"kind":"remove"}', "Bad CONTROL record: entries");
    assertBadControl('{"kind":"remove","entries":{}}', "Bad CONTROL record: entries");
  });
  await t.step("add and remove without a positive whole seq", () => {
    const entry = JSON.stringify({ name: "a", ep: "1-0-7-0", conn: 1 });
    for (const seq of ["", ',"seq":0', ',"seq":1.5', ',"seq":"1"', ',"seq":-3']) {
      assertBadControl(`{"kind":"add","entry":${entry}${seq}}`, "Bad CONTROL record: seq");
      assertBadControl(`{"kind":"remove","entries":[]${seq}}`, "Bad CONTROL record: seq");
    }
  });
  await t.step("snapshot without entries", () => {
    assertBadControl('{"kind":"snapshot","endpoints":[]}', "Bad CONTROL record: entries");
  });
  await t.step("snapshot without endpoints", () => {
    assertBadControl('{"kind":"snapshot","entries":[]}', "Bad CONTROL record: endpoints");
  });
  await t.step("endpoints not an array", () => {
    assertBadControl('{"kind":"endpoints","endpoints":"1-0-7-0"}', "Bad CONTROL record: endpoints");
  });
  await t.step("endpoints with a bad id", () => {
    assertBadControl(
      '{"kind":"endpoints","endpoints":["1-0-7-0","1-0-7"]}',
      "Bad CONTROL record: endpoint id",
    );
    assertBadControl('{"kind":"endpoints","endpoints":[1]}', "Bad CONTROL record: endpoint id");
    assertBadControl(
      '{"kind":"snapshot","entries":[],"endpoints":["x"]}',
      "Bad CONTROL record: endpoint id",
    );
  });
});

Deno.test("parseControlMessage keeps only the fields of the message", () => {
  assert.deepEqual(
    parseControlMessage({
      kind: "claim",
      entry: { ...ENTRY, extra: true },
      extra: "dropped",
    }),
    { kind: "claim", entry: ENTRY },
  );
  assert.deepEqual(parseControlMessage({ kind: "hello", ep: "0-0-0-0", entries: [] }), {
    kind: "hello",
    ep: "0-0-0-0",
  });
});

Deno.test("endpointId formats p-t-instance-restart and parseEndpointId reads it back", async (t) => {
  await t.step("formatting", () => {
    assert.equal(endpointId({ pId: 1, tId: 0, instance: 7, restart: 0 }), "1-0-7-0");
  });
  for (
    const id of [
      { pId: 0, tId: 0, instance: 0, restart: 0 },
      { pId: 1, tId: 3, instance: 17, restart: 2 },
      { pId: 999, tId: 999, instance: 9999999999, restart: 999999 },
    ]
  ) {
    await t.step(`round trip of ${endpointId(id)}`, () => {
      assert.deepEqual(parseEndpointId(endpointId(id)), id);
    });
  }
});

Deno.test("parseEndpointId returns undefined for anything but an endpoint id", () => {
  for (
    const ep of [
      "",
      "supervisor",
      "1-0-7",
      "1-0-7-0-0",
      "1--7-0",
      "a-0-7-0",
      "-1-0-7-0",
      "1-0-7-0 ",
      " 1-0-7-0",
      "1-0-7-0\n",
      "1.0-0-7-0",
      "1000-0-7-0",
      "0-1000-7-0",
      "0-0-12345678901-0",
      "0-0-0-1234567",
      "١-0-7-0",
    ]
  ) {
    assert.equal(parseEndpointId(ep), undefined, JSON.stringify(ep));
  }
});
