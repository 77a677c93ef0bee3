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
import { type ControlMessage, type Entry, SUPERVISOR_EP } from "./directory_messages.ts";
import { type DatagramRecord, encodeControl } from "./wire.ts";
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

  #onRecord(record: DatagramRecord): void {
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
    const seq = ++this.#seq;
    this.#broadcast({ kind: "add", entry, seq }, entry.ep);
    const others = [...this.#endpoints].filter((ep) => ep !== entry.ep);
    await this.#flushed(others);
    // The owner's confirmation, unless the name was released or its thread died meanwhile.
    if (this.#directory.holds(entry) && this.#endpoints.has(entry.ep)) {
      this.#send(entry.ep, { kind: "add", entry, seq });
    }
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

  /** Closes the supervisor's endpoint. */
  close(): void {
    this.#bus.close();
  }
}
