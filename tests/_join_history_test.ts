import assert from "node:assert/strict";
import { JoinHistory } from "../src/_join_history.ts";
import type { HistoryLine } from "../src/history.ts";

const AT = Date.UTC(2026, 10, 30, 19, 0, 0, 7);
const line = (sender: string, text: string): HistoryLine => ({ time: AT, sender, text });

Deno.test("JoinHistory gives a confirmed session its held lines in order, then HISTORY * END, once", () => {
  const history = new JoinHistory(true);
  history.hold(1, [line("bob", "hi  there"), line("carol", "yo")]);
  history.hold(1, [line("bob", "again")]);
  assert.equal(history.size, 1);
  assert.equal(
    history.take(1),
    "HISTORY * 2026-11-30T19:00:00.007Z bob hi  there\n" +
      "HISTORY * 2026-11-30T19:00:00.007Z carol yo\n" +
      "HISTORY * 2026-11-30T19:00:00.007Z bob again\n" +
      "HISTORY * END\n",
  );
  assert.equal(history.size, 0);
  assert.equal(history.take(1), "HISTORY * END\n", "nothing is held twice");
});

Deno.test("JoinHistory keeps each session's lines apart, and drop forgets one session's only", () => {
  const history = new JoinHistory(true);
  history.hold(1, [line("bob", "for one")]);
  history.hold(2, [line("bob", "for two")]);
  history.drop(1);
  assert.equal(history.size, 1);
  assert.equal(history.take(1), "HISTORY * END\n");
  assert.equal(history.take(2), "HISTORY * 2026-11-30T19:00:00.007Z bob for two\nHISTORY * END\n");
  assert.equal(history.size, 0);
});

Deno.test("JoinHistory with history off gives a confirmation nothing and keeps nothing", () => {
  const history = new JoinHistory(false);
  history.hold(1, [line("bob", "hi")]);
  assert.equal(history.take(1), undefined);
  assert.equal(history.size, 0);
});
