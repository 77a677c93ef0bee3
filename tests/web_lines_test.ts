import assert from "node:assert/strict";
// @ts-types="./web_lines.d.ts"
import { describeError, isRoom, parseLine, reconnectDelay } from "../src/web/lines.js";

Deno.test("parseLine turns each server line into the page's event", () => {
  const cases: [string, unknown][] = [
    ["HELLO chatd 0.1.0 p=0 t=1 — JOIN <name> to start", {
      kind: "hello",
      line: "HELLO chatd 0.1.0 p=0 t=1 — JOIN <name> to start",
    }],
    ["OK JOIN alice", { kind: "joined-as", name: "alice" }],
    ["USERS 2 alice bob", { kind: "users", room: "*", names: ["alice", "bob"] }],
    ["USERS 0", { kind: "users", room: "*", names: [] }],
    ["JOINED bob", { kind: "joined", room: "*", name: "bob" }],
    ["LEFT bob", { kind: "left", room: "*", name: "bob" }],
    ["FROM bob psst  two  spaces ", { kind: "direct", sender: "bob", text: "psst  two  spaces " }],
    ["ALL bob <img src=x onerror=alert(1)>", {
      kind: "message",
      room: "*",
      sender: "bob",
      text: "<img src=x onerror=alert(1)>",
    }],
    ["BYE", { kind: "bye", reason: "" }],
    ["BYE shutting down", { kind: "bye", reason: "shutting down" }],
    ["ERR NAME_TAKEN alice", { kind: "error", code: "NAME_TAKEN", detail: "alice" }],
    ["ERR NOT_JOINED", { kind: "error", code: "NOT_JOINED", detail: "" }],
    ["PONG x", { kind: "pong" }],
    ["HELP END", { kind: "other", line: "HELP END" }],
    ["", { kind: "other", line: "" }],
  ];
  for (const [line, event] of cases) assert.deepEqual(parseLine(line), event, line);
});

Deno.test("parseLine reads the named-room and history lines, with the room in each event", () => {
  const cases: [string, unknown][] = [
    ["OK JOIN #Tea", { kind: "entered", room: "#Tea" }],
    ["OK PART #tea", { kind: "parted", room: "#tea" }],
    ["OK PART", { kind: "other", line: "OK PART" }],
    ["USERS #tea 2 alice bob", { kind: "users", room: "#tea", names: ["alice", "bob"] }],
    ["USERS #tea 0", { kind: "users", room: "#tea", names: [] }],
    ["JOINED #tea bob", { kind: "joined", room: "#tea", name: "bob" }],
    ["LEFT #tea bob", { kind: "left", room: "#tea", name: "bob" }],
    ["ROOM #tea bob hi  there ", {
      kind: "message",
      room: "#tea",
      sender: "bob",
      text: "hi  there ",
    }],
    ["ROOM tea bob hi", { kind: "other", line: "ROOM tea bob hi" }],
    ["HISTORY * 2026-11-30T19:00:00.007Z bob old  news", {
      kind: "history",
      room: "*",
      time: "2026-11-30T19:00:00.007Z",
      sender: "bob",
      text: "old  news",
    }],
    ["HISTORY #tea 2026-11-30T19:00:01.000Z bob <b>x</b>", {
      kind: "history",
      room: "#tea",
      time: "2026-11-30T19:00:01.000Z",
      sender: "bob",
      text: "<b>x</b>",
    }],
    ["HISTORY #tea 2026-11-30T19:00:01.000Z bob", {
      kind: "history",
      room: "#tea",
      time: "2026-11-30T19:00:01.000Z",
      sender: "bob",
      text: "",
    }],
    ["HISTORY * END", { kind: "history-end", room: "*" }],
    ["HISTORY #tea END", { kind: "history-end", room: "#tea" }],
    ["HISTORY tea END", { kind: "other", line: "HISTORY tea END" }],
    ["HISTORY * 2026-11-30T19:00:01.000Z", {
      kind: "other",
      line: "HISTORY * 2026-11-30T19:00:01.000Z",
    }],
    ["ROOMS 2 #a=3 #B-b=12", {
      kind: "rooms",
      rooms: [{ room: "#a", count: 3 }, { room: "#B-b", count: 12 }],
    }],
    ["ROOMS 0", { kind: "rooms", rooms: [] }],
    ["ROOMS 2 #a=x nope=1", { kind: "rooms", rooms: [] }],
  ];
  for (const [line, event] of cases) assert.deepEqual(parseLine(line), event, line);
});

Deno.test("isRoom takes # and 1 to 32 of A-Z a-z 0-9 _ -", () => {
  for (const good of ["#a", "#Tea_room-2", `#${"x".repeat(32)}`]) assert.ok(isRoom(good), good);
  for (const bad of ["", "#", "tea", "*", "#t ea", "#té", `#${"x".repeat(33)}`]) {
    assert.ok(!isRoom(bad), bad);
  }
});

Deno.test("describeError explains taken and invalid names in words", () => {
  assert.equal(describeError("NAME_TAKEN", "alice"), "The name alice is taken. Choose another.");
  assert.equal(
    describeError("BAD_NAME", "may contain only A-Z a-z 0-9 _ -"),
    "That name cannot be used: it may contain only A-Z a-z 0-9 _ -. " +
      "Use 1 to 32 letters, digits, _ or -.",
  );
  assert.equal(
    describeError("BAD_ROOM", "must start with #"),
    "That room name cannot be used: it must start with #. " +
      "Use # and 1 to 32 letters, digits, _ or -.",
  );
  assert.equal(
    describeError("TOO_MANY_ROOMS", "10"),
    "You are in as many rooms as you may (10): leave one first.",
  );
  assert.equal(describeError("NEW_CODE", "x"), "Error NEW_CODE: x.");
  assert.equal(describeError("toString", ""), "Error toString.");
});

Deno.test("reconnectDelay doubles from 0.5 s up to 10 s, spread by a quarter", () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 50].map((n) => reconnectDelay(n, 0.5)), [
    500,
    1000,
    2000,
    4000,
    8000,
    10000,
    10000,
    10000,
  ]);
  assert.equal(reconnectDelay(0, 0), 375);
  assert.equal(reconnectDelay(5, 0.999999), 12500);
});

Deno.test("describeError: CLUSTER_UNAVAILABLE for a lobby or room line says where it did reach", () => {
  assert.equal(
    describeError("CLUSTER_UNAVAILABLE", "*"),
    "The other servers cannot be reached right now: your line in the lobby reached only this " +
      "server's users.",
  );
  assert.equal(
    describeError("CLUSTER_UNAVAILABLE", "#tea"),
    "The other servers cannot be reached right now: your line in #tea reached only this " +
      "server's users.",
  );
  assert.equal(
    describeError("CLUSTER_UNAVAILABLE", "bob"),
    "The other servers cannot be reached right now (bob): that was not sent or done. " +
      "Try again shortly.",
  );
});
