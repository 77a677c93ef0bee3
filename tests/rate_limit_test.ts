import assert from "node:assert/strict";
import { TokenBucket } from "../src/rate_limit.ts";

/** A clock the test moves by hand. */
function fakeClock(start = 1000): { now: () => number; advance: (ms: number) => void } {
  let time = start;
  return { now: () => time, advance: (ms) => time += ms };
}

Deno.test("TokenBucket lets a burst through at once, then one line per 1/rate seconds", () => {
  const clock = fakeClock();
  const bucket = new TokenBucket({ rate: 20, burst: 5, now: clock.now });
  for (let i = 0; i < 5; i++) assert.equal(bucket.take(), 0, `line ${i} of the burst`);
  // Lends ahead: each further take waits 50 ms longer than the one before.
  assert.equal(bucket.take(), 50);
  assert.equal(bucket.take(), 100);
  assert.equal(bucket.take(), 150);
});

Deno.test("TokenBucket refills at its rate as the clock moves", () => {
  const clock = fakeClock();
  const bucket = new TokenBucket({ rate: 10, burst: 2, now: clock.now });
  assert.equal(bucket.take(), 0);
  assert.equal(bucket.take(), 0);
  assert.equal(bucket.take(), 100);
  // The third take borrowed a token; after 100 ms the debt is paid and the bucket is empty.
  clock.advance(100);
  assert.equal(bucket.take(), 100);
  clock.advance(250); // 2.5 tokens due, 1 owed: 1.5 in the bucket
  assert.equal(bucket.take(), 0);
  assert.ok(Math.abs(bucket.take() - 50) < 1e-9);
});

Deno.test("TokenBucket never holds more than its burst, however long it idles", () => {
  const clock = fakeClock();
  const bucket = new TokenBucket({ rate: 100, burst: 3, now: clock.now });
  clock.advance(60_000);
  for (let i = 0; i < 3; i++) assert.equal(bucket.take(), 0);
  assert.equal(bucket.take(), 10);
});

Deno.test("TokenBucket: a client at exactly its rate never waits", () => {
  const clock = fakeClock();
  const bucket = new TokenBucket({ rate: 20, burst: 1, now: clock.now });
  for (let i = 0; i < 100; i++) {
    assert.equal(bucket.take(), 0, `line ${i}`);
    clock.advance(50);
  }
});

Deno.test("TokenBucket refuses a rate that is not positive", () => {
  for (const rate of [0, -1, NaN]) {
    assert.throws(() => new TokenBucket({ rate, burst: 1 }), RangeError);
  }
});

Deno.test("TokenBucket without a clock refills by performance.now", () => {
  const bucket = new TokenBucket({ rate: 1000, burst: 1 });
  assert.equal(bucket.take(), 0);
  const owed = bucket.take();
  assert.ok(owed > 0 && owed <= 1, `waits ${owed} ms`);
  // The token borrowed and the next one are due 2 ms on: wait for the clock, bounded.
  const due = performance.now() + 2.5;
  const deadline = performance.now() + 1000;
  while (performance.now() < due && performance.now() < deadline) {
    // A busy wait of 2.5 ms: the bucket reads performance.now, not a timer.
  }
  assert.equal(bucket.take(), 0);
});
