/**
 * reconcileNames: what a node does with a fresh read of chatd_names after an outage.
 */
import assert from "node:assert/strict";
import { type NameRecord, reconcileNames } from "../src/_reconcile.ts";

function record(name: string, node: string, revision: number, boot = `${node}-boot`): NameRecord {
  return { entry: { name, node, boot, ep: "0-0-1-0", conn: 1 }, revision };
}

function run(options: {
  held?: [string, number][];
  pending?: string[];
  remote?: NameRecord[];
  bucket?: NameRecord[];
}) {
  const byKey = (records: NameRecord[] = []) =>
    new Map(records.map((r) => [r.entry.name.toLowerCase(), r]));
  return reconcileNames({
    node: "a",
    boot: "a-boot",
    held: new Map(options.held ?? []),
    pending: new Set(options.pending ?? []),
    remote: byKey(options.remote),
    bucket: byKey(options.bucket),
  });
}

Deno.test("reconcileNames: nothing to do when the bucket matches", () => {
  assert.deepEqual(
    run({
      held: [["alice", 3]],
      remote: [record("bob", "b", 4)],
      bucket: [record("alice", "a", 3), record("bob", "b", 4)],
    }),
    [],
  );
});

Deno.test("reconcileNames: a held name the bucket gives to another node is lost, and its winner appears", () => {
  const winner = record("alice", "b", 9);
  assert.deepEqual(run({ held: [["alice", 3]], bucket: [winner] }), [
    { kind: "lost", key: "alice" },
    { kind: "appeared", record: winner },
  ]);
});

Deno.test("reconcileNames: a held name missing from the bucket is claimed again", () => {
  assert.deepEqual(run({ held: [["alice", 3]], bucket: [] }), [{ kind: "reclaim", key: "alice" }]);
});

Deno.test("reconcileNames: a held name at a new revision of this run is kept at that revision", () => {
  assert.deepEqual(run({ held: [["alice", 3]], bucket: [record("alice", "a", 7)] }), [
    { kind: "keep", key: "alice", revision: 7 },
  ]);
});

Deno.test("reconcileNames: an earlier run's entry under a held name is deleted and the name claimed again", () => {
  assert.deepEqual(run({ held: [["alice", 3]], bucket: [record("alice", "a", 2, "old")] }), [
    { kind: "delete", key: "alice", revision: 2 },
    { kind: "reclaim", key: "alice" },
  ]);
});

Deno.test("reconcileNames: this node's entries no user holds are deleted, unless a claim is pending", () => {
  assert.deepEqual(
    run({ pending: ["carol"], bucket: [record("dave", "a", 5), record("carol", "a", 6)] }),
    [{ kind: "delete", key: "dave", revision: 5 }],
  );
});

Deno.test("reconcileNames: remote users gone from the bucket are ghosts, new ones appear", () => {
  const bob = record("bob", "b", 4);
  const erin = record("erin", "c", 8);
  assert.deepEqual(run({ remote: [bob], bucket: [erin] }), [
    { kind: "ghost", record: bob },
    { kind: "appeared", record: erin },
  ]);
});

Deno.test("reconcileNames: a remote name taken again meanwhile is a ghost and a newcomer", () => {
  const old = record("bob", "b", 4);
  const again = record("bob", "c", 11);
  assert.deepEqual(run({ remote: [old], bucket: [again] }), [
    { kind: "ghost", record: old },
    { kind: "appeared", record: again },
  ]);
});
