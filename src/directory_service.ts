/**
 * The supervisor's side of the directory: answers threads' claims and releases over
 * datagrams and sends every change to every thread's replica.
 *
 * Ordering rules, which the README explains:
 * - A claim is confirmed to its owner (the `add` sent to the owner's thread) only after the
 *   `add` has been handed to every other thread. So when the new user speaks, every thread
 *   already knows it joined, and sees `JOINED` before anything it says.
 * - A released name can be claimed again only after its `remove` has been handed to every
 *   thread, so no thread sees the new holder's `add` before the old holder's `remove`.
 * - Named rooms follow the same rules: an `entered` reaches the owner's thread only after
 *   every other thread has it, and a user whose name is removed leaves every room with it
 *   (each replica takes it out of its rooms when it applies the `remove`).
 *
 * @module
 */
import type { Bus } from "./bus.ts";
import { type ControlMessage, type Entry, SUPERVISOR_EP } from "./directory_messages.ts";
import { type DatagramRecord, encodeControl } from "./wire.ts";
import { Directory } from "./directory.ts";
import { UnixBus } from "./unix_bus.ts";
import { type Logger, logger } from "./log.ts";
import { nameKey, ROOM } from "./protocol.ts";
import { RoomTable } from "./room_table.ts";
import {
  History,
  historyBatches,
  type HistoryLine,
  newestWithin,
  parseRoomLine,
} from "./history.ts";
import type { HistoryStore } from "./history_store.ts";

/** Options of {@linkcode DirectoryService}. */
export interface DirectoryServiceOptions {
  /** Where the sockets live. */
  runtimeDir: string;
  /** True when `ep` belongs to a child process that is alive now. */
  isLive: (ep: string) => boolean;
  /** Rooms the server holds at most (`--max-rooms`); default 10,000. */
  maxRooms?: number;
  /** Lines of history kept per room (`--history`); default 0, none. */
  history?: number;
  /**
   * The most history bytes (as {@linkcode lineBytes} counts) replayed to one user at once,
   * oldest lines left out beyond: replay counts against the user's send queue. Default
   * 512 KiB.
   */
  maxReplayBytes?: number;
  /** The time of a history line; default `Date.now`. */
  now?: () => number;
  /** Where history is kept on disk (`--data-dir`); loaded now, written as lines come, closed with the service. */
  store?: HistoryStore;
}

const decoder = new TextDecoder();

/** The directory, served to the threads. */
export class DirectoryService {
  readonly #directory = new Directory();
  readonly #rooms = new RoomTable();
  readonly #maxRooms: number;
  readonly #history: History;
  readonly #now: () => number;
  readonly #store: HistoryStore | undefined;
  readonly #maxReplayBytes: number;
  readonly #bus: Bus;
  readonly #isLive: (ep: string) => boolean;
  /** Live thread endpoints, in the order they said hello. */
  readonly #endpoints = new Set<string>();
  /** Names whose `remove` is still on its way to some thread, by name key. */
  readonly #releasing = new Map<string, Promise<void>>();
  readonly #log: Logger = logger("directory");
  /** Numbers every add and remove, in the order they were made. */
  #seq = 0;

  constructor(options: DirectoryServiceOptions) {
    this.#isLive = options.isLive;
    this.#maxRooms = options.maxRooms ?? 10_000;
    // The lobby and every room that may exist at once, and as many that emptied meanwhile.
    this.#history = new History({ lines: options.history ?? 0, maxRooms: 2 * this.#maxRooms + 1 });
    this.#now = options.now ?? Date.now;
    this.#store = options.store;
    this.#maxReplayBytes = options.maxReplayBytes ?? 512 * 1024;
    for (const { room, lines } of this.#store?.load() ?? []) this.#history.load(room, lines);
    this.#bus = new UnixBus(options.runtimeDir, SUPERVISOR_EP, {
      onRecord: (record) => this.#onRecord(record),
      onGone: (ep) => this.removeEndpoints([ep]),
    });
  }

  /** Number of names held. */
  get size(): number {
    return this.#directory.size;
  }

  /** The history kept so far (for tests and the store). */
  get history(): History {
    return this.#history;
  }

  #onRecord(record: DatagramRecord): void {
    if (record.kind === "room" || record.kind === "named") {
      return this.#remember(record.kind === "room" ? ROOM : record.room, record.line);
    }
    if (record.kind !== "control") {
      this.#log.warning("message record sent to the supervisor dropped", { kind: record.kind });
      return;
    }
    const message = record.message;
    switch (message.kind) {
      case "hello":
        return this.#hello(message.ep);
      case "claim":
        this.#claim(message.entry);
        return;
      case "release":
        return this.#release(message.entry);
      case "enter":
        this.#enter(message.room, message.entry);
        return;
      case "part":
        return this.#part(message.room, message.entry);
      default:
        this.#log.warning("control message not meant for the supervisor dropped", {
          kind: message.kind,
        });
    }
  }

  /** A copy of a room message, for history. */
  #remember(room: string, line: Uint8Array): void {
    if (!this.#history.enabled) return;
    const parsed = parseRoomLine(decoder.decode(line));
    if (parsed === undefined) {
      this.#log.warning("room message of an unknown shape not kept", { room });
      return;
    }
    const kept = { time: this.#now(), sender: parsed.sender, text: parsed.text };
    this.#history.add(room, kept);
    this.#store?.add(room === ROOM ? ROOM : nameKey(room), kept);
  }

  /** Sends `room`'s history, as it was when `entry`'s change was made, to `entry`'s thread. */
  #sendHistory(room: string, entry: Entry, lines: HistoryLine[] | undefined): void {
    if (lines === undefined) return;
    for (const batch of historyBatches(newestWithin(lines, this.#maxReplayBytes))) {
      this.#send(entry.ep, { kind: "history", room, entry, lines: batch });
    }
  }

  #send(ep: string, message: ControlMessage): void {
    this.#bus.send(ep, encodeControl(message));
  }

  #broadcast(message: ControlMessage, except?: string): void {
    const record = encodeControl(message);
    for (const ep of this.#endpoints) if (ep !== except) this.#bus.send(ep, record);
  }

  /** Resolves when everything sent so far to the endpoints `eps` is on its way. */
  #flushed(eps: Iterable<string>): Promise<void> {
    return this.#bus.flushed(eps);
  }

  #hello(ep: string): void {
    if (!this.#isLive(ep) || this.#endpoints.has(ep)) {
      this.#log.warning("hello from an unknown or known endpoint dropped", { ep });
      return;
    }
    this.#endpoints.add(ep);
    const endpoints = [...this.#endpoints];
    this.#send(ep, {
      kind: "snapshot",
      entries: this.#directory.entries(),
      endpoints,
      rooms: this.#rooms.snapshot(),
    });
    this.#broadcast({ kind: "endpoints", endpoints }, ep);
    this.#log.debug("endpoint joined", { ep });
  }

  async #claim(entry: Entry): Promise<void> {
    if (!this.#endpoints.has(entry.ep)) {
      this.#log.warning("claim from an unknown endpoint dropped", { ep: entry.ep });
      return;
    }
    const key = nameKey(entry.name);
    for (
      let releasing = this.#releasing.get(key);
      releasing;
      releasing = this.#releasing.get(key)
    ) {
      await releasing;
    }
    if (!this.#endpoints.has(entry.ep)) return;
    if (!this.#directory.claim(entry)) {
      this.#send(entry.ep, { kind: "taken", entry });
      return;
    }
    const seq = ++this.#seq;
    // What was said before this change; what is said later reaches the user live.
    const past = this.#history.enabled ? this.#history.lines(ROOM) : undefined;
    this.#broadcast({ kind: "add", entry, seq }, entry.ep);
    const others = [...this.#endpoints].filter((ep) => ep !== entry.ep);
    await this.#flushed(others);
    // The owner's confirmation, unless the name was released or its thread died meanwhile.
    if (this.#directory.holds(entry) && this.#endpoints.has(entry.ep)) {
      this.#sendHistory(ROOM, entry, past);
      this.#send(entry.ep, { kind: "add", entry, seq });
    }
  }

  async #enter(room: string, entry: Entry): Promise<void> {
    // Only a current holder of its name enters; a claim released meanwhile is ignored.
    if (!this.#directory.holds(entry) || this.#rooms.has(room, entry)) {
      this.#log.debug("enter of a name not held, or already in, ignored", { room, ep: entry.ep });
      return;
    }
    if (this.#rooms.get(room) === undefined && this.#rooms.size >= this.#maxRooms) {
      this.#send(entry.ep, { kind: "roomsFull", room, entry });
      return;
    }
    const seq = ++this.#seq;
    const past = this.#history.enabled ? this.#history.lines(room) : undefined;
    const shown = this.#rooms.add(room, entry, seq)!;
    const message: ControlMessage = { kind: "entered", room: shown, entry, seq };
    this.#broadcast(message, entry.ep);
    await this.#flushed([...this.#endpoints].filter((ep) => ep !== entry.ep));
    // The owner's confirmation, unless it left the room or its thread died meanwhile.
    if (this.#rooms.has(room, entry) && this.#endpoints.has(entry.ep)) {
      this.#sendHistory(room, entry, past);
      this.#send(entry.ep, message);
    }
  }

  #part(room: string, entry: Entry): void {
    const shown = this.#rooms.remove(room, entry);
    if (shown === undefined) {
      this.#log.debug("part of a room not in ignored", { room, ep: entry.ep });
      return;
    }
    this.#broadcast({ kind: "parted", room: shown, entry, seq: ++this.#seq });
  }

  #release(entry: Entry): void {
    if (!this.#directory.release(entry)) {
      this.#log.debug("release of a name not held ignored", { name: entry.name, ep: entry.ep });
      return;
    }
    this.#removed([entry]);
  }

  /** Tells every thread that `entries` are gone; their names are free once all know. */
  #removed(entries: Entry[]): void {
    if (entries.length === 0) return;
    for (const entry of entries) this.#rooms.removeUser(entry);
    this.#broadcast({ kind: "remove", entries, seq: ++this.#seq });
    const done = this.#flushed(this.#endpoints);
    for (const entry of entries) {
      const key = nameKey(entry.name);
      const released = done.then(() => {
        if (this.#releasing.get(key) === released) this.#releasing.delete(key);
      });
      this.#releasing.set(key, released);
    }
  }

  /** Forgets thread endpoints that died, with every name held on them. */
  removeEndpoints(eps: Iterable<string>): void {
    const gone = new Set([...eps].filter((ep) => this.#endpoints.delete(ep)));
    if (gone.size === 0) return;
    this.#bus.setPeers([...this.#endpoints]);
    const removed = this.#directory.releaseEndpoints(gone);
    this.#log.info("endpoints removed", { eps: [...gone].join(","), names: removed.length });
    this.#broadcast({ kind: "endpoints", endpoints: [...this.#endpoints] });
    this.#removed(removed);
  }

  /** Forgets every endpoint `matches` picks (those of one child instance, say). */
  removeInstance(matches: (ep: string) => boolean): void {
    this.removeEndpoints([...this.#endpoints].filter(matches));
  }

  /** Closes the supervisor's endpoint, and writes and closes the history store. */
  close(): void {
    this.#bus.close();
    this.#store?.close();
  }
}
