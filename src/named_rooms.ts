/**
 * A thread's named rooms: `JOIN #room`, `PART`, `CHAT #room`, `WHO #room`, `ROOMS`.
 *
 * Membership is the supervisor's, like names: a thread asks it to let a user `enter` or
 * `part` a room, and it hands every change, numbered with the directory's `seq`, to every
 * thread's {@linkcode RoomTable} replica, the entering user's thread last. So every thread
 * knows which threads host members of a room, and a member's message goes only to those
 * (a `NAMED` record each, and on a cluster node one to the supervisor for all the members on
 * other nodes); notices (`JOINED #room`, `LEFT #room`) ride on the changes. A
 * user whose name is removed (`LEAV`, disconnect, death of its thread or process) leaves
 * every room with that same update, before the lobby's `LEFT`.
 *
 * On this thread each room with local members is a {@linkcode Room} of {@linkcode Seat}s.
 * A seat that is entering holds what it gets until the confirmation, with the lobby's rule:
 * held notices of earlier changes are dropped (the `USERS` line shows them).
 *
 * @module
 */
import type { OutputChunks } from "./_output_chunks.ts";
import type { Bus } from "./bus.ts";

import {
  type ControlMessage,
  type Entry,
  isRemoteEndpointId,
  SUPERVISOR_EP,
} from "./directory_messages.ts";
import type { HistoryLine } from "./history.ts";
import { ErrorCode, nameKey, Reply } from "./protocol.ts";
import { Room, type RoomMember } from "./room.ts";
import type { RoomTable } from "./room_table.ts";
import { encodeNamedRoom } from "./wire.ts";

/** What named rooms need from a client. `Session` is one. */
export interface RoomUser {
  readonly id: number;
  /** The joined name; undefined unless joined. */
  readonly name: string | undefined;
  /** Sends one line (LF included) now. */
  reply(line: string): void;
  /** Queues a whole line. */
  write(bytes: Uint8Array): void;
  /** Writes the line just appended to `chunks` (a broadcast), if joined. */
  broadcast(chunks: OutputChunks, seq: number): void;
  /** Counts bytes held for this client; false when that makes it a slow consumer. */
  charge(bytes: number): boolean;
  /** Takes back a {@linkcode charge}. */
  discharge(bytes: number): void;
}

/** Options of {@linkcode NamedRooms}. */
export interface NamedRoomsOptions {
  /** This thread's endpoint id. */
  ep: string;
  /** Reaches the other threads. */
  bus: Pick<Bus, "send" | "flushed">;
  /** The replica's room table, kept current by {@linkcode NamedRooms.entered} and the rest. */
  table: RoomTable;
  /** Sends a message to the supervisor's directory. */
  toSupervisor: (message: ControlMessage) => void;
  /** `--max-rooms-per-user`. */
  maxRoomsPerUser: number;
  /** True when the supervisor keeps history: it gets a copy of every message, and entering users their room's. */
  history: boolean;
  /** The thread's shared broadcast chunks. */
  chunks: OutputChunks;
}

const encoder = new TextEncoder();

/** One user's place in one room on this thread. */
export class Seat implements RoomMember {
  readonly user: RoomUser;
  /** The room's key (lower case). */
  readonly key: string;
  state: "entering" | "in" = "entering";
  #held: { line: Uint8Array; seq: number }[] = [];
  #heldBytes = 0;
  #settle: (() => void) | undefined;
  readonly settled: Promise<void>;
  /** History from the directory, ahead of the confirmation. */
  history: HistoryLine[] = [];

  constructor(user: RoomUser, key: string) {
    this.user = user;
    this.key = key;
    this.settled = new Promise((resolve) => this.#settle = resolve);
  }

  broadcast(chunks: OutputChunks, seq: number): void {
    if (this.state === "in") return this.user.broadcast(chunks, Infinity);
    const line = chunks.chunk.subarray(chunks.start, chunks.end);
    if (!this.user.charge(line.length)) return;
    this.#heldBytes += line.length;
    this.#held.push({ line, seq });
  }

  /** The directory confirmed the entry as change `seq`: held lines of later changes follow. */
  confirm(seq: number): void {
    this.state = "in";
    this.user.discharge(this.#heldBytes);
    for (const held of this.#held) if (held.seq > seq) this.user.write(held.line);
    this.drop();
  }

  /** Forgets what is held and lets the client's next line run. */
  drop(): void {
    if (this.state === "entering") this.user.discharge(this.#heldBytes);
    this.history = [];
    this.#held = [];
    this.#heldBytes = 0;
    const settle = this.#settle;
    this.#settle = undefined;
    settle?.();
  }
}

/** The named rooms of one thread. */
export class NamedRooms {
  readonly #options: NamedRoomsOptions;
  readonly #table: RoomTable;
  /** Rooms with members on this thread, by key. */
  readonly #rooms = new Map<string, Room<Seat>>();
  /** Each user's seats, by room key. */
  readonly #seats = new Map<RoomUser, Map<string, Seat>>();

  constructor(options: NamedRoomsOptions) {
    this.#options = options;
    this.#table = options.table;
  }

  /** Rooms with members on this thread. */
  get localRooms(): number {
    return this.#rooms.size;
  }

  #entry(user: RoomUser): Entry {
    return { name: user.name!, ep: this.#options.ep, conn: user.id };
  }

  #seat(user: RoomUser, room: string): Seat | undefined {
    return this.#seats.get(user)?.get(nameKey(room));
  }

  // Commands ---------------------------------------------------------------------------------

  /** `JOIN #room`: resolves once `OK JOIN #room` and `USERS #room`, or the error, was sent. */
  enter(user: RoomUser, room: string): void | Promise<void> {
    const key = nameKey(room);
    let seats = this.#seats.get(user);
    if (seats?.has(key)) return user.reply(Reply.error(ErrorCode.ALREADY_IN_ROOM, room));
    if ((seats?.size ?? 0) >= this.#options.maxRoomsPerUser) {
      return user.reply(Reply.error(ErrorCode.TOO_MANY_ROOMS, `${this.#options.maxRoomsPerUser}`));
    }
    if (seats === undefined) this.#seats.set(user, seats = new Map());
    const seat = new Seat(user, key);
    seats.set(key, seat);
    let local = this.#rooms.get(key);
    if (local === undefined) {
      local = new Room<Seat>((line) => this.#forward(key, line), this.#options.chunks);
      this.#rooms.set(key, local);
    }
    local.add(seat);
    this.#options.toSupervisor({ kind: "enter", room, entry: this.#entry(user) });
    return seat.settled;
  }

  /**
   * `PART #room`: `OK PART`, then the directory is told once what the user sent is on its
   * way (its last words come before its `LEFT #room`); resolves when it was told.
   */
  part(user: RoomUser, room: string): void | Promise<void> {
    const seat = this.#seat(user, room);
    if (seat?.state !== "in") return user.reply(Reply.error(ErrorCode.NOT_IN_ROOM, room));
    const shown = this.#table.get(room)?.name ?? room;
    this.#unseat(seat);
    user.reply(Reply.roomParted(shown));
    const entry = this.#entry(user);
    return this.#options.bus.flushed().then(() =>
      this.#options.toSupervisor({ kind: "part", room, entry })
    );
  }

  /** `CHAT #room text`: `ROOM #room sender text` to every other member. */
  say(user: RoomUser, room: string, text: string): void {
    const seat = this.#seat(user, room);
    const info = this.#table.get(room);
    if (seat?.state !== "in" || info === undefined) {
      return user.reply(Reply.error(ErrorCode.NOT_IN_ROOM, room));
    }
    this.#rooms.get(seat.key)!.post(seat, Reply.roomMessage(info.name, user.name!, text));
  }

  /** `WHO #room`: its members, for anyone joined; `USERS #room 0` for a room without members. */
  who(user: RoomUser, room: string): void {
    user.reply(Reply.roomUsers(this.#table.get(room)?.name ?? room, this.#table.names(room)));
  }

  /** `ROOMS`. */
  list(user: RoomUser): void {
    user.reply(Reply.rooms(this.#table.counts()));
  }

  /** `user` is leaving or closed: its seats go, without a word to the directory (its name's removal takes it out of every room). */
  drop(user: RoomUser): void {
    const seats = this.#seats.get(user);
    if (seats === undefined) return;
    for (const seat of [...seats.values()]) this.#unseat(seat);
    this.#seats.delete(user);
  }

  #unseat(seat: Seat): void {
    const local = this.#rooms.get(seat.key);
    local?.delete(seat);
    if (local?.size === 0) this.#rooms.delete(seat.key);
    const seats = this.#seats.get(seat.user);
    seats?.delete(seat.key);
    if (seats?.size === 0) this.#seats.delete(seat.user);
    seat.drop();
  }

  #forward(key: string, line: Uint8Array): void {
    const info = this.#table.get(key);
    if (info === undefined) return;
    let record: Uint8Array | undefined;
    let remote = false;
    for (const ep of info.endpoints.keys()) {
      if (ep === this.#options.ep) continue;
      // Another node's members: the supervisor forwards one copy to each node that hosts some.
      if (isRemoteEndpointId(ep)) {
        remote = true;
        continue;
      }
      record ??= encodeNamedRoom(info.name, line);
      this.#options.bus.send(ep, record);
    }
    if (this.#options.history || remote) {
      this.#options.bus.send(SUPERVISOR_EP, record ?? encodeNamedRoom(info.name, line));
    }
  }

  // Directory updates --------------------------------------------------------------------------

  /** `entry` entered `room` as change `seq`; `owner` is its local user, if any. */
  entered(room: string, entry: Entry, seq: number, owner: RoomUser | undefined): void {
    const shown = this.#table.add(room, entry, seq);
    if (shown === undefined) return;
    const key = nameKey(room);
    const seat = owner === undefined ? undefined : this.#seats.get(owner)?.get(key);
    const local = this.#rooms.get(key);
    local?.notice(encoder.encode(Reply.roomJoinedNotice(shown, entry.name)), seq, seat);
    if (entry.ep !== this.#options.ep) return;
    if (seat?.state === "entering") {
      let reply = Reply.roomJoined(shown);
      if (this.#options.history) {
        for (const line of seat.history) {
          reply += Reply.history(shown, line.time, line.sender, line.text);
        }
        reply += Reply.historyEnd(shown);
      }
      seat.user.reply(reply + Reply.roomUsers(shown, this.#table.names(room, seq)));
      seat.confirm(seq);
    } // The user is gone or its seat was dropped: take it back out.
    else if (seat === undefined) this.#options.toSupervisor({ kind: "part", room, entry });
  }

  /** History of `room` for `owner`, ahead of its confirmation. */
  history(room: string, owner: RoomUser, lines: readonly HistoryLine[]): void {
    const seat = this.#seats.get(owner)?.get(nameKey(room));
    if (seat?.state === "entering") seat.history.push(...lines);
  }

  /** `entry` left `room` as change `seq`. */
  parted(room: string, entry: Entry, seq: number): void {
    const shown = this.#table.remove(room, entry);
    if (shown === undefined) return;
    this.#left(shown, entry.name, seq);
  }

  /** The directory refused `owner`'s entry: the server holds `--max-rooms` rooms. */
  roomsFull(room: string, owner: RoomUser | undefined): void {
    const seat = owner === undefined ? undefined : this.#seats.get(owner)?.get(nameKey(room));
    if (seat?.state !== "entering") return;
    seat.user.reply(Reply.error(ErrorCode.TOO_MANY_ROOMS, "server"));
    this.#unseat(seat);
  }

  /** `entry`'s name was removed as change `seq`: it leaves every room. Call before the lobby's `LEFT`. */
  removed(entry: Entry, seq: number): void {
    for (const shown of this.#table.removeUser(entry)) this.#left(shown, entry.name, seq);
  }

  #left(shown: string, name: string, seq: number): void {
    this.#rooms.get(nameKey(shown))?.notice(
      encoder.encode(Reply.roomLeftNotice(shown, name)),
      seq,
      undefined,
    );
  }

  /** A member's message from another thread (a `NAMED` record). */
  deliver(room: string, line: Uint8Array): void {
    this.#rooms.get(nameKey(room))?.deliver(line);
  }
}
