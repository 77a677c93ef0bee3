/**
 * Who is in which named room, across the server. The supervisor holds the authoritative
 * table next to its {@linkcode Directory}; every thread's replica holds a copy kept current by
 * the same ordered updates, so a thread knows which threads host members of a room (and
 * sends that room's messages only there) and answers `WHO #room` and `ROOMS` locally.
 *
 * A room exists while it has members; it is shown as the first member spelled it.
 *
 * @module
 */
import { sameEntry } from "./directory.ts";
import type { Entry } from "./directory_messages.ts";
import { nameKey } from "./protocol.ts";

/** One member of a room: its directory entry and the change that put it there. */
export interface RoomSeat {
  entry: Entry;
  /** The directory change that added it; 0 when it came in a snapshot. */
  seq: number;
}

/** A room as the table holds it. */
export interface RoomInfo {
  /** As first spelled, `#` included. */
  name: string;
  /** By user name key. */
  members: Map<string, RoomSeat>;
  /** Members per thread endpoint. */
  endpoints: Map<string, number>;
}

/** A room and its members, as a snapshot carries it. */
export interface RoomSnapshot {
  name: string;
  members: Entry[];
}

/** Every named room with members. */
export class RoomTable {
  readonly #rooms = new Map<string, RoomInfo>();
  /** Room keys by user name key. */
  readonly #byUser = new Map<string, Set<string>>();

  /** Number of rooms with members. */
  get size(): number {
    return this.#rooms.size;
  }

  /** The room `room` (any letter case), if it has members. */
  get(room: string): RoomInfo | undefined {
    return this.#rooms.get(nameKey(room));
  }

  /** True when `entry` (that very claim) is in `room`. */
  has(room: string, entry: Entry): boolean {
    const seat = this.get(room)?.members.get(nameKey(entry.name));
    return seat !== undefined && sameEntry(seat.entry, entry);
  }

  /** Number of rooms `name` is in. */
  roomsOf(name: string): number {
    return this.#byUser.get(nameKey(name))?.size ?? 0;
  }

  /**
   * Puts `entry` into `room`, creating the room (spelled `room`) if it has no members.
   * Returns the room's name as shown, or undefined when `entry`'s name is in it already.
   */
  add(room: string, entry: Entry, seq: number): string | undefined {
    const key = nameKey(room);
    let info = this.#rooms.get(key);
    if (info === undefined) {
      info = { name: room, members: new Map(), endpoints: new Map() };
      this.#rooms.set(key, info);
    }
    const user = nameKey(entry.name);
    if (info.members.has(user)) return undefined;
    info.members.set(user, { entry, seq });
    info.endpoints.set(entry.ep, (info.endpoints.get(entry.ep) ?? 0) + 1);
    let rooms = this.#byUser.get(user);
    if (rooms === undefined) this.#byUser.set(user, rooms = new Set());
    rooms.add(key);
    return info.name;
  }

  /** Takes `entry` out of `room`; returns the room's name as shown, or undefined if it was not in. */
  remove(room: string, entry: Entry): string | undefined {
    const key = nameKey(room);
    const info = this.#rooms.get(key);
    if (info === undefined) return undefined;
    const user = nameKey(entry.name);
    const seat = info.members.get(user);
    if (seat === undefined || !sameEntry(seat.entry, entry)) return undefined;
    info.members.delete(user);
    const count = info.endpoints.get(entry.ep)! - 1;
    if (count === 0) info.endpoints.delete(entry.ep);
    else info.endpoints.set(entry.ep, count);
    if (info.members.size === 0) this.#rooms.delete(key);
    const rooms = this.#byUser.get(user)!;
    rooms.delete(key);
    if (rooms.size === 0) this.#byUser.delete(user);
    return info.name;
  }

  /** Takes `entry` out of every room it is in; returns those rooms' names, sorted. */
  removeUser(entry: Entry): string[] {
    const rooms = this.#byUser.get(nameKey(entry.name));
    if (rooms === undefined) return [];
    const left: string[] = [];
    for (const key of [...rooms].sort()) {
      const name = this.remove(key, entry);
      if (name !== undefined) left.push(name);
    }
    return left;
  }

  /** Members of `room` as spelled, sorted as `WHO` sorts, that came in at change `upTo` or before. */
  names(room: string, upTo = Infinity): string[] {
    const info = this.get(room);
    if (info === undefined) return [];
    const keys = [...info.members.keys()].sort();
    const names: string[] = [];
    for (const key of keys) {
      const seat = info.members.get(key)!;
      if (seat.seq <= upTo) names.push(seat.entry.name);
    }
    return names;
  }

  /** Every room as `#name=count`, sorted case-insensitively. */
  counts(): string[] {
    return [...this.#rooms.keys()].sort().map((key) => {
      const info = this.#rooms.get(key)!;
      return `${info.name}=${info.members.size}`;
    });
  }

  /** Every room with its members, for a snapshot. */
  snapshot(): RoomSnapshot[] {
    return [...this.#rooms.values()].map((info) => ({
      name: info.name,
      members: [...info.members.values()].map((seat) => seat.entry),
    }));
  }

  /** Replaces everything with a snapshot; its members count as change 0. */
  load(rooms: readonly RoomSnapshot[]): void {
    this.#rooms.clear();
    this.#byUser.clear();
    for (const room of rooms) for (const entry of room.members) this.add(room.name, entry, 0);
  }
}
