/**
 * A thread: the Web Worker that serves clients. Each thread of each process binds the TCP
 * port with `reusePort`, so the kernel spreads connections over all of them, and owns a
 * datagram endpoint through which the other threads and the supervisor reach its clients.
 *
 * Lifecycle: `init` from the process → bind the endpoint → `hello` to the supervisor → the
 * directory snapshot arrives → listen on TCP → `listening` to the process. Later `drain`
 * (recycling) or `shutdown` end it; it posts `done` when its last client is gone.
 *
 * This module is a Worker entry: it is started with
 * `new Worker(new URL("./thread.ts", import.meta.url), { type: "module" })`.
 *
 * @module
 */
import type { Config } from "./config.ts";
import type { FromThread, ToThread } from "./control.ts";
import { FlushRounds } from "./_flush_rounds.ts";
import { OutputChunks } from "./_output_chunks.ts";
import {
  Connection,
  type ConnectionHost,
  type ConnectionOptions,
  type ConnectionState,
} from "./connection.ts";
import { Counters } from "./counters.ts";
import {
  type ControlMessage,
  type DatagramRecord,
  decodeDatagram,
  encodeControl,
  encodeDirect,
  encodeRoom,
  type Entry,
  SUPERVISOR_EP,
} from "./datagram.ts";
import { Replica } from "./directory.ts";
import { Endpoint } from "./endpoint.ts";
import { type Logger, logger, setupLogging } from "./log.ts";
import { ErrorCode, Reply } from "./protocol.ts";

/** How long a draining listener waits for one more connection before it closes. */
const DRAIN_IDLE_MS = 50;
/** The longest a listener drains under steady arrivals. */
const DRAIN_MAX_MS = 2000;

const encoder = new TextEncoder();

/** Options of {@linkcode Thread}. */
export interface ThreadOptions {
  config: Config;
  pId: number;
  tId: number;
  /** This thread's endpoint id. */
  ep: string;
  counters: Counters;
  /** Sends a message to the process. */
  post: (message: FromThread) => void;
}

/** One thread's server. */
export class Thread implements ConnectionHost {
  readonly #config: Config;
  readonly #pId: number;
  readonly #tId: number;
  readonly #ep: string;
  readonly #counters: Counters;
  readonly #post: (message: FromThread) => void;
  readonly #log: Logger;
  readonly #replica = new Replica();
  readonly #connections = new Map<number, Connection>();
  /** Connections that are joined or joining: the ones room traffic and notices go to. */
  readonly #members = new Set<Connection>();
  readonly #rounds = new FlushRounds<Connection>();
  /** One settings object for every connection: each holds a reference, not a copy. */
  readonly #connectionOptions: ConnectionOptions;
  /** Broadcast lines, copied once for all members. */
  readonly #chunks = new OutputChunks();
  #endpoint: Endpoint | undefined;
  #listener: Deno.TcpListener | undefined;
  #nextId = 1;
  #phase: "starting" | "serving" | "draining" | "stopping" = "starting";
  #done = false;
  /** True while the accept loop runs. */
  #accepting = false;
  /** Resolved to get the accept loop to look at the phase again. */
  readonly #wakeup = Promise.withResolvers<"wake">();

  constructor(options: ThreadOptions) {
    this.#config = options.config;
    this.#pId = options.pId;
    this.#tId = options.tId;
    this.#ep = options.ep;
    this.#counters = options.counters;
    this.#post = options.post;
    this.#log = logger("thread");
    const config = options.config;
    this.#connectionOptions = {
      maxLineBytes: config.maxLineBytes,
      joinTimeoutMs: config.joinTimeout * 1000,
      rate: config.rate,
      burst: config.burst,
      maxSendQueue: config.maxSendQueue,
    };
  }

  /** Binds the endpoint and introduces it to the supervisor; listening follows the snapshot. */
  start(): void {
    this.#endpoint = new Endpoint(this.#config.runtimeDir, this.#ep, {
      onDatagram: (data) => this.#onDatagram(data),
    });
    this.#toSupervisor({ kind: "hello", ep: this.#ep });
  }

  #toSupervisor(message: ControlMessage): void {
    this.#endpoint!.send(SUPERVISOR_EP, encodeControl(message));
  }

  // Datagrams ---------------------------------------------------------------------------

  #onDatagram(data: Uint8Array): void {
    try {
      for (const record of decodeDatagram(data)) this.#onRecord(record);
    } catch (error: unknown) {
      this.#log.warning("malformed datagram dropped", { error: String(error) });
    }
  }

  #onRecord(record: DatagramRecord): void {
    switch (record.kind) {
      case "direct": {
        const connection = this.#connections.get(record.conn);
        // The connection id and name must still match: the user may have left, and the
        // connection id never serves anyone else.
        if (connection?.owns(record.name)) connection.deliver(record.line);
        else this.#log.debug("stale delivery dropped", { conn: record.conn, name: record.name });
        return;
      }
      case "room":
        this.#toMembers(record.line, undefined);
        return;
      case "control":
        this.#onControl(record.message);
        return;
    }
  }

  #onControl(message: ControlMessage): void {
    switch (message.kind) {
      case "snapshot":
        this.#replica.load(message.entries, message.endpoints);
        if (this.#phase === "starting") this.#listen();
        return;
      case "add":
        return this.#added(message.entry, message.seq);
      case "remove":
        for (const entry of message.entries) this.#removed(entry, message.seq);
        return;
      case "taken": {
        const connection = this.#owner(message.entry);
        if (connection?.state !== "joining") return;
        this.#members.delete(connection);
        connection.refused(Reply.error(ErrorCode.NAME_TAKEN, message.entry.name));
        return;
      }
      case "endpoints": {
        this.#replica.setEndpoints(message.endpoints);
        const live = new Set(message.endpoints);
        for (const destination of [...this.#endpoint!.destinations()]) {
          if (destination !== SUPERVISOR_EP && !live.has(destination)) {
            this.#endpoint!.drop(destination);
          }
        }
        return;
      }
      default:
        this.#log.warning("control message not meant for a thread dropped", {
          kind: message.kind,
        });
    }
  }

  /** The local connection `entry` names, if it still claims that name. */
  #owner(entry: Entry): Connection | undefined {
    if (entry.ep !== this.#ep) return undefined;
    const connection = this.#connections.get(entry.conn);
    return connection?.claimedName === entry.name ? connection : undefined;
  }

  #added(entry: Entry, seq: number): void {
    this.#replica.add(entry);
    const owner = this.#owner(entry);
    this.#notify(encoder.encode(Reply.joinedNotice(entry.name)), seq, owner);
    if (entry.ep !== this.#ep) return;
    if (owner?.state === "joining") owner.joined(seq);
    // The claimant is gone: hand the name straight back.
    else if (owner === undefined) this.#toSupervisor({ kind: "release", entry });
  }

  #removed(entry: Entry, seq: number): void {
    if (this.#replica.remove(entry)) {
      this.#notify(encoder.encode(Reply.leftNotice(entry.name)), seq, undefined);
    }
    const owner = this.#owner(entry);
    if (owner?.state === "leaving") owner.left();
  }

  /** Delivers a message to every member but `except` (held for those still joining). */
  #toMembers(line: Uint8Array, except: Connection | undefined): void {
    this.#notify(line, Infinity, except);
  }

  /**
   * Sends the `JOINED`/`LEFT` notice of directory change `seq` (a message: seq Infinity) to
   * every member but `except`.
   */
  #notify(line: Uint8Array, seq: number, except: Connection | undefined): void {
    const chunks = this.#chunks;
    chunks.append(line);
    for (const member of this.#members) if (member !== except) member.broadcast(chunks, seq);
  }

  // TCP ----------------------------------------------------------------------------------

  #listen(): void {
    const { host, port } = this.#config;
    this.#listener = Deno.listen({ hostname: host, port, reusePort: true, transport: "tcp" });
    this.#phase = "serving";
    this.#log.info("thread listening", { ep: this.#ep, port });
    this.#post({ kind: "listening" });
    this.#accepting = true;
    this.#acceptLoop(this.#listener);
  }

  async #acceptLoop(listener: Deno.TcpListener): Promise<void> {
    let accepting: Promise<Deno.TcpConn> | undefined;
    let drainStarted = 0;
    for (;;) {
      // One accept stays pending across wake-ups: Deno allows one at a time per listener.
      accepting ??= listener.accept();
      let tcp: Deno.TcpConn | "wake" | undefined;
      try {
        if (this.#phase === "draining") {
          // Linux resets the connections still queued on a SO_REUSEPORT listener when it
          // closes, so keep accepting until arrivals pause (or DRAIN_MAX_MS passes).
          drainStarted ||= performance.now();
          const left = DRAIN_MAX_MS - (performance.now() - drainStarted);
          tcp = await raceTimeout(accepting, Math.max(0, Math.min(DRAIN_IDLE_MS, left)));
          if (tcp === undefined) {
            this.#closeListener();
            this.#log.info("thread stopped accepting", { ep: this.#ep });
            // An accept that completed in the meantime is served, not dropped, and before
            // this thread can count itself done.
            tcp = await accepting.catch(() => undefined);
            if (tcp !== undefined) this.#accept(tcp);
            break;
          }
        } else {
          tcp = await Promise.race([accepting, this.#wakeup.promise]);
          if (tcp === "wake") continue;
        }
      } catch {
        break; // The listener was closed.
      }
      accepting = undefined;
      this.#accept(tcp);
    }
    this.#accepting = false;
    this.#maybeDone();
  }

  #accept(tcp: Deno.TcpConn): void {
    if (this.#phase === "stopping") {
      // Accepted as the listener closed: this client gets its BYE too.
      const bye = encoder.encode(Reply.shuttingDown());
      tcp.write(bye).catch(() => {}).finally(() => closeQuietly(tcp));
      return;
    }
    if (this.#connections.size >= this.#config.maxClientsPerThread) {
      const full = encoder.encode(Reply.error(ErrorCode.SERVER_FULL));
      tcp.write(full).catch(() => {}).finally(() => closeQuietly(tcp));
      return;
    }
    try {
      tcp.setNoDelay(true);
      tcp.setKeepAlive(true);
    } catch {
      // The peer is already gone; serve() finds out.
    }
    const connection = new Connection(this.#nextId++, tcp, this, this.#connectionOptions);
    this.#connections.set(connection.id, connection);
    const accepted = this.#counters.accepted();
    if (accepted === this.#config.clientsPerProcess) this.#post({ kind: "quota" });
    connection.serve(Reply.hello(this.#pId, this.#tId));
  }

  #closeListener(): void {
    try {
      this.#listener?.close();
    } catch {
      // Already closed.
    }
  }

  // ConnectionHost ----------------------------------------------------------------------

  claim(connection: Connection, name: string): void {
    this.#members.add(connection);
    this.#toSupervisor({ kind: "claim", entry: { name, ep: this.#ep, conn: connection.id } });
  }

  release(connection: Connection): void {
    this.#members.delete(connection);
    const entry = { name: connection.claimedName!, ep: this.#ep, conn: connection.id };
    // Release only after everything this client sent is on its way, so that everyone sees
    // its last messages before its LEFT.
    const endpoint = this.#endpoint!;
    endpoint.flushed().then(() => this.#toSupervisor({ kind: "release", entry }));
  }

  direct(from: Connection, to: string, text: string): boolean {
    const entry = this.#replica.lookup(to);
    if (entry === undefined) return false;
    const line = encoder.encode(Reply.from(from.name!, text));
    if (entry.ep === this.#ep) this.#owner(entry)?.deliver(line);
    else this.#endpoint!.send(entry.ep, encodeDirect(entry.conn, entry.name, line));
    return true;
  }

  room(from: Connection, text: string): void {
    const line = encoder.encode(Reply.all(from.name!, text));
    this.#toMembers(line, from);
    const record = encodeRoom(line);
    for (const ep of this.#replica.endpoints) {
      if (ep !== this.#ep) this.#endpoint!.send(ep, record);
    }
  }

  users(): readonly string[] {
    return this.#replica.names();
  }

  failed(connection: Connection, error: unknown): void {
    this.#log.error("client handler failed, client closed", { conn: connection.id, error });
  }

  slowConsumer(connection: Connection): void {
    this.#log.warning("slow consumer dropped", {
      conn: connection.id,
      name: connection.claimedName,
      queued: connection.queuedBytes,
    });
  }

  wantsFlush(connection: Connection, paced: boolean): void {
    this.#rounds.add(connection, paced);
  }

  fault(_connection: Connection, what: string): boolean {
    if (!this.#config.faults) return false;
    this.#log.warning("injecting fault", { what });
    switch (what) {
      case "throw":
        throw new Error("injected fault: handler exception");
      case "thread":
        setTimeout(() => {
          throw new Error("injected fault: thread crash");
        });
        return true;
      case "hang":
        for (;;) {
          // An endless loop: this thread stops answering its process's heartbeat.
        }
      case "exit":
      case "hang-process":
        this.#post({ kind: "fault", what: what === "exit" ? "exit" : "hang" });
        return true;
      default:
        return false;
    }
  }

  closed(connection: Connection, previous: ConnectionState): void {
    this.#connections.delete(connection.id);
    this.#counters.closed();
    if (previous === "joined" || previous === "joining") this.release(connection);
    this.#maybeDone();
  }

  // Lifecycle -----------------------------------------------------------------------------

  /** Stops accepting once arrivals pause, serves the open clients to the end, then is done. */
  drain(): void {
    if (this.#phase !== "serving") return;
    this.#phase = "draining";
    this.#wakeup.resolve("wake");
    this.#log.info("thread draining", { ep: this.#ep, clients: this.#connections.size });
  }

  /** Closes the listener, says `BYE shutting down` to every client and closes them. */
  shutdown(): void {
    this.#phase = "stopping";
    this.#closeListener();
    const bye = encoder.encode(Reply.shuttingDown());
    for (const connection of this.#connections.values()) {
      connection.write(bye);
      connection.end();
    }
    this.#maybeDone();
  }

  #maybeDone(): void {
    if (this.#done || this.#connections.size > 0) return;
    if (this.#phase === "stopping" || (this.#phase === "draining" && !this.#accepting)) {
      this.#done = true;
      this.#endpoint?.close();
      this.#post({ kind: "done" });
    }
  }
}

function closeQuietly(closer: { close(): void }): void {
  try {
    closer.close();
  } catch {
    // Already closed.
  }
}

function raceTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Worker entry ---------------------------------------------------------------------------

interface WorkerScope {
  postMessage(message: FromThread): void;
  onmessage: ((event: MessageEvent<ToThread>) => void) | null;
}

if (typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== "undefined") {
  const scope = self as unknown as WorkerScope;
  let thread: Thread | undefined;
  scope.onmessage = (event) => {
    const message = event.data;
    switch (message.kind) {
      case "init":
        setupLogging(message.config.logLevel, {
          p_id: message.pId,
          t_id: message.tId,
          pid: Deno.pid,
        });
        thread = new Thread({
          config: message.config,
          pId: message.pId,
          tId: message.tId,
          ep: message.ep,
          counters: new Counters(message.counters),
          post: (reply) => scope.postMessage(reply),
        });
        thread.start();
        return;
      case "drain":
        return thread?.drain();
      case "ping":
        return scope.postMessage({ kind: "pong" });
      case "shutdown":
        return thread?.shutdown();
    }
  };
}
