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
 * - On a cluster node (cluster.ts), this node's changes go to the other nodes as notices on
 *   their subjects (`add`, `remove`, `entered`, `parted`), and theirs come in the same way;
 *   room messages go only to the nodes with members; history goes through the cluster's
 *   stream, and a replay is taken once this node has read the stream as far as it went.
 *
 * @module
 */
import type { Bus } from "./bus.ts";
import {
  type ControlMessage,
  type Entry,
  isRemoteEndpointId,
  remoteEndpointId,
  SUPERVISOR_EP,
} from "./directory_messages.ts";
import {
  DatagramError,
  type DatagramRecord,
  decodeDatagram,
  encodeControl,
  encodeDirect,
  encodeNamedRoom,
  encodeRoom,
  MAGIC,
} from "./wire.ts";
import {
  type ClaimResult,
  Cluster,
  type ClusterEntry,
  type ClusterLink,
  type ClusterOptions,
  type JoinCluster,
} from "./cluster.ts";
import { redactClusterUrl } from "./config.ts";
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
  readonly #historyLines: number;
  #history: History;
  /** On a cluster node with history, lines go through the cluster's stream (cluster.ts). */
  #sharedHistory = false;
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
  #cluster: ClusterLink | undefined;
  /** This node's name in the cluster. */
  #node = "";
  /** Other nodes' entries removed by their notice, with when: a lagging watch must not revive them. */
  readonly #gone = new Map<string, number>();
  /** Other nodes' entries their node announced: their `remove` notice is awaited. */
  readonly #announced = new Set<string>();
  /** Entries the watch removed before their node's notice did: a bounded wait for it. */
  readonly #awaitingNotice = new Map<string, ReturnType<typeof setTimeout>>();
  /** Other nodes' claims of names still held here while a local claim is being decided. */
  readonly #deferred = new Map<string, Entry>();

  constructor(options: DirectoryServiceOptions) {
    this.#isLive = options.isLive;
    this.#maxRooms = options.maxRooms ?? 10_000;
    // The lobby and every room that may exist at once, and as many that emptied meanwhile.
    this.#historyLines = options.history ?? 0;
    this.#history = new History({ lines: this.#historyLines, maxRooms: 2 * this.#maxRooms + 1 });
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

  /**
   * Joins a cluster of nodes through NATS (see cluster.ts): from now on claims are decided
   * across nodes, other nodes' users are in the directory, and chat records threads send to
   * them are forwarded.
   *
   * @throws {Error} when the NATS server cannot be reached or has no JetStream.
   */
  async joinCluster(options: ClusterOptions, join: JoinCluster = Cluster.join): Promise<void> {
    this.#node = options.node;
    if (this.#history.enabled) {
      // The stream is the history now, read from its start: what the store loaded would
      // come twice.
      this.#history = new History({ lines: this.#historyLines, maxRooms: 2 * this.#maxRooms + 1 });
      this.#sharedHistory = true;
      if (this.#store) this.#log.info("history is kept in the cluster's stream, not --data-dir");
    }
    this.#cluster = await join({
      ...options,
      history: this.#historyLines,
      historyRooms: 2 * this.#maxRooms + 1,
    }, {
      onAdd: (entry) => this.#addRemote(fromCluster(entry)),
      onRemove: (entry, final) => this.#removeRemote(fromCluster(entry), final ? "final" : "watch"),
      onDatagram: (data) => this.#fromNode(data),
      onLost: (key) => this.#lost(key),
      onHistory: (room, line) => this.#history.add(room, line),
      onNode: (node) => this.#introduce(node),
    });
    this.#log.info("joined the cluster", {
      node: options.node,
      servers: options.servers.map(redactClusterUrl).join(","),
    });
  }

  #onRecord(record: DatagramRecord): void {
    // A copy of each lobby and room message, for the history (history.ts).
    if (record.kind === "room" || record.kind === "named") {
      this.#remember(record.kind === "room" ? ROOM : record.room, record.line);
    }
    // On a cluster node, lobby messages and records for other nodes' users are forwarded.
    if (record.kind !== "control" && this.#cluster) return this.#toNode(record, this.#cluster);
    if (record.kind === "room" || record.kind === "named") return;
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
    if (this.#sharedHistory) return this.#cluster?.publishHistory(room, kept);
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
    const result = this.#cluster ? await this.#clusterClaim(entry, this.#cluster) : "won";
    if (result !== "won") {
      if (this.#directory.release(entry)) {
        this.#send(entry.ep, { kind: result, entry });
      }
      const remote = this.#deferred.get(key);
      if (remote) {
        this.#deferred.delete(key);
        this.#added(remote);
      }
      return;
    }
    if (!this.#directory.holds(entry)) return;
    // What was said before this change; what is said later reaches the user live.
    const past = this.#history.enabled ? this.#history.lines(ROOM) : undefined;
    const seq = this.#added(entry, entry.ep);
    this.#announce({ kind: "add", entry: this.#remoteForm(entry), seq });
    const others = [...this.#endpoints].filter((ep) => ep !== entry.ep);
    await this.#flushed(others);
    // The owner's confirmation, unless the name was released or its thread died meanwhile.
    if (this.#directory.holds(entry) && this.#endpoints.has(entry.ep)) {
      this.#sendHistory(ROOM, entry, past);
      this.#send(entry.ep, { kind: "add", entry, seq });
    }
  }

  async #enter(room: string, entry: Entry): Promise<void> {
    // Lines said on any node before the entry are in its replay.
    if (this.#sharedHistory) await this.#cluster?.historySynced();
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
    this.#announce({ ...message, entry: this.#remoteForm(entry) });
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
    const message: ControlMessage = { kind: "parted", room: shown, entry, seq: ++this.#seq };
    this.#broadcast(message);
    this.#announce({ ...message, entry: this.#remoteForm(entry) });
  }

  /** Tells every thread but `except` that `entry` holds its name; returns the seq. */
  #added(entry: Entry, except?: string): number {
    const seq = ++this.#seq;
    this.#broadcast({ kind: "add", entry, seq }, except);
    return seq;
  }

  #release(entry: Entry): void {
    if (!this.#directory.release(entry)) {
      this.#log.debug("release of a name not held ignored", { name: entry.name, ep: entry.ep });
      return;
    }
    this.#cluster?.release(entry.name);
    this.#removed([entry]);
    this.#announce({ kind: "remove", entries: [this.#remoteForm(entry)], seq: this.#seq });
  }

  // Cluster ----------------------------------------------------------------------------------

  /**
   * Decides a claim across the cluster; meanwhile the history catches up with the stream, so
   * that the lobby replay holds every line stored before, whichever node it was said on.
   */
  async #clusterClaim(entry: Entry, cluster: ClusterLink): Promise<ClaimResult> {
    const synced = this.#sharedHistory ? cluster.historySynced() : undefined;
    const result = await cluster.claim(entry.name, entry.ep, entry.conn);
    await synced;
    return result;
  }

  /** Another node's user entered a room (its node's notice). */
  #enterRemote(room: string, entry: Entry): void {
    if (!this.#directory.holds(entry) || this.#rooms.has(room, entry)) {
      this.#log.debug("remote enter of a name not held, or already in, ignored", { room });
      return;
    }
    const seq = this.#seq + 1;
    // Undefined when an earlier claim of the same name is still seated there.
    const shown = this.#rooms.add(room, entry, seq);
    if (shown === undefined) return;
    this.#seq = seq;
    this.#broadcast({ kind: "entered", room: shown, entry, seq });
  }

  /** Another node's user left a room (its node's notice, after the user's last message). */
  #partRemote(room: string, entry: Entry): void {
    const shown = this.#rooms.remove(room, entry);
    if (shown !== undefined) {
      this.#broadcast({ kind: "parted", room: shown, entry, seq: ++this.#seq });
    }
  }

  /**
   * A node heard from for the first time (or under a new run) learns the rooms of this node's
   * users: each member's `add`, then its `entered`. Names come to it by the bucket's watch
   * too; only room members are sent here, all of them confirmed claims.
   */
  #introduce(node: string): void {
    const cluster = this.#cluster;
    if (cluster === undefined) return;
    const sent = new Set<string>();
    for (const room of this.#rooms.snapshot()) {
      for (const member of room.members) {
        if (isRemoteEndpointId(member.ep)) continue;
        const entry = this.#remoteForm(member);
        if (!sent.has(entryId(entry))) {
          sent.add(entryId(entry));
          cluster.publish(node, datagram(encodeControl({ kind: "add", entry, seq: this.#seq })));
        }
        const entered: ControlMessage = { kind: "entered", room: room.name, entry, seq: this.#seq };
        cluster.publish(node, datagram(encodeControl(entered)));
      }
    }
  }

  /** Another node's claim, from the KV watch or from that node's own notice. */
  #addRemote(entry: Entry): void {
    // Both paths bring each claim: the second is ignored, as is a watch lagging behind a
    // notice that the user already left.
    if (this.#directory.holds(entry) || this.#gone.has(entryId(entry))) return;
    // A local claim of the name is being decided; it loses, and this entry follows.
    if (!this.#directory.claim(entry)) return void this.#deferred.set(nameKey(entry.name), entry);
    this.#added(entry);
  }

  /**
   * Another node's user left. `notice`: that node said so on this node's subject, after the
   * user's last message. `watch`: the name was deleted from the bucket; when the node had
   * announced the user, its notice was sent before and is awaited (so that `LEFT` stays
   * after the last message), for at most {@linkcode NOTICE_WAIT_MS} should it be lost.
   * `final`: the node died or restarted.
   */
  #removeRemote(entry: Entry, source: "notice" | "watch" | "final"): void {
    const id = entryId(entry);
    if (source === "watch" && this.#announced.has(id)) {
      if (!this.#awaitingNotice.has(id)) {
        const timer = setTimeout(() => this.#removeRemote(entry, "final"), NOTICE_WAIT_MS);
        this.#awaitingNotice.set(id, timer);
      }
      return;
    }
    clearTimeout(this.#awaitingNotice.get(id));
    this.#awaitingNotice.delete(id);
    this.#announced.delete(id);
    const key = nameKey(entry.name);
    if (this.#deferred.get(key)?.ep === entry.ep) this.#deferred.delete(key);
    const released = this.#directory.release(entry);
    if (source === "notice" && released) this.#forget(id);
    if (released) this.#removed([entry]);
  }

  /**
   * After an outage, the bucket gave a name a user here holds to another node's user: the
   * holder is told (`ERR NAME_LOST`, then its connection is closed) and leaves like any user.
   */
  #lost(key: string): void {
    const entry = this.#directory.lookup(key);
    if (entry === undefined || isRemoteEndpointId(entry.ep)) return;
    this.#send(entry.ep, { kind: "lost", entry });
    this.#release(entry);
  }

  /** Remembers that `id` left, for a while, so that a lagging watch does not revive it. */
  #forget(id: string): void {
    const now = performance.now();
    for (const [old, at] of this.#gone) {
      if (now - at < GONE_MS) break;
      this.#gone.delete(old);
    }
    this.#gone.set(id, now);
  }

  /**
   * Tells the other nodes about this node's claims and releases on their subjects, so that
   * each sees `JOINED` before the user's first message and `LEFT` after its last.
   */
  #announce(message: ControlMessage): void {
    this.#cluster?.publishAll(datagram(encodeControl(message)));
  }

  #remoteForm(entry: Entry): Entry {
    return { name: entry.name, ep: remoteEndpointId(this.#node, entry.ep), conn: entry.conn };
  }

  /** Forwards a thread's chat record to the node(s) it is for. */
  #toNode(
    record: Extract<DatagramRecord, { kind: "room" | "direct" | "named" }>,
    cluster: ClusterLink,
  ): void {
    // A lobby or room line NATS cannot take reached this node's members only: its sender is
    // told so (`ERR CLUSTER_UNAVAILABLE *` or `#room`), as for a direct message.
    if (record.kind === "room") {
      if (!cluster.publishAll(datagram(encodeRoom(record.line)))) {
        this.#undelivered(record.line, ROOM);
      }
      return;
    }
    if (record.kind === "named") {
      // Only to the nodes where the room has members.
      const info = this.#rooms.get(record.room);
      const nodes = new Set<string>();
      for (const ep of info?.endpoints.keys() ?? []) {
        if (isRemoteEndpointId(ep)) nodes.add(ep.slice(0, ep.indexOf("/")));
      }
      if (nodes.size === 0) return;
      const bytes = datagram(encodeNamedRoom(info!.name, record.line));
      let sent = true;
      for (const node of nodes) sent = cluster.publish(node, bytes) && sent;
      if (!sent) this.#undelivered(record.line, info!.name);
      return;
    }
    const target = this.#directory.lookup(record.name);
    if (target === undefined || !isRemoteEndpointId(target.ep) || target.conn !== record.conn) {
      this.#log.debug("stale remote delivery dropped", { name: record.name });
      return;
    }
    const node = target.ep.slice(0, target.ep.indexOf("/"));
    const bytes = datagram(encodeDirect(record.conn, record.name, record.line));
    // NATS unreachable, or gone before it confirmed: the sender hears so, rather than nothing.
    const undelivered = () => this.#undelivered(record.line, target.name);
    if (!cluster.publish(node, bytes, undelivered)) undelivered();
  }

  /**
   * Tells the sender of `line` (`FROM sender text`, `ALL sender text` or `ROOM #room sender
   * text`) that it did not reach `to` (a user, `*` or a room) on the other nodes.
   */
  #undelivered(line: Uint8Array, to: string): void {
    const head = decoder.decode(line.subarray(0, 128));
    const sender = /^(?:FROM|ALL|ROOM \S+) (\S+) /.exec(head)?.[1];
    const from = sender === undefined ? undefined : this.#directory.lookup(sender);
    if (from !== undefined && this.#endpoints.has(from.ep)) {
      this.#send(from.ep, { kind: "undelivered", entry: from, to });
    }
  }

  /** Hands a datagram from another node to this node's threads. */
  #fromNode(data: Uint8Array): void {
    try {
      for (const record of decodeDatagram(data)) {
        if (record.kind === "room") {
          // History comes through the cluster's stream (cluster.ts), not from here.
          const bytes = encodeRoom(record.line);
          for (const ep of this.#endpoints) this.#bus.send(ep, bytes);
        } else if (record.kind === "direct") {
          const target = this.#directory.lookup(record.name);
          if (target && this.#endpoints.has(target.ep) && target.conn === record.conn) {
            this.#bus.send(target.ep, encodeDirect(record.conn, record.name, record.line));
          }
        } else if (record.kind === "control") {
          this.#fromNodeControl(record.message);
        } else {
          // To this node's threads that host members of the room.
          const info = this.#rooms.get(record.room);
          let bytes: Uint8Array | undefined;
          for (const ep of info?.endpoints.keys() ?? []) {
            if (!this.#endpoints.has(ep)) continue;
            bytes ??= encodeNamedRoom(record.room, record.line);
            this.#bus.send(ep, bytes);
          }
        }
      }
    } catch (error: unknown) {
      if (!(error instanceof DatagramError)) throw error;
      this.#log.warning("malformed datagram from another node dropped", { error: String(error) });
    }
  }

  #fromNodeControl(message: ControlMessage): void {
    const remote = (entry: Entry) => isRemoteEndpointId(entry.ep) && !this.#endpoints.has(entry.ep);
    if (message.kind === "add" && remote(message.entry)) {
      this.#announced.add(entryId(message.entry));
      return this.#addRemote(message.entry);
    }
    if (message.kind === "remove" && message.entries.every(remote)) {
      for (const entry of message.entries) this.#removeRemote(entry, "notice");
      return;
    }
    if (message.kind === "entered" && remote(message.entry)) {
      return this.#enterRemote(message.room, message.entry);
    }
    if (message.kind === "parted" && remote(message.entry)) {
      return this.#partRemote(message.room, message.entry);
    }
    this.#log.warning("control record from another node dropped", { kind: message.kind });
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
    for (const entry of removed) this.#cluster?.release(entry.name);
    this.#log.info("endpoints removed", { eps: [...gone].join(","), names: removed.length });
    this.#broadcast({ kind: "endpoints", endpoints: [...this.#endpoints] });
    this.#removed(removed);
    if (removed.length > 0) {
      this.#announce({
        kind: "remove",
        entries: removed.map((e) => this.#remoteForm(e)),
        seq: this.#seq,
      });
    }
  }

  /** Forgets every endpoint `matches` picks (those of one child instance, say). */
  removeInstance(matches: (ep: string) => boolean): void {
    this.removeEndpoints([...this.#endpoints].filter(matches));
  }

  /** Closes the supervisor's endpoint, writes and closes the history store, leaves the cluster. */
  async close(): Promise<void> {
    for (const timer of this.#awaitingNotice.values()) clearTimeout(timer);
    this.#awaitingNotice.clear();
    this.#bus.close();
    this.#store?.close();
    await this.#cluster?.close();
  }
}

/** How long a name deleted from the bucket waits for its node's `remove` notice. */
const NOTICE_WAIT_MS = 2000;
/** How long a user removed by notice is remembered against a lagging watch. */
const GONE_MS = 60_000;

/** Another node's claim as a directory entry. */
function fromCluster(remote: ClusterEntry): Entry {
  return { name: remote.name, ep: remoteEndpointId(remote.node, remote.ep), conn: remote.conn };
}

/** Identifies one claim: the same name may be claimed again by another connection. */
function entryId(entry: Entry): string {
  return `${entry.ep} ${entry.conn} ${nameKey(entry.name)}`;
}

/** One record as a whole datagram. */
function datagram(record: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(1 + record.length);
  bytes[0] = MAGIC;
  bytes.set(record, 1);
  return bytes;
}
