/**
 * A datagram endpoint in the runtime directory: one socket to receive on, and one outbox per
 * destination to send from.
 *
 * Deno allows one operation at a time on a datagram socket, and a send to a receiver whose
 * queue is full (`net.unix.max_dgram_qlen` datagrams) waits until it drains. So every
 * destination gets its own socket and queue: a slow receiver holds up only what is addressed
 * to it. Records pushed while a send is under way are packed together into the next datagram.
 *
 * @module
 */
import { closeQuietly } from "./_quietly.ts";
import { MAGIC, MAX_DATAGRAM_BYTES, RecordKind } from "./wire.ts";
import { logger } from "./log.ts";

/** The socket file of endpoint `id` in `dir`. */
export function socketPath(dir: string, id: string): string {
  return `${dir}/${id}.sock`;
}

/**
 * The most bytes queued for one destination. A destination that takes nothing for this long
 * is stuck (the watchdog will kill it); chat records pushed beyond are dropped, counted and
 * logged, so one stuck thread cannot grow its senders' memory without bound. Directory
 * (CONTROL) records are queued all the same: dropping one leaves a ghost user or a client
 * without its BYE. They are few (one per join or leave), and the watchdog bounds how long a
 * destination can stay stuck.
 */
export const MAX_OUTBOX_BYTES = 16 * 1024 * 1024;
/** At most one "outbox full" warning per destination this often. */
const DROP_LOG_INTERVAL_MS = 1000;

function isGone(error: unknown): boolean {
  return error instanceof Deno.errors.NotFound || error instanceof Deno.errors.ConnectionRefused;
}

/** Removes a file if it is there. */
export function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path);
  } catch {
    // Already gone.
  }
}

/**
 * Removes the socket files of every endpoint `belongs` picks, their outboxes' included
 * (`<ep>.sock`, `<ep>.to.<destination>.sock`). Used for endpoints whose thread or process died
 * without cleaning up.
 */
export function removeEndpointFiles(dir: string, belongs: (ep: string) => boolean): void {
  try {
    for (const file of Deno.readDirSync(dir)) {
      if (belongs(file.name.slice(0, file.name.indexOf(".")))) removeQuietly(`${dir}/${file.name}`);
    }
  } catch {
    // The directory is gone: nothing left to remove.
  }
}

/** Options of {@linkcode Endpoint}. */
export interface EndpointOptions {
  /** Called for every datagram received, with a copy the handler may keep parts of. */
  onDatagram: (data: Uint8Array) => void;
  /** Called when a destination's socket is gone (its thread or process ended). */
  onGone?: (destination: string) => void;
}

/** One endpoint: a receive socket plus outboxes. */
export class Endpoint {
  readonly id: string;
  readonly #dir: string;
  readonly #socket: Deno.DatagramConn;
  readonly #outboxes = new Map<string, Outbox>();
  readonly #options: EndpointOptions;
  #closed = false;
  readonly #log = logger("endpoint");

  /**
   * Binds `dir/id.sock`, removing a stale socket file of that name first.
   *
   * @throws {Deno.errors.AddrInUse} when the path is in use by a live socket.
   */
  constructor(dir: string, id: string, options: EndpointOptions) {
    this.id = id;
    this.#dir = dir;
    this.#options = options;
    const path = socketPath(dir, id);
    removeQuietly(path);
    this.#socket = Deno.listenDatagram({ transport: "unixpacket", path });
    this.#receive();
  }

  async #receive(): Promise<void> {
    // One buffer per endpoint: handlers copy what they keep.
    const buffer = new Uint8Array(MAX_DATAGRAM_BYTES);
    while (!this.#closed) {
      let data: Uint8Array;
      try {
        [data] = await this.#socket.receive(buffer);
      } catch (error: unknown) {
        if (!this.#closed) this.#log.error("receive failed", { ep: this.id, error });
        return;
      }
      try {
        // One copy per datagram, not per record: the records' views share it.
        this.#options.onDatagram(data.slice());
      } catch (error: unknown) {
        this.#log.error("datagram handler failed", { ep: this.id, error });
      }
    }
  }

  /** The outbox to `destination`, made on first use; undefined once the endpoint is closed. */
  outbox(destination: string): Outbox | undefined {
    if (this.#closed) return undefined;
    let outbox = this.#outboxes.get(destination);
    if (outbox === undefined) {
      const path = socketPath(this.#dir, `${this.id}.to.${destination}`);
      outbox = new Outbox(path, socketPath(this.#dir, destination), () => {
        this.#log.debug("destination gone", { ep: this.id, destination });
        this.drop(destination);
        this.#options.onGone?.(destination);
      });
      this.#outboxes.set(destination, outbox);
    }
    return outbox;
  }

  /** Queues a record for `destination`; refused once the endpoint is closed. */
  send(destination: string, record: Uint8Array): void {
    this.outbox(destination)?.push(record);
  }

  /** Forgets `destination`: its queue is dropped and its socket file removed. */
  drop(destination: string): void {
    const outbox = this.#outboxes.get(destination);
    if (outbox === undefined) return;
    this.#outboxes.delete(destination);
    outbox.close();
  }

  /** The destinations that have an outbox. */
  destinations(): IterableIterator<string> {
    return this.#outboxes.keys();
  }

  /**
   * Resolves once everything queued so far, to the destinations `to` (default: every one),
   * is sent or dropped.
   */
  flushed(to?: Iterable<string>): Promise<void> {
    const outboxes = to === undefined
      ? [...this.#outboxes.values()]
      : [...to].map((destination) => this.#outboxes.get(destination));
    return Promise.all(outboxes.map((outbox) => outbox?.flushed())).then(() => {});
  }

  /** Closes every socket and removes their files. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const destination of [...this.#outboxes.keys()]) this.drop(destination);
    closeQuietly(this.#socket);
    removeQuietly(socketPath(this.#dir, this.id));
  }
}

/**
 * A queue of records for one destination, sent as packed datagrams, one send at a time.
 */
export class Outbox {
  readonly #path: string;
  readonly #address: Deno.UnixAddr;
  readonly #onGone: () => void;
  #socket: Deno.DatagramConn | undefined;
  #queue: Uint8Array[] = [];
  #queuedBytes = 0;
  /** Chat records dropped because the destination was stuck. */
  #dropped = 0;
  #droppedLoggedAt = -Infinity;
  #pushed = 0;
  #sent = 0;
  #waiters: { upTo: number; resolve: () => void }[] = [];
  #running = false;
  #closed = false;

  constructor(path: string, destination: string, onGone: () => void) {
    this.#path = path;
    this.#address = { transport: "unixpacket", path: destination };
    this.#onGone = onGone;
  }

  /** Chat records dropped so far because the destination was stuck. */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * Queues one record; it leaves with the next datagram. Past {@linkcode MAX_OUTBOX_BYTES}
   * a chat record is dropped; a directory record never is.
   */
  push(record: Uint8Array): void {
    if (this.#closed) return;
    if (
      this.#queuedBytes + record.length > MAX_OUTBOX_BYTES && record[0] !== RecordKind.CONTROL
    ) return this.#drop();
    this.#queuedBytes += record.length;
    this.#queue.push(record);
    this.#pushed++;
    if (!this.#running) {
      this.#running = true;
      // A microtask: records pushed by the rest of this turn go in the same datagram.
      queueMicrotask(() => this.#run());
    }
  }

  #drop(): void {
    this.#dropped++;
    const now = performance.now();
    if (now - this.#droppedLoggedAt < DROP_LOG_INTERVAL_MS) return;
    this.#droppedLoggedAt = now;
    logger("endpoint").warning("destination stuck, outbox full: chat records dropped", {
      to: this.#address.path,
      dropped: this.#dropped,
    });
  }

  /** Resolves once every record pushed so far is sent, or dropped with a gone destination. */
  flushed(): Promise<void> {
    if (this.#closed || this.#sent >= this.#pushed) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ upTo: this.#pushed, resolve }));
  }

  async #run(): Promise<void> {
    while (this.#queue.length > 0 && !this.#closed) {
      const [datagram, count] = this.#pack();
      try {
        this.#socket ??= this.#bind();
        await this.#socket.send(datagram, this.#address);
      } catch (error: unknown) {
        if (this.#closed) break;
        if (isGone(error)) {
          this.close();
          this.#onGone();
          break;
        }
        logger("endpoint").error("send failed, datagram dropped", {
          to: this.#address.path,
          error,
        });
      }
      this.#sent += count;
      this.#wake();
    }
    this.#running = false;
  }

  #bind(): Deno.DatagramConn {
    removeQuietly(this.#path);
    return Deno.listenDatagram({ transport: "unixpacket", path: this.#path });
  }

  /** Takes as many queued records as fit into one datagram and copies them into it. */
  #pack(): [Uint8Array, number] {
    let size = 1;
    let count = 0;
    for (const record of this.#queue) {
      if (count > 0 && size + record.length > MAX_DATAGRAM_BYTES) break;
      size += record.length;
      count++;
    }
    const datagram = new Uint8Array(size);
    datagram[0] = MAGIC;
    this.#queuedBytes -= size - 1;
    let offset = 1;
    for (let i = 0; i < count; i++) {
      const record = this.#queue[i]!;
      datagram.set(record, offset);
      offset += record.length;
    }
    this.#queue = count === this.#queue.length ? [] : this.#queue.slice(count);
    return [datagram, count];
  }

  #wake(): void {
    if (this.#waiters.length === 0) return;
    const ready = this.#waiters.filter((waiter) => waiter.upTo <= this.#sent);
    if (ready.length === 0) return;
    this.#waiters = this.#waiters.filter((waiter) => waiter.upTo > this.#sent);
    for (const waiter of ready) waiter.resolve();
  }

  /** Drops the queue, wakes every waiter, closes the socket and removes its file. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue = [];
    this.#queuedBytes = 0;
    for (const waiter of this.#waiters) waiter.resolve();
    this.#waiters = [];
    if (this.#socket !== undefined) {
      // A send under way fails and ends the run.
      closeQuietly(this.#socket);
      removeQuietly(this.#path);
    }
  }
}
