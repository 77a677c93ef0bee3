import assert from "node:assert/strict";
import { handover, type HandoverChild, respawnDelay } from "../src/supervisor.ts";

Deno.test("respawnDelay doubles from 100 ms for each crash in a row and stops at 10 s", () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 50].map(respawnDelay),
    [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000, 10_000],
  );
});

Deno.test("respawnDelay is 0 for a child that lived a second or more", () => {
  assert.equal(respawnDelay(0), 0);
});

function child(pId: number, retiring = false, draining = false): HandoverChild {
  return { pId, retiring, draining };
}

Deno.test("handover: the current child listening drains the retired children of its p_id", () => {
  const retired = child(0, true);
  const other = child(1, true);
  const replacement = child(0);
  const current = [replacement, child(1)];
  assert.deepEqual(handover(replacement, current, [retired, other, replacement]), [retired]);
});

Deno.test("handover: a replacement that retired before it listened drains nobody", async (t) => {
  // A retired; B, its replacement, accepted its quota on its first thread and retired before
  // its last thread listened; C, B's replacement, does not listen yet.
  const a = child(0, true);
  const b = child(0, true);
  const c = child(0);
  await t.step("B listening drains neither A nor itself", () => {
    assert.deepEqual(handover(b, [c], [a, b, c]), []);
  });
  await t.step("C listening drains both", () => {
    assert.deepEqual(handover(c, [c], [a, b, c]), [a, b]);
  });
});

Deno.test("handover: a child already draining is not ordered again", () => {
  const draining = child(0, true, true);
  const retired = child(0, true);
  const current = child(0);
  assert.deepEqual(handover(current, [current], [draining, retired, current]), [retired]);
});
