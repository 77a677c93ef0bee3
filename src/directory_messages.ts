/**
 * The directory's messages, carried in the bus's CONTROL records (`wire.ts`), and the
 * endpoint ids they name. Everything is validated once, on receipt.
 *
 * @module
 */

import { nameProblem, ROOM, roomProblem } from "./protocol.ts";
import type { HistoryLine } from "./history.ts";
import type { RoomSnapshot } from "./room_table.ts";

/** The supervisor's endpoint id; threads' ids come from {@linkcode endpointId}. */
export const SUPERVISOR_EP = "supervisor";

/** A user's place in the directory: which thread endpoint and which connection on it. */
export interface Entry {
  name: string;
  /** The thread's endpoint id, see {@linkcode parseEndpointId}. */
  ep: string;
  conn: number;
}

/** Directory traffic, carried in CONTROL records. */
export type ControlMessage =
  /** thread → supervisor: my endpoint is bound; send me the directory. */
  | { kind: "hello"; ep: string }
  /** thread → supervisor: connection `conn` asks for `name`. */
  | { kind: "claim"; entry: Entry }
  /** thread → supervisor: connection `conn` gave up `name`. */
  | { kind: "release"; entry: Entry }
  /** thread → supervisor: the user `entry` asks to enter `room`. */
  | { kind: "enter"; room: string; entry: Entry }
  /** thread → supervisor: the user `entry` left `room`. */
  | { kind: "part"; room: string; entry: Entry }
  /** supervisor → thread: the whole directory, answering hello. */
  | { kind: "snapshot"; entries: Entry[]; endpoints: string[]; rooms: RoomSnapshot[] }
  /**
   * supervisor → threads: `entry` entered `room` (spelled as the room is shown), change
   * `seq`. As with `add`, the owner's thread gets it last, as the confirmation.
   */
  | { kind: "entered"; room: string; entry: Entry; seq: number }
  /** supervisor → threads: `entry` left `room`, change `seq`. */
  | { kind: "parted"; room: string; entry: Entry; seq: number }
  /**
   * supervisor → owner: (some of) the history of `room` (`*` for the lobby), oldest first,
   * sent ahead of the confirmation of `entry`'s claim or entry.
   */
  | { kind: "history"; room: string; entry: Entry; lines: HistoryLine[] }
  /** supervisor → owner: `room` would be one room more than `--max-rooms`. */
  | { kind: "roomsFull"; room: string; entry: Entry }
  /**
   * supervisor → threads: a name was claimed. To its owner this is the confirmation. `seq`
   * numbers the directory's changes in the order the supervisor made them.
   */
  | { kind: "add"; entry: Entry; seq: number }
  /** supervisor → threads: names were given up, or their thread or process died. */
  | { kind: "remove"; entries: Entry[]; seq: number }
  /** supervisor → owner: the claim failed, the name is taken. */
  | { kind: "taken"; entry: Entry }
  /** supervisor → owner: the claim could not be decided, the cluster (NATS) is unreachable. */
  | { kind: "unavailable"; entry: Entry }
  /**
   * supervisor → owner: after an outage the cluster gave the name to another node's user; a
   * `remove` of `entry` follows.
   */
  | { kind: "lost"; entry: Entry }
  /**
   * supervisor → sender: a line of `entry` to `to` (a user on another node, `*` or a room) did
   * not reach the other nodes.
   */
  | { kind: "undelivered"; entry: Entry; to: string }
  /** supervisor → threads: the live thread endpoints changed. */
  | { kind: "endpoints"; endpoints: string[] };

/** A message that is not a valid {@linkcode ControlMessage}. */
export class DirectoryMessageError extends Error {
  override name = "DirectoryMessageError";
}

const ENDPOINT_ID = /^\d{1,3}-\d{1,3}-\d{1,10}-\d{1,6}$/;

/**
 * The endpoint id of a thread on another node of a cluster: `node/p-t-instance-restart`.
 * Threads route records for it to the supervisor, which forwards them (see cluster.ts).
 */
export function remoteEndpointId(node: string, ep: string): string {
  return `${node}/${ep}`;
}

/** True when `ep` names a thread on another node (see {@linkcode remoteEndpointId}). */
export function isRemoteEndpointId(ep: string): boolean {
  const slash = ep.indexOf("/");
  return slash > 0 && /^[A-Za-z0-9_-]{1,64}$/.test(ep.slice(0, slash)) &&
    parseEndpointId(ep.slice(slash + 1)) !== undefined;
}

/** The parts of a thread endpoint id `p-t-instance-restart`. */
export interface EndpointId {
  pId: number;
  tId: number;
  /** The supervisor's number for one run of a child process. */
  instance: number;
  /** How often the process restarted this thread. */
  restart: number;
}

/** Formats an endpoint id: `endpointId({ pId: 1, tId: 0, instance: 7, restart: 0 })` → `"1-0-7-0"`. */
export function endpointId(id: EndpointId): string {
  return `${id.pId}-${id.tId}-${id.instance}-${id.restart}`;
}

/** Parses an endpoint id, or returns undefined when it is not one. */
export function parseEndpointId(ep: string): EndpointId | undefined {
  if (!ENDPOINT_ID.test(ep)) return undefined;
  const [pId, tId, instance, restart] = ep.split("-").map(Number) as [
    number,
    number,
    number,
    number,
  ];
  return { pId, tId, instance, restart };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function parseEntry(value: unknown): Entry {
  if (
    isRecord(value) && typeof value.name === "string" && nameProblem(value.name) === undefined &&
    typeof value.ep === "string" &&
    (parseEndpointId(value.ep) !== undefined || isRemoteEndpointId(value.ep)) &&
    typeof value.conn === "number" && Number.isInteger(value.conn) && value.conn >= 0 &&
    value.conn <= 0xffffffff
  ) {
    return { name: value.name, ep: value.ep, conn: value.conn };
  }
  throw new DirectoryMessageError("malformed entry");
}

function parseRoom(value: unknown): string {
  if (typeof value === "string" && roomProblem(value) === undefined) return value;
  throw new DirectoryMessageError("room");
}

function parseRooms(value: unknown): RoomSnapshot[] {
  if (!Array.isArray(value)) throw new DirectoryMessageError("rooms");
  return value.map((room) => {
    if (!isRecord(room)) throw new DirectoryMessageError("room");
    return { name: parseRoom(room.name), members: parseEntries(room.members) };
  });
}

function parseHistoryLines(value: unknown): HistoryLine[] {
  if (!Array.isArray(value)) throw new DirectoryMessageError("history lines");
  return value.map((line) => {
    if (
      isRecord(line) && typeof line.time === "number" && Number.isFinite(line.time) &&
      typeof line.sender === "string" && nameProblem(line.sender) === undefined &&
      typeof line.text === "string" && !line.text.includes("\n")
    ) {
      return { time: line.time, sender: line.sender, text: line.text };
    }
    throw new DirectoryMessageError("history line");
  });
}

function parseEndpoints(value: unknown): string[] {
  if (!Array.isArray(value)) throw new DirectoryMessageError("endpoints");
  return value.map((ep) => {
    if (typeof ep !== "string" || parseEndpointId(ep) === undefined) {
      throw new DirectoryMessageError("endpoint id");
    }
    return ep;
  });
}

function parseSeq(value: unknown): number {
  if (typeof value === "number" && Number.isSafeInteger(value) && value > 0) return value;
  throw new DirectoryMessageError("seq");
}

function parseEntries(value: unknown): Entry[] {
  if (!Array.isArray(value)) throw new DirectoryMessageError("entries");
  return value.map(parseEntry);
}

/**
 * Checks that `value` is a {@linkcode ControlMessage}.
 *
 * @throws {DirectoryMessageError} when it is not.
 */
export function parseControlMessage(value: unknown): ControlMessage {
  if (!isRecord(value)) throw new DirectoryMessageError("not an object");
  switch (value.kind) {
    case "hello": {
      if (typeof value.ep !== "string" || parseEndpointId(value.ep) === undefined) {
        throw new DirectoryMessageError("hello");
      }
      return { kind: "hello", ep: value.ep };
    }
    case "claim":
    case "release":
    case "taken":
    case "unavailable":
    case "lost":
      return { kind: value.kind, entry: parseEntry(value.entry) };
    case "undelivered": {
      // A user, the lobby (`*`) or a room: echoed to the sender in `ERR CLUSTER_UNAVAILABLE`.
      const to = value.to;
      if (
        typeof to !== "string" ||
        (to !== ROOM && nameProblem(to) !== undefined && roomProblem(to) !== undefined)
      ) {
        throw new DirectoryMessageError("undelivered");
      }
      return { kind: "undelivered", entry: parseEntry(value.entry), to };
    }
    case "add":
      return { kind: "add", entry: parseEntry(value.entry), seq: parseSeq(value.seq) };
    case "remove":
      return { kind: "remove", entries: parseEntries(value.entries), seq: parseSeq(value.seq) };
    case "snapshot":
      return {
        kind: "snapshot",
        entries: parseEntries(value.entries),
        endpoints: parseEndpoints(value.endpoints),
        rooms: parseRooms(value.rooms),
      };
    case "enter":
    case "part":
    case "roomsFull":
      return { kind: value.kind, room: parseRoom(value.room), entry: parseEntry(value.entry) };
    case "history":
      return {
        kind: "history",
        room: value.room === ROOM ? ROOM : parseRoom(value.room),
        entry: parseEntry(value.entry),
        lines: parseHistoryLines(value.lines),
      };
    case "entered":
    case "parted":
      return {
        kind: value.kind,
        room: parseRoom(value.room),
        entry: parseEntry(value.entry),
        seq: parseSeq(value.seq),
      };
    case "endpoints":
      return { kind: "endpoints", endpoints: parseEndpoints(value.endpoints) };
    default:
      throw new DirectoryMessageError(`unknown kind ${String(value.kind)}`);
  }
}
