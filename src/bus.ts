/**
 * The bus: how a thread reaches the other threads and the supervisor, and they reach it.
 * It carries wire records (`wire.ts`) between endpoints; `unix_bus.ts` implements it
 * on Unix datagram sockets in the runtime directory.
 *
 * Endpoint ids are opaque to the bus: a thread's is `p-t-instance-restart`, the
 * supervisor's `supervisor`. A bus that links nodes (a message broker) can give them a
 * node part, such as `node2/1-0-7-0`, and route on it; the core only compares and stores
 * them.
 *
 * Delivery: records to one destination arrive in the order sent. A destination that takes
 * nothing for long (a stuck thread, which its watchdog then kills) may lose chat records
 * (`DIRECT`, `ROOM`), counted and logged; directory records (`CONTROL`) are never dropped
 * while the destination lives, since losing one leaves a ghost user or a client without
 * its `BYE`.
 *
 * @module
 */
import type { DatagramRecord } from "./wire.ts";

/** What a bus does with what it receives. */
export interface BusHandlers {
  /** Every record received, in order. Views in it live only as long as the call. */
  onRecord(record: DatagramRecord): void;
  /** A destination's endpoint is gone (its thread or process ended). */
  onGone?(destination: string): void;
}

/** A thread's or the supervisor's link to the others. */
export interface Bus {
  /** This endpoint's id. */
  readonly id: string;
  /** Queues `record` for endpoint `to`. Ignored once the bus is closed. */
  send(to: string, record: Uint8Array): void;
  /** Queues `record` for every peer but this endpoint (see {@linkcode setPeers}). */
  sendAll(record: Uint8Array): void;
  /**
   * The live thread endpoints: {@linkcode sendAll} reaches them, and what is still queued
   * for an endpoint no longer listed is dropped.
   */
  setPeers(peers: readonly string[]): void;
  /**
   * Resolves once everything queued so far (to the destinations `to`, or to all) is sent,
   * or dropped with a destination that is gone.
   */
  flushed(to?: Iterable<string>): Promise<void>;
  /** Closes; later sends are refused. */
  close(): void;
}
