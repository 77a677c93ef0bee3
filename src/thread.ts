/**
 * A thread: the Web Worker that serves clients. It wires the layers together (a listener
 * of TCP transports, a session per client, the room, the directory replica, the bus) and
 * runs the thread's phases. Each thread of each process binds the TCP port with
 * `reusePort`, so the kernel spreads connections over all of them, and owns a bus endpoint
 * through which the other threads and the supervisor reach its clients.
 *
 * Lifecycle: `init` from the process → bind the bus endpoint → `hello` to the supervisor →
 * the directory snapshot arrives → listen on TCP → `listening` to the process. Later `drain`
 * (recycling) or `shutdown` end it; it posts `done` when its last client is gone and its
 * last directory record is sent.
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
import type { OutputQueue } from "./_output_queue.ts";
import type { Bus, BusHandlers } from "./bus.ts";
import type { Clock } from "./_clock.ts";
import { Counters, M, ThreadMetrics } from "./counters.ts";
import { processCapacity } from "./capacity.ts";
import { type ControlMessage, type Entry, SUPERVISOR_EP } from "./directory_messages.ts";
import { type DatagramRecord, encodeControl, encodeDirect, encodeRoom } from "./wire.ts";
import { Replica } from "./directory.ts";
import { type Logger, logger, RateLimitedWarnings, setupLogging } from "./log.ts";
import { ErrorCode, Reply, ROOM } from "./protocol.ts";
import type { HistoryLine } from "./history.ts";
import { JoinHistory } from "./_join_history.ts";
import { NamedRooms } from "./named_rooms.ts";
import { Room } from "./room.ts";
import { RoomTable } from "./room_table.ts";
import { Session, type SessionHost, type SessionOptions, type SessionState } from "./session.ts";
import type { TlsKeyPair } from "./tcp_transport.ts";
import type { Transport } from "./transport.ts";
import {
  type AcceptorRequest,
  defaultAcceptors,
  type MadeAcceptor,
  ThreadListeners,
} from "./_thread_listeners.ts";
import { UnixBus } from "./unix_bus.ts";

const encoder = new TextEncoder();

/** Options of {@linkcode Thread}. */
export interface ThreadOptions {
  config: Config;
  pId: number;
  tId: number;
  /** This thread's endpoint id. */
  ep: string;
  counters: Counters;
  /** This thread's metrics row (counters.ts); default a private one. */
  metrics?: Float64Array;
  /** Sends a message to the process. */
  post: (message: FromThread) => void;
  /** Makes the bus endpoint. Default: a {@linkcode UnixBus} in the runtime directory. */
  bus?: (handlers: BusHandlers) => Bus;
  /**
   * Makes the acceptors once the directory is in, with `tls` (the certificate of a SIGHUP
   * reload) or the files' own, and says which speak TLS. Default:
   * {@linkcode defaultAcceptors}. With `onlyTls`, just the TLS ones (a reload).
   */
  acceptors?: (options: AcceptorRequest) => MadeAcceptor[];
  /** Default {@linkcode SYSTEM_CLOCK}. */
  clock?: Clock;
}

/** One thread's server. */
export class Thread implements SessionHost {
  readonly #config: Config;
  readonly #pId: number;
  readonly #tId: number;
  readonly #ep: string;
  readonly #counters: Counters;
  readonly #metrics: Float64Array;
  /** Where the thread's broadcast lines are encoded, shared by every queue (`_output_chunks.ts`). */
  readonly #chunks = new OutputChunks();
  /**
   * Where lines for one client (replies, direct messages) are encoded. Kept apart from the
   * broadcast lines so that these stay one after another in their chunk: then a member's
   * queue grows one span over a whole join storm's notices instead of holding a span per
   * notice (each the start of a new span when a reply lay between them), which under a slow
   * reader outlived the young generation and filled the old one.
   */
  readonly #replyChunks = new OutputChunks();
  /** Clients this process may hold: its share of --max-clients (resolved by the supervisor). */
  readonly #processCap: number;
  readonly #post: (message: FromThread) => void;
  readonly #makeBus: (handlers: BusHandlers) => Bus;
  readonly #log: Logger;
  /** SERVER_FULL and slow consumers come in floods: one line per interval with a count. */
  readonly #warnings: RateLimitedWarnings;
  readonly #replica = new Replica();
  readonly #roomTable = new RoomTable();
  /** Lobby history lines for joining sessions, until their confirmation. */
  readonly #lobbyHistory: JoinHistory;
  readonly #sessions = new Map<number, Session>();
  readonly #rounds = new FlushRounds<OutputQueue>();
  /** One settings object for every session: each holds a reference, not a copy. */
  readonly #sessionOptions: SessionOptions;
  #bus: Bus | undefined;
  #room: Room<Session> | undefined;
  #namedRooms: NamedRooms | undefined;
  readonly #listeners: ThreadListeners;
  #nextId = 1;
  #phase: "starting" | "serving" | "draining" | "stopping" = "starting";
  /** Releases waiting for the bus to flush: the thread is not done before they are sent. */
  #releasing = 0;
  #done = false;

  constructor(options: ThreadOptions) {
    this.#config = options.config;
    this.#pId = options.pId;
    this.#tId = options.tId;
    this.#ep = options.ep;
    this.#counters = options.counters;
    this.#metrics = options.metrics ?? new ThreadMetrics(1).row(0);
    this.#processCap = processCapacity(options.config.maxClients, options.config.processes);
    this.#post = options.post;
    this.#log = logger("thread");
    this.#warnings = new RateLimitedWarnings(this.#log);
    const config = options.config;
    this.#makeBus = options.bus ??
      ((handlers) =>
        new UnixBus(config.runtimeDir, options.ep, handlers, {
          gateway: config.cluster.length > 0,
          onRejected: () => {
            options.counters.rejected();
            this.#metrics[M.datagrams_rejected]! += 1;
          },
          onDropped: () => this.#metrics[M.records_dropped]! += 1,
        }));
    this.#listeners = new ThreadListeners({
      acceptors: options.acceptors ??
        ((request) => defaultAcceptors(config, request.tls, request.onlyTls)),
      onAccept: (transport) => this.#accept(transport),
      // EMFILE: the connection waits in the kernel's queue until a descriptor is free.
      onAcceptFailed: (error) =>
        this.#warnings.warn("accept failed, retrying", { error: String(error) }),
      onStopped: () => this.#maybeDone(),
      log: this.#log,
      ep: options.ep,
      clock: options.clock,
    });
    this.#lobbyHistory = new JoinHistory(config.history > 0);
    this.#sessionOptions = {
      joinTimeoutMs: config.joinTimeout * 1000,
      rate: config.rate,
      burst: config.burst,
      queue: { maxBytes: config.maxSendQueue, clock: options.clock },
      clock: options.clock,
      metrics: this.#metrics,
      chunks: this.#replyChunks,
    };
  }

  /** Binds the bus endpoint and introduces it to the supervisor; listening follows the snapshot. */
  start(): void {
    const bus = this.#makeBus({ onRecord: (record) => this.#onRecord(record) });
    this.#bus = bus;
    const chunks = this.#chunks;
    // With history on, the supervisor keeps a copy of every room message (history.ts). On a
    // cluster node the bus already sends it one with every sendAll (unix_bus.ts, gateway).
    this.#room = this.#config.history > 0 && this.#config.cluster.length === 0
      ? new Room((line) => {
        const record = encodeRoom(line);
        bus.sendAll(record);
        bus.send(SUPERVISOR_EP, record);
      }, chunks)
      : new Room((line) => bus.sendAll(encodeRoom(line)), chunks);
    this.#namedRooms = new NamedRooms({
      ep: this.#ep,
      bus,
      table: this.#roomTable,
      toSupervisor: (message) => this.#toSupervisor(message),
      maxRoomsPerUser: this.#config.maxRoomsPerUser,
      history: this.#config.history > 0,
      chunks,
    });
    this.#toSupervisor({ kind: "hello", ep: this.#ep });
  }

  #toSupervisor(message: ControlMessage): void {
    this.#bus!.send(SUPERVISOR_EP, encodeControl(message));
  }

  // Bus ------------------------------------------------------------------------------------

  #onRecord(record: DatagramRecord): void {
    switch (record.kind) {
      case "direct": {
        const session = this.#sessions.get(record.conn);
        // The session id and name must still match: the user may have left, and the
        // session id never serves anyone else.
        if (session?.owns(record.name)) session.deliver(record.line);
        else this.#log.debug("stale delivery dropped", { conn: record.conn, name: record.name });
        return;
      }
      case "room":
        this.#room!.deliver(record.line);
        return;
      case "named":
        // Lets a test count which threads a room's traffic reaches (tests/rooms_test.ts).
        this.#log.trace("named room record received");
        this.#namedRooms!.deliver(record.room, record.line);
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
        this.#roomTable.load(message.rooms);
        this.#bus!.setPeers(message.endpoints);
        if (this.#phase === "starting") this.#listen();
        return;
      case "add":
        return this.#added(message.entry, message.seq);
      case "remove":
        for (const entry of message.entries) this.#removed(entry, message.seq);
        return;
      case "taken":
      case "unavailable": {
        const session = this.#owner(message.entry);
        if (session?.state !== "joining") return;
        this.#lobbyHistory.drop(session.id);
        this.#room!.delete(session);
        const code = message.kind === "taken"
          ? ErrorCode.NAME_TAKEN
          : ErrorCode.CLUSTER_UNAVAILABLE;
        session.refused(Reply.error(code, message.entry.name));
        return;
      }
      case "lost": {
        const session = this.#owner(message.entry);
        if (session?.state !== "joining" && session?.state !== "joined") return;
        // Out of the lobby first: the `LEFT` of its name that follows is not for it.
        this.#room!.delete(session);
        const line = Reply.error(ErrorCode.NAME_LOST, message.entry.name);
        if (session.state === "joining") {
          // Lost before its confirmation: refused as any claim, the client may try another.
          this.#lobbyHistory.drop(session.id);
          return session.refused(line);
        }
        session.reply(line);
        session.end();
        return;
      }
      case "undelivered":
        this.#owner(message.entry)?.reply(Reply.error(ErrorCode.CLUSTER_UNAVAILABLE, message.to));
        return;
      case "entered":
        return this.#namedRooms!.entered(
          message.room,
          message.entry,
          message.seq,
          this.#owner(message.entry),
        );
      case "parted":
        return this.#namedRooms!.parted(message.room, message.entry, message.seq);
      case "history":
        return this.#history(message.room, message.entry, message.lines);
      case "roomsFull":
        return this.#namedRooms!.roomsFull(message.room, this.#owner(message.entry));
      case "endpoints":
        this.#replica.setEndpoints(message.endpoints);
        this.#bus!.setPeers(message.endpoints);
        return;
      default:
        this.#log.warning("control message not meant for a thread dropped", {
          kind: message.kind,
        });
    }
  }

  /** The local session `entry` names, if it still claims that name. */
  #owner(entry: Entry): Session | undefined {
    if (entry.ep !== this.#ep) return undefined;
    const session = this.#sessions.get(entry.conn);
    return session?.claimedName === entry.name ? session : undefined;
  }

  /** History for a local user, ahead of its confirmation. */
  #history(room: string, entry: Entry, lines: HistoryLine[]): void {
    const owner = this.#owner(entry);
    if (owner === undefined) return;
    if (room !== ROOM) return this.#namedRooms!.history(room, owner, lines);
    if (owner.state !== "joining") return;
    this.#lobbyHistory.hold(owner.id, lines);
  }

  #added(entry: Entry, seq: number): void {
    this.#replica.add(entry);
    const owner = this.#owner(entry);
    this.#room!.joined(entry.name, seq, owner);
    if (entry.ep !== this.#ep) return;
    if (owner?.state === "joining") {
      this.#log.debug("client joined", { conn: entry.conn, name: entry.name, peer: owner.peer });
      owner.joined(seq, this.#lobbyHistory.take(owner.id));
    } // The claimant is gone: hand the name straight back.
    else if (owner === undefined) this.#toSupervisor({ kind: "release", entry });
  }

  #removed(entry: Entry, seq: number): void {
    // `LEFT #room name` in each of its rooms comes before the lobby's `LEFT name`.
    this.#namedRooms!.removed(entry, seq);
    if (this.#replica.remove(entry)) this.#room!.left(entry.name, seq);
    const owner = this.#owner(entry);
    if (owner?.state === "leaving") owner.left();
  }

  // Clients ----------------------------------------------------------------------------------

  #listen(): void {
    this.#listeners.listen();
    this.#phase = "serving";
    this.#log.debug("thread listening", { ep: this.#ep, port: this.#config.port });
    this.#post({ kind: "listening" });
  }

  /**
   * SIGHUP's new certificate: new TLS listeners with it, then the old ones drain and close
   * (`_thread_listeners.ts`). Connected clients stay. When the new listeners cannot be made,
   * the old ones stay.
   */
  reloadTls(tls: TlsKeyPair): void {
    if (this.#phase !== "serving") return;
    this.#listeners.reloadTls(tls);
  }

  #accept(transport: Transport): void {
    // Accepted as the listener closed: this client gets its BYE too.
    if (this.#phase === "stopping") {
      this.#metrics[M.refused_shutting_down]! += 1;
      return refuse(transport, Reply.shuttingDown());
    }
    const accepted = this.#sessions.size < this.#config.maxClientsPerThread
      ? this.#counters.tryAccept(this.#processCap)
      : 0;
    if (accepted === 0) {
      this.#metrics[M.refused_server_full]! += 1;
      this.#warnings.warn("client refused: server full", {
        peer: transport.peer,
        clients: this.#sessions.size,
        process_clients: this.#counters.open,
        process_cap: this.#processCap,
      });
      return refuse(transport, Reply.error(ErrorCode.SERVER_FULL));
    }
    const session = new Session(this.#nextId++, transport, this, this.#sessionOptions);
    this.#sessions.set(session.id, session);
    this.#metrics[M.accepted]! += 1;
    this.#log.debug("client connected", { conn: session.id, peer: transport.peer });
    if (accepted === this.#config.clientsPerProcess) this.#post({ kind: "quota" });
    session.serve(Reply.hello(this.#pId, this.#tId));
  }

  // SessionHost ----------------------------------------------------------------------------

  claim(session: Session, name: string): void {
    this.#room!.add(session);
    this.#toSupervisor({ kind: "claim", entry: { name, ep: this.#ep, conn: session.id } });
  }

  release(session: Session): void {
    this.#room!.delete(session);
    this.#namedRooms!.drop(session);
    const entry = { name: session.claimedName!, ep: this.#ep, conn: session.id };
    this.#log.debug("client left", { conn: session.id, name: entry.name, peer: session.peer });
    // Release only after everything this client sent is on its way, so that everyone sees
    // its last messages before its LEFT.
    this.#releasing++;
    this.#bus!.flushed().then(() => {
      this.#toSupervisor({ kind: "release", entry });
      this.#releasing--;
      this.#maybeDone();
    });
  }

  direct(from: Session, to: string, text: string): boolean {
    const entry = this.#replica.lookup(to);
    if (entry === undefined) return false;
    const chunks = this.#replyChunks;
    chunks.appendText(Reply.from(from.name!, text));
    if (entry.ep === this.#ep) this.#owner(entry)?.broadcast(chunks, Infinity);
    else this.#bus!.send(entry.ep, encodeDirect(entry.conn, entry.name, chunks.line()));
    return true;
  }

  room(from: Session, text: string): void {
    this.#room!.post(from, Reply.all(from.name!, text));
  }

  users(): readonly string[] {
    return this.#replica.names();
  }

  get namedRooms(): NamedRooms {
    return this.#namedRooms!;
  }

  failed(session: Session, error: unknown): void {
    this.#log.error("client handler failed, client closed", { conn: session.id, error });
  }

  slowConsumer(session: Session): void {
    this.#metrics[M.slow_consumers]! += 1;
    this.#warnings.warn("slow consumer dropped", {
      conn: session.id,
      name: session.claimedName,
      peer: session.peer,
      queued: session.queuedBytes,
    });
  }

  joinTimedOut(session: Session): void {
    this.#log.debug("join timeout", { conn: session.id, peer: session.peer });
  }

  wantsFlush(queue: OutputQueue): void {
    this.#rounds.add(queue);
  }

  fault(_session: Session, what: string): boolean {
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

  closed(session: Session, previous: SessionState): void {
    this.#sessions.delete(session.id);
    this.#lobbyHistory.drop(session.id);
    this.#log.debug("client closed", { conn: session.id, peer: session.peer, state: previous });
    this.#counters.closed();
    if (previous === "joined" || previous === "joining") this.release(session);
    this.#maybeDone();
  }

  // Phases ---------------------------------------------------------------------------------

  /** Stops accepting once arrivals pause, serves the open clients to the end, then is done. */
  drain(): void {
    if (this.#phase !== "serving") return;
    this.#phase = "draining";
    this.#listeners.drain();
    this.#log.info("thread draining", { ep: this.#ep, clients: this.#sessions.size });
  }

  /** Sets the gauges of the metrics row: at each heartbeat, not on every change. */
  updateGauges(): void {
    let joined = 0;
    for (const session of this.#sessions.values()) if (session.state === "joined") joined++;
    this.#metrics[M.open] = this.#sessions.size;
    this.#metrics[M.joined] = joined;
    // This thread's own V8 heap (each thread is an isolate): a join storm's garbage shows here
    // first, before the process's resident memory.
    const heap = Deno.memoryUsage();
    this.#metrics[M.heap_used] = heap.heapUsed;
    this.#metrics[M.heap_total] = heap.heapTotal;
  }

  /** Closes the listener, says `BYE shutting down` to every client and closes them. */
  shutdown(): void {
    this.#phase = "stopping";
    this.#listeners.stop();
    const bye = encoder.encode(Reply.shuttingDown());
    for (const session of this.#sessions.values()) {
      session.write(bye);
      session.end();
    }
    this.#maybeDone();
  }

  #maybeDone(): void {
    if (this.#done || this.#sessions.size > 0 || this.#releasing > 0) return;
    if (
      this.#phase === "stopping" ||
      (this.#phase === "draining" && !this.#listeners.running)
    ) {
      this.#done = true;
      // The last records (releases) leave before the bus closes.
      const bus = this.#bus!;
      bus.flushed().then(() => {
        bus.close();
        this.#post({ kind: "done" });
      });
    }
  }
}

/** Says `line` to a client that is not served, then closes it. */
function refuse(transport: Transport, line: string): void {
  const close = () => transport.close();
  transport.write([encoder.encode(line)], { written: close, failed: close });
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
          metrics: new ThreadMetrics(message.config.threads, message.metrics).row(message.tId),
          post: (reply) => scope.postMessage(reply),
        });
        thread.start();
        return;
      case "drain":
        return thread?.drain();
      case "ping":
        thread?.updateGauges();
        return scope.postMessage({ kind: "pong" });
      case "shutdown":
        return thread?.shutdown();
      case "tls":
        return thread?.reloadTls({ cert: message.cert, key: message.key });
    }
  };
}
