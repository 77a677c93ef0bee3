import assert from "node:assert/strict";
import { respawnDelay } from "../src/supervisor.ts";

Deno.test("respawnDelay doubles from 100 ms for each crash in a row and stops at 10 s", () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 50].map(respawnDelay),
    [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000, 10_000],
  );
});

Deno.test("respawnDelay is 0 for a child that lived a second or more", () => {
  assert.equal(respawnDelay(0), 0);
});
