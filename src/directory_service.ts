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
  encodeRoom,
  MAGIC,
} from "./wire.ts";
import {
  Cluster,
  type ClusterEntry,
  type ClusterLink,
  type ClusterOptions,
  type JoinCluster,
} from "./cluster.ts";
import { Directory } from "./directory.ts";
import { UnixBus } from "./unix_bus.ts";
import { type Logger, logger } from "./log.ts";
import { nameKey } from "./protocol.ts";

/** Options of {@linkcode DirectoryService}. */
export interface DirectoryServiceOptions {
  /** Where the sockets live. */
  runtimeDir: string;
  /** True when `ep` belongs to a child process that is alive now. */
  isLive: (ep: string) => boolean;
}

/** The directory, served to the threads. */
export class DirectoryService {
  readonly #directory = new Directory();
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
  /** Other nodes' entries removed by their notice, until the KV watch says so too. */
  readonly #gone = new Set<string>();
  /** Other nodes' claims of names still held here while a local claim is being decided. */
  readonly #deferred = new Map<string, Entry>();

  constructor(options: DirectoryServiceOptions) {
    this.#isLive = options.isLive;
    this.#bus = new UnixBus(options.runtimeDir, SUPERVISOR_EP, {
      onRecord: (record) => this.#onRecord(record),
      onGone: (ep) => this.removeEndpoints([ep]),
    });
  }

  /** Number of names held. */
  get size(): number {
    return this.#directory.size;
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
    this.#cluster = await join(options, {
      onAdd: (entry) => this.#addRemote(fromCluster(entry)),
      onRemove: (entry) => this.#removeRemote(fromCluster(entry), true),
      onDatagram: (data) => this.#fromNode(data),
    });
    this.#log.info("joined the cluster", {
      node: options.node,
      servers: options.servers.join(","),
    });
  }

  #onRecord(record: DatagramRecord): void {
    if (record.kind !== "control" && this.#cluster) return this.#toNode(record, this.#cluster);
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
      default:
        this.#log.warning("control message not meant for the supervisor dropped", {
          kind: message.kind,
        });
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
    this.#send(ep, { kind: "snapshot", entries: this.#directory.entries(), endpoints });
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
    if (this.#cluster && !(await this.#cluster.claim(entry.name, entry.ep, entry.conn))) {
      if (this.#directory.release(entry)) {
        this.#send(entry.ep, { kind: "taken", entry });
      }
      const remote = this.#deferred.get(key);
      if (remote) {
        this.#deferred.delete(key);
        this.#added(remote);
      }
      return;
    }
    if (!this.#directory.holds(entry)) return;
    const seq = this.#added(entry, entry.ep);
    this.#announce({ kind: "add", entry: this.#remoteForm(entry), seq });
    const others = [...this.#endpoints].filter((ep) => ep !== entry.ep);
    await this.#flushed(others);
    // The owner's confirmation, unless the name was released or its thread died meanwhile.
    if (this.#directory.holds(entry) && this.#endpoints.has(entry.ep)) {
      this.#send(entry.ep, { kind: "add", entry, seq });
    }
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

  /** Another node's claim, from the KV watch or from that node's own notice. */
  #addRemote(entry: Entry): void {
    // Both paths bring each claim: the second is ignored, as is a watch lagging behind a
    // notice that the user already left.
    if (this.#directory.holds(entry) || this.#gone.has(entryId(entry))) return;
    // A local claim of the name is being decided; it loses, and this entry follows.
    if (!this.#directory.claim(entry)) return void this.#deferred.set(nameKey(entry.name), entry);
    this.#added(entry);
  }

  /** Another node's user left: from the KV watch (`final`) or from that node's notice. */
  #removeRemote(entry: Entry, final: boolean): void {
    const key = nameKey(entry.name);
    if (this.#deferred.get(key)?.ep === entry.ep) this.#deferred.delete(key);
    const released = this.#directory.release(entry);
    if (final) this.#gone.delete(entryId(entry));
    else if (released) this.#gone.add(entryId(entry));
    if (released) this.#removed([entry]);
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
  #toNode(record: Exclude<DatagramRecord, { kind: "control" }>, cluster: ClusterLink): void {
    if (record.kind === "room") return cluster.publishAll(datagram(encodeRoom(record.line)));
    const target = this.#directory.lookup(record.name);
    if (target === undefined || !isRemoteEndpointId(target.ep) || target.conn !== record.conn) {
      this.#log.debug("stale remote delivery dropped", { name: record.name });
      return;
    }
    const node = target.ep.slice(0, target.ep.indexOf("/"));
    cluster.publish(node, datagram(encodeDirect(record.conn, record.name, record.line)));
  }

  /** Hands a datagram from another node to this node's threads. */
  #fromNode(data: Uint8Array): void {
    try {
      for (const record of decodeDatagram(data)) {
        if (record.kind === "room") {
          const bytes = encodeRoom(record.line);
          for (const ep of this.#endpoints) this.#bus.send(ep, bytes);
        } else if (record.kind === "direct") {
          const target = this.#directory.lookup(record.name);
          if (target && this.#endpoints.has(target.ep) && target.conn === record.conn) {
            this.#bus.send(target.ep, encodeDirect(record.conn, record.name, record.line));
          }
        } else {
          this.#fromNodeControl(record.message);
        }
      }
    } catch (error: unknown) {
      if (!(error instanceof DatagramError)) throw error;
      this.#log.warning("malformed datagram from another node dropped", { error: String(error) });
    }
  }

  #fromNodeControl(message: ControlMessage): void {
    const remote = (entry: Entry) => isRemoteEndpointId(entry.ep) && !this.#endpoints.has(entry.ep);
    if (message.kind === "add" && remote(message.entry)) return this.#addRemote(message.entry);
    if (message.kind === "remove" && message.entries.every(remote)) {
      for (const entry of message.entries) this.#removeRemote(entry, false);
      return;
    }
    this.#log.warning("control record from another node dropped", { kind: message.kind });
  }

  /** Tells every thread that `entries` are gone; their names are free once all know. */
  #removed(entries: Entry[]): void {
    if (entries.length === 0) return;
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

  /** Closes the supervisor's endpoint, and leaves the cluster. */
  async close(): Promise<void> {
    this.#bus.close();
    await this.#cluster?.close();
  }
}

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
