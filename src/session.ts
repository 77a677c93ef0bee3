/**
 * One client's conversation: anonymous → joining → joined → leaving, the lines held while
 * it joins, its join timeout and rate limit. Implements the {@linkcode CommandSession} the
 * command handlers see. It reads and writes only through its {@linkcode Transport} and
 * {@linkcode OutputQueue}; it never touches a socket.
 *
 * @module
 */
import { type Clock, SYSTEM_CLOCK } from "./_clock.ts";
import { OutputChunks } from "./_output_chunks.ts";
import type { NamedRooms, RoomUser } from "./named_rooms.ts";
import { OutputQueue, type OutputQueueOptions } from "./_output_queue.ts";
import { M } from "./counters.ts";
import { dispatch, type Session as CommandSession } from "./commands.ts";
import { ErrorCode, Reply } from "./protocol.ts";
import { TokenBucket } from "./rate_limit.ts";
import type { InvalidLine, LineReceiver, Transport } from "./transport.ts";

/** Where a session stands with the directory. */
export type SessionState =
  /** Connected, no name. */
  | "anonymous"
  /** `JOIN` sent to the directory, answer not yet back. */
  | "joining"
  /** Holds a name. */
  | "joined"
  /** `LEAV` sent, waiting for the directory to free the name before `BYE`. */
  | "leaving"
  | "closed";

/** What a session needs from the thread that serves it. */
export interface SessionHost {
  /** Asks the directory for `name` on behalf of `session`. */
  claim(session: Session, name: string): void;
  /** Gives `session`'s name back to the directory. */
  release(session: Session): void;
  /** Delivers `text` from `from` to user `to`; false when no such user is known. */
  direct(from: Session, to: string, text: string): boolean;
  /** Delivers `text` from `from` to everyone else in the room. */
  room(from: Session, text: string): void;
  /** Every joined name, sorted. */
  users(): readonly string[];
  /** The thread's named rooms. */
  readonly namedRooms: Pick<NamedRooms, "enter" | "part" | "say" | "who" | "list">;
  /** Called once when the session has closed, with the state it was in. */
  closed(session: Session, previous: SessionState): void;
  /** A handler threw while serving `session`; the session is closed. */
  failed(session: Session, error: unknown): void;
  /** `session` is being dropped: it does not read what it is sent. */
  slowConsumer(session: Session): void;
  /** `session` did not JOIN within the join timeout and is being closed. */
  joinTimedOut(session: Session): void;
  /** Has {@linkcode OutputQueue.flush} called in the thread's flush round at the end of this turn. */
  wantsFlush(queue: OutputQueue): void;
  /** `FAULT <what>`: injects a fault when fault injection is on; false when it is off. */
  fault(session: Session, what: string): boolean;
}

/** Settings of a session; one object serves every session of a thread. */
export interface SessionOptions {
  /** Milliseconds to join before `ERR TIMEOUT`. */
  joinTimeoutMs: number;
  /** Lines per second before the client is slowed down; 0 = no limit. */
  rate: number;
  /** Lines that may come at once before `rate` applies. */
  burst: number;
  /** The output queue's settings (its `maxBytes` is `--max-send-queue`). */
  queue: OutputQueueOptions;
  /** Default {@linkcode SYSTEM_CLOCK}. */
  clock?: Clock;
  /** The thread's metrics row (counters.ts), counted into; none in unit tests. */
  metrics?: Float64Array;
  /** The thread's chunks where lines for one client are encoded. Default: one per module. */
  chunks?: OutputChunks;
}

/** The chunks of sessions given none (unit tests). */
const OWN_CHUNKS = new OutputChunks();

const encoder = new TextEncoder();

/** A line as read: its text, or the error that replaced it. */
type Item = string | { error: InvalidLine };

/** One client's conversation. */
export class Session implements CommandSession, LineReceiver, RoomUser {
  readonly id: number;
  readonly #transport: Transport;
  readonly #host: SessionHost;
  readonly #options: SessionOptions;
  readonly #clock: Clock;
  readonly #out: OutputQueue;
  readonly #bucket: TokenBucket | undefined;
  #joinTimer: unknown;
  #state: SessionState = "anonymous";
  #name: string | undefined;
  /** The name asked for while joining or held while joined or leaving. */
  #claimedName: string | undefined;
  #joinSettled: (() => void) | undefined;
  /**
   * What arrived while joining, sent after `OK JOIN` or dropped on failure. Messages carry
   * seq Infinity; notices the seq of their directory change (see {@linkcode joined}). Their
   * bytes count against the send-queue limit.
   */
  #held: { line: Uint8Array; seq: number }[] | undefined;
  #heldBytes = 0;
  /** Lines of the last read, not yet run. */
  readonly #items: Item[] = [];

  constructor(id: number, transport: Transport, host: SessionHost, options: SessionOptions) {
    this.id = id;
    this.#transport = transport;
    this.#host = host;
    this.#options = options;
    this.#clock = options.clock ?? SYSTEM_CLOCK;
    this.#out = new OutputQueue(transport, this, options.queue);
    if (options.rate > 0) {
      this.#bucket = new TokenBucket(
        options.clock ? { ...options, now: () => this.#clock.now() } : options,
      );
    }
  }

  get state(): SessionState {
    return this.#state;
  }

  /** The joined name; undefined unless joined. */
  get name(): string | undefined {
    return this.#name;
  }

  /** The name this session claimed (joining, joined or leaving). */
  get claimedName(): string | undefined {
    return this.#claimedName;
  }

  /** Bytes queued for the client and not yet taken by the kernel, held lines included. */
  get queuedBytes(): number {
    return this.#out.queuedBytes;
  }

  /** The transport's peer address, for logs. */
  get peer(): string {
    return this.#transport.peer;
  }

  /**
   * Greets the client and runs its lines in order until it leaves, the peer closes, or the
   * session is closed. What was queued for the client is written before the transport
   * closes.
   */
  serve(greeting: string): Promise<void> {
    this.reply(greeting);
    this.#armJoinTimer();
    return this.#serve();
  }

  /**
   * The read loop of {@linkcode serve}. Its frame lives as long as the connection, so it
   * takes no parameter (an async function keeps its arguments: the greeting, per client) and
   * makes no closure (one capturing `this` would give every frame a context object).
   */
  async #serve(): Promise<void> {
    const items = this.#items;
    try {
      while (this.#readable()) {
        const count = await this.#transport.read();
        if (count === null) break;
        // The lines before an end inside these bytes (a WebSocket close frame) still count.
        const more = this.#transport.lines(count, this);
        for (let i = 0; i < items.length && this.#readable(); i++) {
          // Over its rate, the client waits here; meanwhile nothing is read from it.
          const wait = this.#bucket?.take() ?? 0;
          if (wait > 0) {
            await this.#sleep(wait);
            // The session may have timed out, overflowed or been shut down meanwhile.
            if (!this.#readable()) break;
          }
          const item = items[i]!;
          if (typeof item !== "string") {
            this.reply(Reply.error(ErrorCode[item.error], INVALID_DETAIL[item.error]));
            continue;
          }
          let pending: void | Promise<void>;
          try {
            pending = dispatch(this, item, this.#options.metrics);
          } catch (error: unknown) {
            this.#host.failed(this, error);
            this.close();
            return;
          }
          if (pending !== undefined) await pending;
        }
        items.length = 0;
        if (!more) break;
      }
    } catch {
      // Reset by the peer, or closed under us: either way the connection is over.
      this.close();
      return;
    }
    // The peer closed its side, or this session stopped reading: what it was sent still
    // goes out first. A leaving session ends once the directory has freed its name.
    if (this.#state !== "leaving") this.end();
  }

  /**
   * The timer's callback is made here, not kept as a field: a joined session (most of them,
   * for long) then holds no closure for a timer it no longer has.
   */
  #armJoinTimer(): void {
    this.#joinTimer = this.#clock.setTimeout(
      () => this.#onJoinTimeout(),
      this.#options.joinTimeoutMs,
    );
  }

  #onJoinTimeout(): void {
    this.#joinTimer = undefined;
    // A joining session is timed out only if its claim is refused (see refused()).
    if (this.#state !== "anonymous") return;
    this.#host.joinTimedOut(this);
    this.reply(Reply.error(ErrorCode.TIMEOUT, "no JOIN in time"));
    this.end();
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => this.#clock.setTimeout(resolve, ms));
  }

  #readable(): boolean {
    return this.#state !== "closed" && this.#state !== "leaving" && !this.#out.ending;
  }

  // LineReceiver -------------------------------------------------------------------------

  /** A line read by the transport; run after the read. */
  line(text: string): void {
    this.#items.push(text);
  }

  /** A line the transport could not read; answered in its turn. */
  invalid(problem: InvalidLine): void {
    this.#items.push({ error: problem });
  }

  // Commands' Session ---------------------------------------------------------------------

  reply(line: string): void {
    const chunks = this.#options.chunks ?? OWN_CHUNKS;
    chunks.appendText(line);
    if (this.#options.metrics) this.#options.metrics[M.bytes_out]! += chunks.end - chunks.start;
    this.#out.broadcast(chunks);
  }

  join(name: string): Promise<void> {
    // A session that timed out or was closed while this line waited never claims a name.
    if (this.#state !== "anonymous" || !this.#readable()) return Promise.resolve();
    this.#state = "joining";
    this.#claimedName = name;
    const settled = new Promise<void>((resolve) => this.#joinSettled = resolve);
    this.#host.claim(this, name);
    return settled;
  }

  direct(to: string, text: string): boolean {
    return this.#host.direct(this, to, text);
  }

  room(text: string): void {
    this.#host.room(this, text);
  }

  users(): readonly string[] {
    return this.#host.users();
  }

  leave(): void {
    if (this.#state !== "joined") {
      this.reply(Reply.bye());
      this.end();
      return;
    }
    // BYE waits until the directory has freed the name: after BYE, the name is free.
    this.#state = "leaving";
    this.#host.release(this);
  }

  fault(what: string): boolean {
    return this.#host.fault(this, what);
  }

  enterRoom(room: string): void | Promise<void> {
    return this.#host.namedRooms.enter(this, room);
  }

  partRoom(room: string): void | Promise<void> {
    return this.#host.namedRooms.part(this, room);
  }

  roomChat(room: string, text: string): void {
    this.#host.namedRooms.say(this, room, text);
  }

  roomWho(room: string): void {
    this.#host.namedRooms.who(this, room);
  }

  roomList(): void {
    this.#host.namedRooms.list(this);
  }

  // Called by the thread ------------------------------------------------------------------

  /**
   * The directory confirmed the claim as its change `seq`. Held notices of earlier changes
   * are dropped: they happened before this client joined, and its `WHO` already shows them.
   * Later ones, and every held message, follow `OK JOIN` and `history` (the lobby's
   * `HISTORY *` lines, when history is kept). So of two users who join at once,
   * the earlier hears `JOINED` of the later, and the later finds the earlier in `WHO`.
   */
  joined(seq: number, history?: string): void {
    if (this.#state !== "joining") return;
    this.#state = "joined";
    this.#clock.clearTimeout(this.#joinTimer);
    // A cleared timer is still an object: drop it, a joined session lives long.
    this.#joinTimer = undefined;
    this.#name = this.#claimedName;
    this.#out.discharge(this.#heldBytes);
    this.#heldBytes = 0;
    this.reply(Reply.joined(this.#name!));
    if (history !== undefined) this.reply(history);
    const held = this.#held;
    this.#held = undefined;
    if (held !== undefined) {
      for (const { line, seq: at } of held) if (at > seq) this.#out.write(line);
    }
    this.#settleJoin();
  }

  /** The directory refused the claim. */
  refused(line: string): void {
    if (this.#state !== "joining") return;
    this.#state = "anonymous";
    this.#claimedName = undefined;
    this.#dropHeld();
    this.reply(line);
    // The join timeout passed while joining: the client gets a new one to try again in.
    if (this.#joinTimer === undefined && this.#readable()) this.#armJoinTimer();
    this.#settleJoin();
  }

  /** The directory freed the name after `LEAV`. */
  left(): void {
    if (this.#state !== "leaving") return;
    this.reply(Reply.bye());
    this.end();
  }

  #settleJoin(): void {
    const settle = this.#joinSettled;
    this.#joinSettled = undefined;
    settle?.();
  }

  #dropHeld(): void {
    this.#out.discharge(this.#heldBytes);
    this.#heldBytes = 0;
    this.#held = undefined;
  }

  /** True when a delivery addressed to session `this.id` under `name` is for this client. */
  owns(name: string): boolean {
    return (this.#state === "joined" || this.#state === "joining") && this.#claimedName === name;
  }

  /** Delivers a message meant for joined clients: written when joined, held while joining. */
  deliver(line: Uint8Array): void {
    if (this.#state === "joined") {
      const metrics = this.#options.metrics;
      if (metrics) {
        metrics[M.deliveries]! += 1;
        metrics[M.bytes_out]! += line.length;
      }
      this.#out.write(line);
    } else if (this.#state === "joining") this.#hold(line, Infinity);
  }

  /**
   * Delivers the line just appended to the thread's shared `chunks`: a message (`seq`
   * Infinity) or the notice of directory change `seq`. Written when joined, held while
   * joining.
   */
  broadcast(chunks: OutputChunks, seq: number): void {
    if (this.#state === "joined") {
      const metrics = this.#options.metrics;
      if (metrics) {
        metrics[M.deliveries]! += 1;
        metrics[M.bytes_out]! += chunks.end - chunks.start;
      }
      this.#out.broadcast(chunks);
    } else if (this.#state === "joining") {
      this.#hold(chunks.chunk.subarray(chunks.start, chunks.end), seq);
    }
  }

  #hold(line: Uint8Array, seq: number): void {
    // Held lines count against the send-queue limit: a joining client is no exception.
    if (!this.#out.charge(line.length)) return;
    this.#heldBytes += line.length;
    (this.#held ??= []).push({ line, seq });
  }

  /** Counts bytes held for this client elsewhere (a room it enters); false when that overflowed it. */
  charge(bytes: number): boolean {
    return this.#out.charge(bytes);
  }

  /** Takes back a {@linkcode charge}. */
  discharge(bytes: number): void {
    this.#out.discharge(bytes);
  }

  /** Queues bytes (whole lines) for the client, written at the end of this turn. */
  write(bytes: Uint8Array): void {
    this.#out.write(bytes);
  }

  /** Closes once what was queued so far has been written. */
  end(): void {
    this.#out.end();
  }

  /** Closes now. The thread is told once, through {@linkcode SessionHost.closed}. */
  close(): void {
    const previous = this.#state;
    if (previous === "closed") return;
    this.#state = "closed";
    this.#clock.clearTimeout(this.#joinTimer);
    this.#joinTimer = undefined;
    this.#out.close();
    this.#held = undefined;
    this.#heldBytes = 0;
    this.#transport.close();
    this.#settleJoin();
    this.#host.closed(this, previous);
  }

  // OutputOwner ---------------------------------------------------------------------------

  /** @internal The output queue wants a round. */
  wantsFlush(queue: OutputQueue): void {
    this.#host.wantsFlush(queue);
  }

  /** @internal The client does not read: it gets `ERR SLOW_CONSUMER` and is closed. */
  overflowed(): Uint8Array {
    this.#host.slowConsumer(this);
    this.#held = undefined;
    this.#heldBytes = 0;
    return encoder.encode(Reply.error(ErrorCode.SLOW_CONSUMER, "not reading"));
  }

  /** @internal The output queue is done: close. */
  finished(): void {
    this.close();
  }
}

const INVALID_DETAIL: Record<InvalidLine, string> = {
  LINE_TOO_LONG: "",
  BAD_ENCODING: "lines must be UTF-8",
};
