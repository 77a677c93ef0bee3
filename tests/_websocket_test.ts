import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fc from "fast-check";
import {
  acceptKey,
  CloseCode,
  encodeClose,
  encodeFrame,
  encodePong,
  encodeText,
  FrameDecoder,
  isValidCloseCode,
  isValidWebSocketKey,
  Opcode,
  type WebSocketEvent,
} from "../src/_websocket.ts";

const encoder = new TextEncoder();
const MASK = new Uint8Array([0x37, 0xfa, 0x21, 0x3d]);

/** A frame as a browser sends it: masked. */
function clientFrame(
  opcode: number,
  payload: string | Uint8Array,
  options: { fin?: boolean; mask?: Uint8Array } = {},
): Uint8Array {
  const bytes = typeof payload === "string" ? encoder.encode(payload) : payload;
  return encodeFrame(opcode, bytes, { fin: options.fin, mask: options.mask ?? MASK });
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Decodes `bytes` pushed as the given chunks (cut at `cuts`, sorted offsets). */
function decodeCut(bytes: Uint8Array, cuts: number[], max = 4096): WebSocketEvent[] {
  const decoder = new FrameDecoder({ maxMessageBytes: max });
  const events: WebSocketEvent[] = [];
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    // A fresh copy per chunk, then scribbled on: the decoder must not keep views of it.
    const chunk = bytes.slice(from, cut);
    events.push(...decoder.push(chunk));
    chunk.fill(0xee);
    from = cut;
  }
  return events;
}

function decode(bytes: Uint8Array, max = 4096): WebSocketEvent[] {
  return decodeCut(bytes, [], max);
}

function hex(bytes: Uint8Array): string {
  return [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join(" ");
}

Deno.test("acceptKey gives RFC 6455's example answer at once, not as a promise", () => {
  // Synchronous: crypto.subtle's digest ran on a blocking-pool thread per handshake.
  assert.equal(acceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
});

Deno.test("acceptKey answers keys of any length and character, reused buffer or not", () => {
  const expected = (key: string) =>
    createHash("sha1").update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
  for (const key of ["x".repeat(200), "é".repeat(30), btoa("0123456789abcdef"), ""]) {
    assert.equal(acceptKey(key), expected(key), key);
  }
});

Deno.test("isValidWebSocketKey takes base64 of exactly 16 bytes", () => {
  assert.equal(isValidWebSocketKey("dGhlIHNhbXBsZSBub25jZQ=="), true);
  assert.equal(isValidWebSocketKey(btoa("0123456789abcdef")), true);
  assert.equal(isValidWebSocketKey(btoa("0123456789abcde")), false, "15 bytes");
  assert.equal(isValidWebSocketKey(btoa("0123456789abcdefg")), false, "17 bytes");
  assert.equal(isValidWebSocketKey("dGhlIHNhbXBsZSBub25jZR=="), false, "stray low bits");
  assert.equal(isValidWebSocketKey(""), false);
  assert.equal(isValidWebSocketKey("dGhlIHNhbXBsZSBub25jZQ== "), false);
});

Deno.test("the encoder writes exact server frames", async (t) => {
  await t.step("a short text frame", () => {
    assert.equal(hex(encodeText("Hi")), "81 02 48 69");
  });
  await t.step("a 126-byte text frame takes a 16-bit length", () => {
    const frame = encodeText("x".repeat(126));
    assert.equal(hex(frame.subarray(0, 4)), "81 7e 00 7e");
    assert.equal(frame.length, 4 + 126);
  });
  await t.step("a 65536-byte text frame takes a 64-bit length", () => {
    const frame = encodeText("x".repeat(65536));
    assert.equal(hex(frame.subarray(0, 10)), "81 7f 00 00 00 00 00 01 00 00");
    assert.equal(frame.length, 10 + 65536);
  });
  await t.step("UTF-8 text", () => {
    assert.equal(hex(encodeText("é")), "81 02 c3 a9");
  });
  await t.step("close frames", () => {
    assert.equal(hex(encodeClose()), "88 00");
    assert.equal(hex(encodeClose(1000)), "88 02 03 e8");
    assert.equal(hex(encodeClose(1009, "ab")), "88 04 03 f1 61 62");
    assert.throws(() => encodeClose(1005), RangeError);
    assert.throws(() => encodeClose(999), RangeError);
  });
  await t.step("a long close reason is cut at a character boundary to fit 125 bytes", () => {
    const frame = encodeClose(1000, "é".repeat(100));
    assert.equal(frame[1], 2 + 122, "61 two-byte characters fit in 123 bytes");
    const events = decode(concat(clientFrame(Opcode.CLOSE, frame.subarray(2))));
    assert.deepEqual(events, [{ kind: "close", code: 1000, reason: "é".repeat(61) }]);
  });
  await t.step("pong echoes the payload", () => {
    assert.equal(hex(encodePong(new Uint8Array([1, 2]))), "8a 02 01 02");
    assert.throws(() => encodeFrame(Opcode.PING, new Uint8Array(126)), RangeError);
  });
  await t.step("masking as a client does, RFC 6455 section 5.7's example", () => {
    assert.equal(
      hex(clientFrame(Opcode.TEXT, "Hello")),
      "81 85 37 fa 21 3d 7f 9f 4d 51 58",
    );
    assert.throws(() => encodeFrame(Opcode.TEXT, EMPTY_BYTES, { mask: new Uint8Array(3) }));
  });
});

const EMPTY_BYTES = new Uint8Array(0);

Deno.test("the decoder reads RFC 6455's masked Hello split at every offset", () => {
  const bytes = new Uint8Array([0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
  for (let cut = 0; cut <= bytes.length; cut++) {
    assert.deepEqual(decodeCut(bytes, [cut]), [{ kind: "text", text: "Hello" }], `cut ${cut}`);
  }
  const oneByOne = [...bytes.keys()].slice(1);
  assert.deepEqual(decodeCut(bytes, oneByOne), [{ kind: "text", text: "Hello" }]);
});

Deno.test("the decoder joins fragments, answers control frames between them, at any split", () => {
  const bytes = concat(
    clientFrame(Opcode.TEXT, "Hel", { fin: false }),
    clientFrame(Opcode.PING, "p1"),
    clientFrame(Opcode.CONTINUATION, "l", { fin: false, mask: new Uint8Array([1, 2, 3, 4]) }),
    clientFrame(Opcode.CONTINUATION, "o wörld"),
    clientFrame(Opcode.PONG, ""),
    clientFrame(Opcode.TEXT, "x".repeat(200)),
    clientFrame(Opcode.CLOSE, concat(new Uint8Array([0x03, 0xe8]), encoder.encode("bye"))),
  );
  const expected: WebSocketEvent[] = [
    { kind: "ping", payload: encoder.encode("p1") },
    { kind: "text", text: "Hello wörld" },
    { kind: "pong", payload: new Uint8Array(0) },
    { kind: "text", text: "x".repeat(200) },
    { kind: "close", code: 1000, reason: "bye" },
  ];
  for (let first = 0; first <= bytes.length; first++) {
    for (let second = first; second <= bytes.length; second += 7) {
      assert.deepEqual(decodeCut(bytes, [first, second]), expected, `cuts ${first} ${second}`);
    }
  }
});

Deno.test("the decoder unmasks a whole text frame in the caller's chunk, copying nothing", () => {
  const text = "SAY " + "z".repeat(100);
  const frame = clientFrame(Opcode.TEXT, text);
  const decoder = new FrameDecoder();
  assert.deepEqual(decoder.push(frame), [{ kind: "text", text }]);
  // The payload was read in place (a copy per line was a backing store per line).
  assert.equal(new TextDecoder().decode(frame.subarray(frame.length - text.length)), text);
});

Deno.test("a UTF-8 character split between fragments is one character", () => {
  const euro = encoder.encode("€"); // e2 82 ac
  const bytes = concat(
    clientFrame(Opcode.TEXT, euro.subarray(0, 1), { fin: false }),
    clientFrame(Opcode.CONTINUATION, euro.subarray(1)),
  );
  assert.deepEqual(decode(bytes), [{ kind: "text", text: "€" }]);
});

Deno.test("16-bit and 64-bit payload lengths decode", () => {
  const medium = "m".repeat(300);
  const large = "L".repeat(70_000);
  const bytes = concat(clientFrame(Opcode.TEXT, medium), clientFrame(Opcode.TEXT, large));
  assert.deepEqual(decode(bytes, 100_000), [
    { kind: "text", text: medium },
    { kind: "text", text: large },
  ]);
});

Deno.test("the message limit: exactly the limit passes, one byte more closes with 1009", async (t) => {
  await t.step("one frame", () => {
    assert.deepEqual(decode(clientFrame(Opcode.TEXT, "a".repeat(10)), 10), [
      { kind: "text", text: "a".repeat(10) },
    ]);
    assert.deepEqual(decode(clientFrame(Opcode.TEXT, "a".repeat(11)), 10), [
      { kind: "error", code: CloseCode.MESSAGE_TOO_BIG, reason: "message over 10 bytes" },
    ]);
  });
  await t.step("summed over fragments", () => {
    const bytes = concat(
      clientFrame(Opcode.TEXT, "a".repeat(6), { fin: false }),
      clientFrame(Opcode.CONTINUATION, "a".repeat(5)),
    );
    assert.deepEqual(decode(bytes, 10), [
      { kind: "error", code: 1009, reason: "message over 10 bytes" },
    ]);
  });
  await t.step("refused from the header, before the payload arrives", () => {
    const decoder = new FrameDecoder({ maxMessageBytes: 4096 });
    const header = clientFrame(Opcode.TEXT, new Uint8Array(1 << 20)).subarray(0, 14);
    assert.deepEqual(decoder.push(header), [
      { kind: "error", code: 1009, reason: "message over 4096 bytes" },
    ]);
    assert.equal(decoder.done, true);
  });
  await t.step("a 64-bit length over 2^32 is over the limit", () => {
    const header = new Uint8Array([0x81, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4]);
    assert.deepEqual(decode(header), [
      { kind: "error", code: 1009, reason: "message over 4096 bytes" },
    ]);
  });
});

Deno.test("every protocol error closes with its code and ends the stream", async (t) => {
  const cases: [string, Uint8Array, number, string][] = [
    [
      "an unmasked frame",
      encodeFrame(Opcode.TEXT, encoder.encode("hi")),
      1002,
      "client frames must be masked",
    ],
    [
      "a reserved bit",
      (() => {
        const frame = clientFrame(Opcode.TEXT, "hi");
        frame[0] = frame[0]! | 0x40;
        return frame;
      })(),
      1002,
      "reserved bits set",
    ],
    ["opcode 3", clientFrame(3, "hi"), 1002, "unknown opcode 3"],
    ["opcode 0xb", clientFrame(0xb, ""), 1002, "unknown opcode 11"],
    [
      "a control frame over 125 bytes",
      new Uint8Array([0x89, 0xfe, 0, 126, 1, 2, 3, 4]),
      1002,
      "control frame over 125 bytes",
    ],
    [
      "a fragmented ping",
      clientFrame(Opcode.PING, "p", { fin: false }),
      1002,
      "fragmented control frame",
    ],
    [
      "a continuation with no message open",
      clientFrame(Opcode.CONTINUATION, "x"),
      1002,
      "continuation without a message",
    ],
    [
      "a text frame inside a fragmented message",
      concat(
        clientFrame(Opcode.TEXT, "a", { fin: false }),
        clientFrame(Opcode.TEXT, "b"),
      ),
      1002,
      "new message inside a fragmented one",
    ],
    ["a binary message", clientFrame(Opcode.BINARY, "x"), 1003, "binary messages are not accepted"],
    [
      "a 64-bit length with its top bit set",
      new Uint8Array([0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4]),
      1002,
      "payload length over 2^63",
    ],
    [
      "text that is not UTF-8",
      clientFrame(Opcode.TEXT, new Uint8Array([0x61, 0xff, 0x62])),
      1007,
      "text message is not UTF-8",
    ],
    [
      "a lone surrogate encoded in UTF-8",
      clientFrame(Opcode.TEXT, new Uint8Array([0xed, 0xa0, 0x80])),
      1007,
      "text message is not UTF-8",
    ],
    [
      "fragments that end inside a character",
      concat(
        clientFrame(Opcode.TEXT, new Uint8Array([0x61]), { fin: false }),
        clientFrame(Opcode.CONTINUATION, new Uint8Array([0xe2, 0x82])),
      ),
      1007,
      "text message is not UTF-8",
    ],
    [
      "a close frame of one byte",
      clientFrame(Opcode.CLOSE, new Uint8Array([3])),
      1002,
      "close frame with a 1-byte payload",
    ],
    [
      "close code 1005, which must never be sent",
      clientFrame(Opcode.CLOSE, new Uint8Array([0x03, 0xed])),
      1002,
      "bad close code 1005",
    ],
    [
      "a close reason that is not UTF-8",
      clientFrame(Opcode.CLOSE, new Uint8Array([0x03, 0xe8, 0xc3])),
      1007,
      "close reason is not UTF-8",
    ],
  ];
  for (const [name, frame, code, reason] of cases) {
    await t.step(name, () => {
      // A good message after the bad frame must not come out: the stream has ended.
      const bytes = concat(frame, clientFrame(Opcode.TEXT, "after"));
      for (let cut = 0; cut <= bytes.length; cut++) {
        assert.deepEqual(decodeCut(bytes, [cut]), [{ kind: "error", code, reason }], `cut ${cut}`);
      }
    });
  }
});

Deno.test("after a close frame the decoder yields nothing more", () => {
  const decoder = new FrameDecoder();
  assert.deepEqual(decoder.push(clientFrame(Opcode.CLOSE, "")), [
    { kind: "close", code: undefined, reason: "" },
  ]);
  assert.equal(decoder.done, true);
  assert.deepEqual(decoder.push(clientFrame(Opcode.TEXT, "late")), []);
});

Deno.test("isValidCloseCode follows RFC 6455 section 7.4", () => {
  for (const code of [1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999]) {
    assert.equal(isValidCloseCode(code), true, String(code));
  }
  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000]) {
    assert.equal(isValidCloseCode(code), false, String(code));
  }
});

Deno.test("the FrameDecoder refuses a bad limit", () => {
  assert.throws(() => new FrameDecoder({ maxMessageBytes: -1 }), RangeError);
});

Deno.test("property: any fragmentation, masks and chunking of text messages decode to them", () => {
  const message = fc.record({
    text: fc.string({ unit: "binary", maxLength: 300 }),
    // Where to cut the message's bytes into fragments.
    cuts: fc.array(fc.nat(), { maxLength: 4 }),
    mask: fc.uint8Array({ minLength: 4, maxLength: 4 }),
  });
  fc.assert(
    fc.property(
      fc.array(message, { maxLength: 6 }),
      fc.array(fc.nat(), { maxLength: 8 }),
      (messages, chunkCuts) => {
        const frames: Uint8Array[] = [];
        for (const { text, cuts, mask } of messages) {
          const bytes = encoder.encode(text);
          const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) =>
            a - b
          );
          const parts: Uint8Array[] = [];
          let from = 0;
          for (const point of points) {
            parts.push(bytes.subarray(from, point));
            from = point;
          }
          parts.push(bytes.subarray(from));
          parts.forEach((part, index) => {
            const opcode = index === 0 ? Opcode.TEXT : Opcode.CONTINUATION;
            frames.push(encodeFrame(opcode, part, { fin: index === parts.length - 1, mask }));
          });
        }
        const stream = concat(...frames);
        const cuts = [...new Set(chunkCuts.map((cut) => cut % (stream.length + 1)))].sort((a, b) =>
          a - b
        );
        const events = decodeCut(stream, cuts, 2000);
        assert.deepEqual(events, messages.map(({ text }) => ({ kind: "text", text })));
      },
    ),
  );
});

Deno.test("property: arbitrary bytes never throw, and nothing follows an error or close", () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }), (chunks) => {
      const decoder = new FrameDecoder({ maxMessageBytes: 100 });
      const events = chunks.flatMap((chunk) => decoder.push(chunk));
      const end = events.findIndex((event) => event.kind === "error" || event.kind === "close");
      assert.ok(end === -1 || end === events.length - 1);
    }),
  );
});
