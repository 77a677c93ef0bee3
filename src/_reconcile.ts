/**
 * What a node does after it was cut off from NATS (or frozen): it compares what it shows —
 * its own users' names and the other nodes' users — with a fresh read of `chatd_names`,
 * and the bucket wins. Pure, so that every case is tested without a broker.
 *
 * @module
 */
import type { ClusterEntry } from "./cluster.ts";

/** A name entry as read from `chatd_names`, with its revision. */
export interface NameRecord {
  entry: ClusterEntry;
  revision: number;
}

/** What {@linkcode reconcileNames} compares. */
export interface ReconcileInput {
  /** This node's name and run. */
  node: string;
  boot: string;
  /** Names this node's users hold, by key, with the revision of their claim. */
  held: ReadonlyMap<string, number>;
  /** Names whose claim by this node is being decided: left to that claim. */
  pending: ReadonlySet<string>;
  /** Other nodes' entries this node shows, by key. */
  remote: ReadonlyMap<string, NameRecord>;
  /** The bucket as read now, by key (deleted keys absent). */
  bucket: ReadonlyMap<string, NameRecord>;
}

/** One step of a reconciliation, in the order they are to be taken. */
export type ReconcileAction =
  /** A held name is still this run's, at `revision`. */
  | { kind: "keep"; key: string; revision: number }
  /** A held name is missing from the bucket (deleted by a node that judged this one dead, or
   * the bucket was lost): claim it again; the atomic create decides against any other claim. */
  | { kind: "reclaim"; key: string }
  /** A held name belongs to another node's user in the bucket: the local holder loses it. */
  | { kind: "lost"; key: string }
  /** An entry of this node that no user of this run holds (released while cut off, or left by
   * an earlier run): delete it at its revision. */
  | { kind: "delete"; key: string; revision: number }
  /** A shown remote entry that the bucket no longer has, or has replaced: `LEFT`. */
  | { kind: "ghost"; record: NameRecord }
  /** A bucket entry of another node not shown yet (claimed while cut off): `JOINED`. */
  | { kind: "appeared"; record: NameRecord };

/**
 * Compares this node's view with the bucket. The rule, documented in the README: the bucket
 * entry wins. A local holder whose name the bucket gives to another node loses it; a held
 * name the bucket lacks is claimed again.
 *
 * @example
 * ```ts
 * reconcileNames({ node: "a", boot: "1", held: new Map([["bob", 4]]), pending: new Set(),
 *   remote: new Map(), bucket: new Map() }); // [{ kind: "reclaim", key: "bob" }]
 * ```
 */
export function reconcileNames(input: ReconcileInput): ReconcileAction[] {
  const { node, boot, held, pending, remote, bucket } = input;
  const actions: ReconcileAction[] = [];
  for (const [key, revision] of held) {
    const record = bucket.get(key);
    if (record === undefined) actions.push({ kind: "reclaim", key });
    else if (record.entry.node !== node) actions.push({ kind: "lost", key });
    else if (record.entry.boot === boot) {
      if (record.revision !== revision) {
        actions.push({ kind: "keep", key, revision: record.revision });
      }
    } else {
      // An earlier run's entry under a name this run holds: it goes, and this run claims again.
      actions.push({ kind: "delete", key, revision: record.revision }, { kind: "reclaim", key });
    }
  }
  for (const [key, shown] of remote) {
    const record = bucket.get(key);
    if (record === undefined || record.revision !== shown.revision) {
      actions.push({ kind: "ghost", record: shown });
    }
  }
  for (const [key, record] of bucket) {
    if (record.entry.node === node) {
      if (!held.has(key) && !pending.has(key)) {
        actions.push({ kind: "delete", key, revision: record.revision });
      }
    } else if (remote.get(key)?.revision !== record.revision) {
      actions.push({ kind: "appeared", record });
    }
  }
  return actions;
}
