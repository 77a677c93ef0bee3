/**
 * The {@linkcode Bus} on Unix datagram sockets: one {@linkcode Endpoint} in the runtime
 * directory, records decoded on receipt and handed over one by one.
 *
 * @module
 */
import type { Bus, BusHandlers } from "./bus.ts";
import { isRemoteEndpointId, SUPERVISOR_EP } from "./directory_messages.ts";
import { decodeDatagram } from "./wire.ts";
import { Endpoint } from "./endpoint.ts";
import { logger, RateLimitedWarnings } from "./log.ts";

/** Options of {@linkcode UnixBus}. */
export interface UnixBusOptions {
  /**
   * The node is in a cluster (cluster.ts): records for another node's endpoints, and a copy
   * of every {@linkcode Bus.sendAll}, go to the supervisor, which forwards them. Default false.
   */
  gateway?: boolean;
  /** Called for each malformed datagram dropped (at its first bad record). */
  onRejected?: () => void;
  /** Called for each chat record dropped at a full outbox. */
  onDropped?: () => void;
}

/** A bus endpoint bound in a runtime directory. */
export class UnixBus implements Bus {
  readonly id: string;
  readonly #endpoint: Endpoint;
  readonly #handlers: BusHandlers;
  readonly #warnings = new RateLimitedWarnings(logger("bus"));
  readonly #onRejected: () => void;
  #peers: readonly string[] = [];
  readonly #gateway: boolean;

  /**
   * Binds `dir/id.sock`.
   *
   * @throws {Deno.errors.AddrInUse} when the path is in use by a live socket.
   */
  constructor(dir: string, id: string, handlers: BusHandlers, options: UnixBusOptions = {}) {
    this.id = id;
    this.#gateway = options.gateway ?? false;
    this.#handlers = handlers;
    this.#onRejected = options.onRejected ?? (() => {});
    this.#endpoint = new Endpoint(dir, id, {
      onDatagram: (data) => this.#onDatagram(data),
      onGone: handlers.onGone,
      onDropped: options.onDropped,
    });
  }

  #onDatagram(data: Uint8Array): void {
    try {
      for (const record of decodeDatagram(data)) this.#handlers.onRecord(record);
    } catch (error: unknown) {
      this.#onRejected();
      // A flood of junk logs one line, then one line per interval with the count.
      this.#warnings.warn("malformed datagram dropped", { ep: this.id, error: String(error) });
    }
  }

  send(to: string, record: Uint8Array): void {
    this.#endpoint.send(this.#gateway && isRemoteEndpointId(to) ? SUPERVISOR_EP : to, record);
  }

  sendAll(record: Uint8Array): void {
    for (const ep of this.#peers) if (ep !== this.id) this.#endpoint.send(ep, record);
    if (this.#gateway) this.#endpoint.send(SUPERVISOR_EP, record);
  }

  setPeers(peers: readonly string[]): void {
    this.#peers = peers;
    const live = new Set(peers);
    for (const destination of [...this.#endpoint.destinations()]) {
      if (destination !== SUPERVISOR_EP && !live.has(destination)) {
        this.#endpoint.drop(destination);
      }
    }
  }

  flushed(to?: Iterable<string>): Promise<void> {
    return this.#endpoint.flushed(to);
  }

  close(): void {
    this.#warnings[Symbol.dispose]();
    this.#endpoint.close();
  }
}
