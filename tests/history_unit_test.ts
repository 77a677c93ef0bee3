import assert from "node:assert/strict";
import {
  History,
  historyBatches,
  type HistoryLine,
  newestWithin,
  parseRoomLine,
} from "../src/history.ts";

function line(n: number, text = `line ${n}`): HistoryLine {
  return { time: n, sender: "al", text };
}

Deno.test("History keeps the last N lines per room, rooms compared case-insensitively", () => {
  const history = new History({ lines: 3, maxRooms: 10 });
  for (let n = 1; n <= 5; n++) history.add("#Tea", line(n));
  history.add("*", line(9));
  assert.deepEqual(history.lines("#tea"), [line(3), line(4), line(5)]);
  assert.deepEqual(history.lines("*"), [line(9)]);
  assert.deepEqual(history.lines("#none"), []);
  const copy = history.lines("#TEA");
  copy.pop();
  assert.equal(history.lines("#tea").length, 3, "lines() is a copy");
});

Deno.test("History forgets the least recently used room beyond maxRooms, and keeps nothing with 0 lines", () => {
  const history = new History({ lines: 2, maxRooms: 2 });
  history.add("#a", line(1));
  history.add("#b", line(2));
  history.add("#a", line(3));
  history.add("#c", line(4));
  assert.deepEqual(history.lines("#b"), [], "#b was used least recently");
  assert.deepEqual(history.lines("#a"), [line(1), line(3)]);
  const off = new History({ lines: 0, maxRooms: 2 });
  off.add("#a", line(1));
  assert.equal(off.enabled, false);
  assert.deepEqual(off.lines("#a"), []);
});

Deno.test("parseRoomLine reads ALL and ROOM lines and nothing else", () => {
  assert.deepEqual(parseRoomLine("ALL al hi  there \n"), { sender: "al", text: "hi  there " });
  assert.deepEqual(parseRoomLine("ROOM #Tea al hi\n"), { sender: "al", text: "hi" });
  for (const bad of ["FROM al hi\n", "ALL al hi", "JOINED #Tea al\n", "ALL a*b hi\n"]) {
    assert.equal(parseRoomLine(bad), undefined, bad);
  }
});

Deno.test("historyBatches splits lines into groups that fit a datagram, leaving out a line too long alone", () => {
  const long = "x".repeat(20_000);
  const lines = [line(1, long), line(2, long), line(3, "y".repeat(50_000)), line(4, long), line(5)];
  // JSON is counted at 3 bytes a character, the most UTF-8 takes: 20,000 characters ≈ 60 kB.
  const batches = historyBatches(lines, 125_000);
  assert.deepEqual(batches.map((batch) => batch.map((l) => l.time)), [[1, 2], [4, 5]]);
  assert.deepEqual(historyBatches([]), []);
});

Deno.test("History keeps at most maxBytes in all: least recently used rooms go first, then the oldest lines", () => {
  // Each line: 10 characters of text + 2 of sender + 32 = 44 bytes.
  const text = "0123456789";
  const history = new History({ lines: 100, maxRooms: 10, maxBytes: 44 * 5 });
  for (let n = 0; n < 3; n++) history.add("#a", line(n, text));
  for (let n = 0; n < 2; n++) history.add("#b", line(n, text));
  assert.equal(history.bytes, 44 * 5);
  history.add("#b", line(2, text));
  assert.deepEqual(history.lines("#a"), [], "#a, used least recently, is forgotten");
  assert.equal(history.lines("#b").length, 3);
  assert.equal(history.bytes, 44 * 3);
  for (let n = 3; n < 9; n++) history.add("#b", line(n, text));
  assert.deepEqual(
    history.lines("#b").map((l) => l.time),
    [4, 5, 6, 7, 8],
    "alone: oldest lines go",
  );
  assert.equal(history.bytes, 44 * 5);
});

Deno.test("newestWithin keeps the newest lines that fit the byte budget", () => {
  const lines = [line(1, "x".repeat(68)), line(2, "x".repeat(68)), line(3, "x".repeat(68))];
  // 68 + 2 + 32 = 102 bytes a line.
  assert.deepEqual(newestWithin(lines, 250).map((l) => l.time), [2, 3]);
  assert.deepEqual(newestWithin(lines, 306).map((l) => l.time), [1, 2, 3]);
  assert.deepEqual(newestWithin(lines, 50), []);
});
