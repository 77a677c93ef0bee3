import assert from "node:assert/strict";
import { FlushRounds } from "../src/_flush_rounds.ts";

/** A hand-driven scheduler: nothing runs until the test ends the turn. */
class FakeTurn {
  soon: (() => void)[] = [];

  options() {
    return { soon: (callback: () => void) => this.soon.push(callback) };
  }

  /** Runs what is due at the end of this turn. */
  end(): void {
    const due = this.soon;
    this.soon = [];
    for (const callback of due) callback();
  }
}

/** A connection that records its flushes. */
function item(log: string[], name: string) {
  return {
    flush() {
      log.push(name);
      return true;
    },
  };
}

Deno.test("FlushRounds writes everything added in a turn at the end of that turn, in one round", () => {
  const turn = new FakeTurn();
  const rounds = new FlushRounds(turn.options());
  const log: string[] = [];
  rounds.add(item(log, "a"));
  rounds.add(item(log, "b"));
  rounds.add(item(log, "c"));
  assert.deepEqual(log, []);
  assert.equal(rounds.waiting, 3);
  assert.equal(turn.soon.length, 1, "one round scheduled");
  turn.end();
  assert.deepEqual(log, ["a", "b", "c"]);
  assert.equal(rounds.waiting, 0);
});

Deno.test("FlushRounds never holds output back, however large the last round was", () => {
  const turn = new FakeTurn();
  const rounds = new FlushRounds(turn.options());
  const log: string[] = [];
  for (let i = 0; i < 1000; i++) rounds.add(item(log, `a${i}`));
  turn.end();
  assert.equal(log.length, 1000);
  rounds.add(item(log, "b"));
  turn.end();
  assert.equal(log.at(-1), "b");
  assert.equal(log.length, 1001);
});

Deno.test("FlushRounds runs a round for items added while one runs", () => {
  const turn = new FakeTurn();
  const rounds = new FlushRounds(turn.options());
  const log: string[] = [];
  rounds.add({
    flush() {
      log.push("a");
      rounds.add(item(log, "b"));
      return true;
    },
  });
  turn.end();
  assert.deepEqual(log, ["a"]);
  turn.end();
  assert.deepEqual(log, ["a", "b"]);
});
