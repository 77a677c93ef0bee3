import assert from "node:assert/strict";
import { FlushRounds, PACE_FROM_MS, PAUSE_PER_CLIENT_MS } from "../src/_flush_rounds.ts";

/** A hand-driven clock and scheduler: nothing runs until the test says so. */
class FakeTime {
  now = 0;
  soon: (() => void)[] = [];
  timers: { at: number; callback: () => void }[] = [];

  options() {
    return {
      now: () => this.now,
      delay: (callback: () => void, ms: number) =>
        this.timers.push({ at: this.now + ms, callback }),
      soon: (callback: () => void) => this.soon.push(callback),
    };
  }

  /** Runs what is due at the end of this turn. */
  endTurn(): void {
    const due = this.soon;
    this.soon = [];
    for (const callback of due) callback();
  }

  /** Moves the clock to `at` and runs the timers due by then. */
  advanceTo(at: number): void {
    this.now = at;
    const due = this.timers.filter((timer) => timer.at <= at);
    this.timers = this.timers.filter((timer) => timer.at > at);
    for (const timer of due) timer.callback();
  }
}

/** A connection that records its flushes; with `time`, each flush takes `takesMs`. */
function item(log: string[], name: string, time?: FakeTime, takesMs = 0) {
  return {
    flush() {
      log.push(name);
      if (time) time.now += takesMs;
      return true;
    },
  };
}

/** A write's cost in these tests (a power of two: exact sums): 100 make a long round. */
const WRITE_MS = PACE_FROM_MS / 64;

/** Adds `count` paced items named `prefix0`, `prefix1`, ..., each taking WRITE_MS. */
function addMany(
  rounds: FlushRounds<ReturnType<typeof item>>,
  time: FakeTime,
  log: string[],
  prefix: string,
  count: number,
) {
  for (let i = 0; i < count; i++) rounds.add(item(log, `${prefix}${i}`, time, WRITE_MS), true);
}

Deno.test("FlushRounds writes everything added in a turn at the end of that turn", () => {
  const time = new FakeTime();
  const rounds = new FlushRounds(time.options());
  const log: string[] = [];
  rounds.add(item(log, "a"), true);
  rounds.add(item(log, "b"));
  rounds.add(item(log, "c"), true);
  assert.deepEqual(log, []);
  assert.equal(rounds.waiting, 3);
  time.endTurn();
  assert.deepEqual(log.toSorted(), ["a", "b", "c"]);
  assert.equal(rounds.waiting, 0);
});

Deno.test("FlushRounds does not pause after a quick round", () => {
  const time = new FakeTime();
  const rounds = new FlushRounds(time.options());
  const log: string[] = [];
  addMany(rounds, time, log, "a", 49);
  time.endTurn();
  rounds.add(item(log, "b"), true);
  time.endTurn();
  assert.equal(time.timers.length, 0);
  assert.equal(log.length, 50);
  assert.equal(log.at(-1), "b");
});

Deno.test("FlushRounds pauses after a long round, and batches what comes meanwhile", () => {
  const time = new FakeTime();
  const rounds = new FlushRounds(time.options());
  const log: string[] = [];
  addMany(rounds, time, log, "a", 100);
  time.endTurn();
  assert.equal(log.length, 100);
  assert.equal(time.now, 100 * WRITE_MS);
  // Two connections get broadcast output during the pause: both go in the one paced round.
  rounds.add(item(log, "x"), true);
  rounds.add(item(log, "y"), true);
  assert.equal(time.soon.length, 0);
  const at = 100 * WRITE_MS + 100 * PAUSE_PER_CLIENT_MS;
  assert.deepEqual(time.timers.map((timer) => timer.at), [at]);
  time.advanceTo(at - 0.5);
  assert.equal(log.length, 100);
  time.advanceTo(at);
  assert.deepEqual(log.slice(100), ["x", "y"]);
  // That round was small: the next one is not held back.
  rounds.add(item(log, "z"), true);
  time.endTurn();
  assert.deepEqual(log.slice(100), ["x", "y", "z"]);
});

Deno.test("FlushRounds does not hold back output that is not paced", () => {
  const time = new FakeTime();
  const rounds = new FlushRounds(time.options());
  const log: string[] = [];
  addMany(rounds, time, log, "a", 100);
  time.endTurn();
  // The paced round waits, a reply goes at the end of its turn.
  rounds.add(item(log, "room"), true);
  rounds.add(item(log, "reply"));
  time.endTurn();
  assert.deepEqual(log.slice(100), ["reply"]);
  time.advanceTo(100 * WRITE_MS + 100 * PAUSE_PER_CLIENT_MS);
  assert.deepEqual(log.slice(100), ["reply", "room"]);
});

Deno.test("FlushRounds counts only the clients a round actually wrote to", () => {
  const time = new FakeTime();
  const rounds = new FlushRounds(time.options());
  const log: string[] = [];
  // Already written at the end of the turn by a reply: nothing left for the paced round.
  for (let i = 0; i < 100; i++) {
    rounds.add({
      flush: () => {
        time.now += WRITE_MS;
        return false;
      },
    }, true);
  }
  time.endTurn();
  assert.ok(time.now >= PACE_FROM_MS, "a long round");
  // It wrote to nobody, so the pause is nothing.
  assert.equal(time.timers.length, 0);
  time.endTurn();
  rounds.add(item(log, "b"), true);
  time.endTurn();
  assert.deepEqual(log, ["b"]);
  assert.equal(time.timers.length, 0);
});

Deno.test("FlushRounds runs a round for items added while one runs", () => {
  const time = new FakeTime();
  const rounds = new FlushRounds(time.options());
  const log: string[] = [];
  rounds.add({
    flush() {
      log.push("a");
      rounds.add(item(log, "b"), true);
      return true;
    },
  }, true);
  time.endTurn();
  assert.deepEqual(log, ["a"]);
  time.endTurn();
  assert.deepEqual(log, ["a", "b"]);
});

Deno.test("the pacing figures are those the README's Delivery section gives: 2 ms, 0.2 ms per client", () => {
  assert.equal(PACE_FROM_MS, 2);
  assert.equal(PAUSE_PER_CLIENT_MS, 0.2);
});
