import assert from "node:assert/strict";
// @ts-types="./web_lines.d.ts"
import { describeError, parseLine, reconnectDelay } from "../src/web/lines.js";

Deno.test("parseLine turns each server line into the page's event", () => {
  const cases: [string, unknown][] = [
    ["HELLO chatd 0.1.0 p=0 t=1 — JOIN <name> to start", {
      kind: "hello",
      line: "HELLO chatd 0.1.0 p=0 t=1 — JOIN <name> to start",
    }],
    ["OK JOIN alice", { kind: "joined-as", name: "alice" }],
    ["USERS 2 alice bob", { kind: "users", names: ["alice", "bob"] }],
    ["USERS 0", { kind: "users", names: [] }],
    ["JOINED bob", { kind: "joined", name: "bob" }],
    ["LEFT bob", { kind: "left", name: "bob" }],
    ["FROM bob psst  two  spaces ", { kind: "direct", sender: "bob", text: "psst  two  spaces " }],
    ["ALL bob <img src=x onerror=alert(1)>", {
      kind: "room",
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

Deno.test("describeError explains taken and invalid names in words", () => {
  assert.equal(describeError("NAME_TAKEN", "alice"), "The name alice is taken. Choose another.");
  assert.equal(
    describeError("BAD_NAME", "may contain only A-Z a-z 0-9 _ -"),
    "That name cannot be used: it may contain only A-Z a-z 0-9 _ -. " +
      "Use 1 to 32 letters, digits, _ or -.",
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
