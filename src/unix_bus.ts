/**
 * The {@linkcode Bus} on Unix datagram sockets: one {@linkcode Endpoint} in the runtime
 * directory, records decoded on receipt and handed over one by one.
 *
 * @module
 */
import type { Bus, BusHandlers } from "./bus.ts";
import { SUPERVISOR_EP } from "./directory_messages.ts";
import { decodeDatagram } from "./wire.ts";
import { Endpoint } from "./endpoint.ts";
import { logger, RateLimitedWarnings } from "./log.ts";

/** A bus endpoint bound in a runtime directory. */
export class UnixBus implements Bus {
  readonly id: string;
  readonly #endpoint: Endpoint;
  readonly #handlers: BusHandlers;
  readonly #warnings = new RateLimitedWarnings(logger("bus"));
  readonly #onRejected: () => void;
  #peers: readonly string[] = [];

  /**
   * Binds `dir/id.sock`. `counts.onRejected` is called for each malformed datagram dropped
   * (the rest of a datagram is dropped at its first bad record), `counts.onDropped` for each
   * chat record dropped at a full outbox.
   *
   * @throws {Deno.errors.AddrInUse} when the path is in use by a live socket.
   */
  constructor(
    dir: string,
    id: string,
    handlers: BusHandlers,
    counts: { onRejected?: () => void; onDropped?: () => void } = {},
  ) {
    this.id = id;
    this.#handlers = handlers;
    this.#onRejected = counts.onRejected ?? (() => {});
    this.#endpoint = new Endpoint(dir, id, {
      onDatagram: (data) => this.#onDatagram(data),
      onGone: handlers.onGone,
      onDropped: counts.onDropped,
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
    this.#endpoint.send(to, record);
  }

  sendAll(record: Uint8Array): void {
    for (const ep of this.#peers) if (ep !== this.id) this.#endpoint.send(ep, record);
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
