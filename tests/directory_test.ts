import assert from "node:assert/strict";
import type { Entry } from "../src/directory_messages.ts";
import { Directory, Replica, sameEntry } from "../src/directory.ts";

const alice: Entry = { name: "Alice", ep: "0-0-1-0", conn: 1 };
const bob: Entry = { name: "bob", ep: "0-1-1-0", conn: 1 };
const carol: Entry = { name: "carol", ep: "1-0-2-0", conn: 5 };

Deno.test("sameEntry compares connection, endpoint and name case-insensitively", () => {
  assert.equal(sameEntry(alice, { ...alice }), true);
  assert.equal(sameEntry(alice, { ...alice, name: "ALICE" }), true);
  assert.equal(sameEntry(alice, { ...alice, conn: 2 }), false);
  assert.equal(sameEntry(alice, { ...alice, ep: "0-0-1-1" }), false);
  assert.equal(sameEntry(alice, { ...alice, name: "Alicia" }), false);
});

Deno.test("Directory claims a name once, case-insensitively", async (t) => {
  const directory = new Directory();
  await t.step("the first claim wins", () => {
    assert.equal(directory.claim(alice), true);
    assert.equal(directory.size, 1);
    assert.equal(directory.holds(alice), true);
  });
  await t.step("the same spelling from another connection is refused", () => {
    assert.equal(directory.claim({ ...alice, conn: 2 }), false);
  });
  await t.step("another case from another thread is refused", () => {
    assert.equal(directory.claim({ name: "aLiCe", ep: "1-1-3-0", conn: 9 }), false);
    assert.equal(directory.claim({ name: "ALICE", ep: "1-1-3-0", conn: 9 }), false);
  });
  await t.step("the holder claiming again is refused", () => {
    assert.equal(directory.claim(alice), false);
  });
  await t.step("other names are free", () => {
    assert.equal(directory.claim(bob), true);
    assert.equal(directory.claim(carol), true);
  });
  await t.step("the holder keeps the name as it spelled it", () => {
    assert.equal(directory.size, 3);
    assert.deepEqual(directory.entries(), [alice, bob, carol]);
    assert.equal(directory.holds({ ...alice, conn: 2 }), false);
    assert.equal(directory.holds({ ...alice, name: "ALICE" }), true);
  });
});

Deno.test("Directory releases a name only for its holder", async (t) => {
  const directory = new Directory();
  directory.claim(alice);
  await t.step("not for another connection", () => {
    assert.equal(directory.release({ ...alice, conn: 2 }), false);
  });
  await t.step("not for another endpoint", () => {
    assert.equal(directory.release({ ...alice, ep: "0-0-1-1" }), false);
    assert.equal(directory.holds(alice), true);
    assert.equal(directory.size, 1);
  });
  await t.step("not for a name nobody holds", () => {
    assert.equal(directory.release(bob), false);
  });
  await t.step("for the holder, in any case", () => {
    assert.equal(directory.release({ ...alice, name: "aLICE" }), true);
    assert.equal(directory.size, 0);
    assert.equal(directory.holds(alice), false);
  });
  await t.step("once", () => {
    assert.equal(directory.release(alice), false);
  });
  await t.step("after which another connection may claim it", () => {
    const next = { ...alice, name: "ALICE", conn: 3 };
    assert.equal(directory.claim(next), true);
    // The old holder's late release must not free the new holder's name.
    assert.equal(directory.release(alice), false);
    assert.deepEqual(directory.entries(), [next]);
  });
});

Deno.test("Directory.releaseEndpoints frees every name on the given endpoints only", () => {
  const directory = new Directory();
  const alice2 = { name: "alice2", ep: alice.ep, conn: 2 };
  const dave = { name: "dave", ep: "2-0-1-0", conn: 1 };
  for (const entry of [alice, bob, alice2, carol, dave]) assert.equal(directory.claim(entry), true);

  assert.deepEqual(directory.releaseEndpoints(new Set([alice.ep, carol.ep, "9-9-9-9"])), [
    alice,
    alice2,
    carol,
  ]);
  assert.deepEqual(directory.entries(), [bob, dave]);
  assert.equal(directory.size, 2);
  assert.deepEqual(directory.releaseEndpoints(new Set([alice.ep])), []);
  assert.deepEqual(directory.releaseEndpoints(new Set()), []);
  assert.equal(directory.claim({ ...alice, conn: 77 }), true);
});

Deno.test("Replica.load replaces entries and endpoints", () => {
  const replica = new Replica();
  replica.add(carol);
  replica.setEndpoints(["9-9-9-9"]);
  const endpoints = ["0-0-1-0", "0-1-1-0"];
  replica.load([alice, bob], endpoints);
  assert.deepEqual(replica.names(), ["Alice", "bob"]);
  assert.equal(replica.lookup("carol"), undefined);
  assert.deepEqual(replica.endpoints, ["0-0-1-0", "0-1-1-0"]);
  // The replica keeps its own copy.
  endpoints.push("5-5-5-5");
  assert.deepEqual(replica.endpoints, ["0-0-1-0", "0-1-1-0"]);
  replica.load([], []);
  assert.deepEqual(replica.names(), []);
  assert.deepEqual(replica.endpoints, []);
});

Deno.test("Replica.lookup finds a name case-insensitively", () => {
  const replica = new Replica();
  replica.load([alice, bob], []);
  assert.deepEqual(replica.lookup("Alice"), alice);
  assert.deepEqual(replica.lookup("alice"), alice);
  assert.deepEqual(replica.lookup("ALICE"), alice);
  assert.deepEqual(replica.lookup("BoB"), bob);
  assert.equal(replica.lookup("carol"), undefined);
  assert.equal(replica.lookup("Alic"), undefined);
  assert.equal(replica.lookup(""), undefined);
});

Deno.test("Replica.add applies a claim, replacing an older claim of the name", () => {
  const replica = new Replica();
  replica.add(alice);
  assert.deepEqual(replica.lookup("alice"), alice);
  const newer = { name: "ALICE", ep: "1-1-4-0", conn: 8 };
  replica.add(newer);
  assert.deepEqual(replica.lookup("alice"), newer);
  assert.deepEqual(replica.names(), ["ALICE"]);
});

Deno.test("Replica.remove removes only the matching entry", async (t) => {
  const replica = new Replica();
  replica.load([alice, bob], []);
  await t.step("not another connection's claim of the name", () => {
    assert.equal(replica.remove({ ...alice, conn: 2 }), false);
    assert.equal(replica.remove({ ...alice, ep: "0-0-1-1" }), false);
    assert.deepEqual(replica.lookup("alice"), alice);
  });
  await t.step("not a name it does not hold", () => {
    assert.equal(replica.remove(carol), false);
  });
  await t.step("the matching entry, in any case", () => {
    assert.equal(replica.remove({ ...alice, name: "ALICE" }), true);
    assert.equal(replica.lookup("alice"), undefined);
    assert.deepEqual(replica.names(), ["bob"]);
  });
  await t.step("once", () => {
    assert.equal(replica.remove(alice), false);
  });
  await t.step("not a newer claim when the stale remove arrives late", () => {
    const newer = { ...bob, ep: "1-1-1-0", conn: 3 };
    replica.add(newer);
    assert.equal(replica.remove(bob), false);
    assert.deepEqual(replica.lookup("bob"), newer);
  });
});

Deno.test("Replica.names lists names as spelled, sorted case-insensitively", () => {
  const replica = new Replica();
  const entry = (name: string, conn: number): Entry => ({ name, ep: "0-0-1-0", conn });
  replica.load([entry("carol", 1), entry("Bob", 2), entry("alice", 3), entry("Dave", 4)], []);
  assert.deepEqual(replica.names(), ["alice", "Bob", "carol", "Dave"]);

  replica.add(entry("ALAN", 5));
  assert.deepEqual(replica.names(), ["ALAN", "alice", "Bob", "carol", "Dave"]);
  replica.add(entry("bobby", 6));
  replica.add(entry("b", 7));
  assert.deepEqual(replica.names(), ["ALAN", "alice", "b", "Bob", "bobby", "carol", "Dave"]);

  assert.equal(replica.remove(entry("BOB", 2)), true);
  assert.deepEqual(replica.names(), ["ALAN", "alice", "b", "bobby", "carol", "Dave"]);

  replica.load([entry("Zed", 1), entry("amy", 2)], []);
  assert.deepEqual(replica.names(), ["amy", "Zed"]);
});

Deno.test("Replica.setEndpoints replaces the live endpoints and keeps the names", () => {
  const replica = new Replica();
  replica.load([alice], ["0-0-1-0"]);
  const endpoints = ["0-0-1-0", "1-0-2-0"];
  replica.setEndpoints(endpoints);
  endpoints.pop();
  assert.deepEqual(replica.endpoints, ["0-0-1-0", "1-0-2-0"]);
  assert.deepEqual(replica.names(), ["Alice"]);
});
