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
import type { OutputQueue } from "./_output_queue.ts";
import type { Bus, BusHandlers } from "./bus.ts";
import type { Clock } from "./_clock.ts";
import { Counters } from "./counters.ts";
import { type ControlMessage, type Entry, SUPERVISOR_EP } from "./directory_messages.ts";
import { type DatagramRecord, encodeControl, encodeDirect } from "./wire.ts";
import { Replica } from "./directory.ts";
import { Listener } from "./listener.ts";
import { type Logger, logger, setupLogging } from "./log.ts";
import { ErrorCode, Reply } from "./protocol.ts";
import { Room } from "./room.ts";
import { Session, type SessionHost, type SessionOptions, type SessionState } from "./session.ts";
import { listenTcp } from "./tcp_transport.ts";
import type { Acceptor, Transport } from "./transport.ts";
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
  /** Sends a message to the process. */
  post: (message: FromThread) => void;
  /** Makes the bus endpoint. Default: a {@linkcode UnixBus} in the runtime directory. */
  bus?: (handlers: BusHandlers) => Bus;
  /** Makes the acceptor once the directory is in. Default: TCP on `--host`/`--port`. */
  acceptor?: () => Acceptor;
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
  readonly #post: (message: FromThread) => void;
  readonly #makeBus: (handlers: BusHandlers) => Bus;
  readonly #makeAcceptor: () => Acceptor;
  readonly #clock: Clock | undefined;
  readonly #log: Logger;
  readonly #replica = new Replica();
  readonly #sessions = new Map<number, Session>();
  readonly #rounds = new FlushRounds<OutputQueue>();
  /** One settings object for every session: each holds a reference, not a copy. */
  readonly #sessionOptions: SessionOptions;
  #bus: Bus | undefined;
  #room: Room<Session> | undefined;
  #listener: Listener | undefined;
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
    this.#post = options.post;
    this.#log = logger("thread");
    const config = options.config;
    this.#makeBus = options.bus ??
      ((handlers) => new UnixBus(config.runtimeDir, options.ep, handlers));
    this.#makeAcceptor = options.acceptor ?? (() =>
      listenTcp({
        hostname: config.host,
        port: config.port,
        reusePort: true,
        maxLineBytes: config.maxLineBytes,
      }));
    this.#clock = options.clock;
    this.#sessionOptions = {
      joinTimeoutMs: config.joinTimeout * 1000,
      rate: config.rate,
      burst: config.burst,
      queue: { maxBytes: config.maxSendQueue, clock: options.clock },
      clock: options.clock,
    };
  }

  /** Binds the bus endpoint and introduces it to the supervisor; listening follows the snapshot. */
  start(): void {
    const bus = this.#makeBus({ onRecord: (record) => this.#onRecord(record) });
    this.#bus = bus;
    this.#room = new Room(bus);
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
      case "control":
        this.#onControl(record.message);
        return;
    }
  }

  #onControl(message: ControlMessage): void {
    switch (message.kind) {
      case "snapshot":
        this.#replica.load(message.entries, message.endpoints);
        this.#bus!.setPeers(message.endpoints);
        if (this.#phase === "starting") this.#listen();
        return;
      case "add":
        return this.#added(message.entry, message.seq);
      case "remove":
        for (const entry of message.entries) this.#removed(entry, message.seq);
        return;
      case "taken": {
        const session = this.#owner(message.entry);
        if (session?.state !== "joining") return;
        this.#room!.delete(session);
        session.refused(Reply.error(ErrorCode.NAME_TAKEN, message.entry.name));
        return;
      }
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

  #added(entry: Entry, seq: number): void {
    this.#replica.add(entry);
    const owner = this.#owner(entry);
    this.#room!.joined(entry.name, seq, owner);
    if (entry.ep !== this.#ep) return;
    if (owner?.state === "joining") owner.joined(seq);
    // The claimant is gone: hand the name straight back.
    else if (owner === undefined) this.#toSupervisor({ kind: "release", entry });
  }

  #removed(entry: Entry, seq: number): void {
    if (this.#replica.remove(entry)) this.#room!.left(entry.name, seq);
    const owner = this.#owner(entry);
    if (owner?.state === "leaving") owner.left();
  }

  // Clients ----------------------------------------------------------------------------------

  #listen(): void {
    const acceptor = this.#makeAcceptor();
    this.#phase = "serving";
    this.#log.info("thread listening", { ep: this.#ep, port: this.#config.port });
    this.#post({ kind: "listening" });
    this.#listener = new Listener(acceptor, {
      clock: this.#clock,
      onAccept: (transport) => this.#accept(transport),
      onStopped: () => {
        this.#log.info("thread stopped accepting", { ep: this.#ep });
        this.#maybeDone();
      },
    });
  }

  #accept(transport: Transport): void {
    // Accepted as the listener closed: this client gets its BYE too.
    if (this.#phase === "stopping") return refuse(transport, Reply.shuttingDown());
    if (this.#sessions.size >= this.#config.maxClientsPerThread) {
      return refuse(transport, Reply.error(ErrorCode.SERVER_FULL));
    }
    const session = new Session(this.#nextId++, transport, this, this.#sessionOptions);
    this.#sessions.set(session.id, session);
    const accepted = this.#counters.accepted();
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
    const entry = { name: session.claimedName!, ep: this.#ep, conn: session.id };
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
    const line = encoder.encode(Reply.from(from.name!, text));
    if (entry.ep === this.#ep) this.#owner(entry)?.deliver(line);
    else this.#bus!.send(entry.ep, encodeDirect(entry.conn, entry.name, line));
    return true;
  }

  room(from: Session, text: string): void {
    this.#room!.post(from, encoder.encode(Reply.all(from.name!, text)));
  }

  users(): readonly string[] {
    return this.#replica.names();
  }

  failed(session: Session, error: unknown): void {
    this.#log.error("client handler failed, client closed", { conn: session.id, error });
  }

  slowConsumer(session: Session): void {
    this.#log.warning("slow consumer dropped", {
      conn: session.id,
      name: session.claimedName,
      queued: session.queuedBytes,
    });
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
    this.#counters.closed();
    if (previous === "joined" || previous === "joining") this.release(session);
    this.#maybeDone();
  }

  // Phases ---------------------------------------------------------------------------------

  /** Stops accepting once arrivals pause, serves the open clients to the end, then is done. */
  drain(): void {
    if (this.#phase !== "serving") return;
    this.#phase = "draining";
    this.#listener!.drain();
    this.#log.info("thread draining", { ep: this.#ep, clients: this.#sessions.size });
  }

  /** Closes the listener, says `BYE shutting down` to every client and closes them. */
  shutdown(): void {
    this.#phase = "stopping";
    this.#listener?.stop();
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
      (this.#phase === "draining" && this.#listener?.running === false)
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
