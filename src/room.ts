/**
 * A room: its members on this thread, and fan-out. A line for many members is copied once
 * into the thread's shared chunks (`_output_chunks.ts`) and each member queues a span of
 * it; a member's message is also forwarded to the other threads, once per thread. The room
 * that `CHAT *` talks to is one `Room` that forwards to every thread; each named room is
 * one more (`named_rooms.ts`) that forwards only to the threads hosting its members.
 *
 * @module
 */
import { OutputChunks } from "./_output_chunks.ts";
import { Reply } from "./protocol.ts";

/** What a room needs from a member. `Session` is one. */
export interface RoomMember {
  /**
   * The line just appended to `chunks` is for this member: a message (`seq` Infinity) or
   * the notice of directory change `seq`.
   */
  broadcast(chunks: OutputChunks, seq: number): void;
}

/** The members of a room on this thread. */
export class Room<M extends RoomMember> {
  /** Joined or joining members: joining ones hold what they get until `OK JOIN`. */
  readonly #members = new Set<M>();
  readonly #chunks: OutputChunks;
  readonly #forward: (line: Uint8Array) => void;

  /**
   * @param forward sends a member's message line to the other threads' copies of this room
   *   (the lobby: `(line) => bus.sendAll(encodeRoom(line))`).
   * @param chunks the thread's shared broadcast chunks.
   */
  constructor(forward: (line: Uint8Array) => void, chunks: OutputChunks = new OutputChunks()) {
    this.#forward = forward;
    this.#chunks = chunks;
  }

  /** Members on this thread. */
  get size(): number {
    return this.#members.size;
  }

  has(member: M): boolean {
    return this.#members.has(member);
  }

  add(member: M): void {
    this.#members.add(member);
  }

  delete(member: M): void {
    this.#members.delete(member);
  }

  /** `from`'s message line: to every other member here, and to every other thread. */
  post(from: M, line: string): void {
    this.#chunks.appendText(line);
    this.#fanOutAppended(Infinity, from);
    this.#forward(this.#chunks.line());
  }

  /** A message line from another thread: to every member here. */
  deliver(line: Uint8Array): void {
    this.#fanOut(line, Infinity, undefined);
  }

  /** `JOINED name`, directory change `seq`, to every member but `except` (the one joining). */
  joined(name: string, seq: number, except: M | undefined): void {
    this.#chunks.appendText(Reply.joinedNotice(name));
    this.#fanOutAppended(seq, except);
  }

  /** `LEFT name`, directory change `seq`, to every member. */
  left(name: string, seq: number): void {
    this.#chunks.appendText(Reply.leftNotice(name));
    this.#fanOutAppended(seq, undefined);
  }

  /** A notice line of directory change `seq`, to every member but `except`. */
  notice(line: Uint8Array, seq: number, except: M | undefined): void {
    this.#fanOut(line, seq, except);
  }

  #fanOut(line: Uint8Array, seq: number, except: M | undefined): void {
    this.#chunks.append(line);
    this.#fanOutAppended(seq, except);
  }

  /** The line just appended to the chunks, to every member but `except`. */
  #fanOutAppended(seq: number, except: M | undefined): void {
    const chunks = this.#chunks;
    for (const member of this.#members) if (member !== except) member.broadcast(chunks, seq);
  }
}
