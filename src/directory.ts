/**
 * The directory of users: name → (thread endpoint, connection).
 *
 * The supervisor holds the one authoritative {@linkcode Directory} and is its only writer:
 * threads ask it to claim and release names, so two claims for one name are decided in one
 * place, one after the other. Every thread holds a {@linkcode Replica}, kept current by the
 * supervisor's updates, which reach it in the order the supervisor made them. Threads read
 * their replica to route `CHAT` and answer `WHO` without a round trip.
 *
 * @module
 */
import type { Entry } from "./directory_messages.ts";
import { nameKey } from "./protocol.ts";

/** True when `a` and `b` are the same claim: the same name on the same connection. */
export function sameEntry(a: Entry, b: Entry): boolean {
  return a.conn === b.conn && a.ep === b.ep && nameKey(a.name) === nameKey(b.name);
}

/** The authoritative directory, in the supervisor. */
export class Directory {
  readonly #entries = new Map<string, Entry>();

  /** Claims `entry.name` for `entry`; false when the name is taken (case-insensitively). */
  claim(entry: Entry): boolean {
    const key = nameKey(entry.name);
    if (this.#entries.has(key)) return false;
    this.#entries.set(key, entry);
    return true;
  }

  /** The holder of `name`, compared case-insensitively. */
  lookup(name: string): Entry | undefined {
    return this.#entries.get(nameKey(name));
  }

  /** True while `entry` is the current holder of its name. */
  holds(entry: Entry): boolean {
    const current = this.#entries.get(nameKey(entry.name));
    return current !== undefined && sameEntry(current, entry);
  }

  /** Releases `entry`'s name if `entry` still holds it; returns whether it did. */
  release(entry: Entry): boolean {
    if (!this.holds(entry)) return false;
    this.#entries.delete(nameKey(entry.name));
    return true;
  }

  /** Releases every name held on the endpoints `eps`; returns the entries removed. */
  releaseEndpoints(eps: ReadonlySet<string>): Entry[] {
    const removed: Entry[] = [];
    for (const [key, entry] of this.#entries) {
      if (eps.has(entry.ep)) {
        this.#entries.delete(key);
        removed.push(entry);
      }
    }
    return removed;
  }

  /** All entries. */
  entries(): Entry[] {
    return [...this.#entries.values()];
  }

  /** Number of names held. */
  get size(): number {
    return this.#entries.size;
  }
}

/** A thread's read-only copy of the directory and of the live thread endpoints. */
export class Replica {
  readonly #entries = new Map<string, Entry>();
  #endpoints: string[] = [];
  #sortedNames: string[] | undefined;

  /** Replaces everything with a snapshot. */
  load(entries: readonly Entry[], endpoints: readonly string[]): void {
    this.#entries.clear();
    for (const entry of entries) this.#entries.set(nameKey(entry.name), entry);
    this.#endpoints = [...endpoints];
    this.#sortedNames = undefined;
  }

  /** Applies an `add` update. */
  add(entry: Entry): void {
    this.#entries.set(nameKey(entry.name), entry);
    this.#sortedNames = undefined;
  }

  /**
   * Applies a `remove` update for one entry. Returns false when the replica holds a different
   * claim of that name (a newer one), which is then kept.
   */
  remove(entry: Entry): boolean {
    const key = nameKey(entry.name);
    const current = this.#entries.get(key);
    if (current === undefined || !sameEntry(current, entry)) return false;
    this.#entries.delete(key);
    this.#sortedNames = undefined;
    return true;
  }

  /** The holder of `name`, compared case-insensitively. */
  lookup(name: string): Entry | undefined {
    return this.#entries.get(nameKey(name));
  }

  /** Every name as its user spelled it, sorted case-insensitively. */
  names(): readonly string[] {
    this.#sortedNames ??= [...this.#entries.keys()].sort().map((key) =>
      this.#entries.get(key)!.name
    );
    return this.#sortedNames;
  }

  /** Replaces the list of live thread endpoints. */
  setEndpoints(endpoints: readonly string[]): void {
    this.#endpoints = [...endpoints];
  }

  /** The live thread endpoints, this thread's own included. */
  get endpoints(): readonly string[] {
    return this.#endpoints;
  }
}
