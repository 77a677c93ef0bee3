/**
 * The line protocol: every reply and error the server sends, in one table, and the rules
 * for names. Handlers build lines only through these functions.
 *
 * @module
 */
import { VERSION } from "./version.ts";

/** Error codes a client can receive after `ERR `. */
export const ErrorCode = {
  BAD_COMMAND: "BAD_COMMAND",
  BAD_NAME: "BAD_NAME",
  NAME_TAKEN: "NAME_TAKEN",
  ALREADY_JOINED: "ALREADY_JOINED",
  NOT_JOINED: "NOT_JOINED",
  NO_SUCH_USER: "NO_SUCH_USER",
  SERVER_FULL: "SERVER_FULL",
  LINE_TOO_LONG: "LINE_TOO_LONG",
  BAD_ENCODING: "BAD_ENCODING",
  BAD_TEXT: "BAD_TEXT",
  TIMEOUT: "TIMEOUT",
  SLOW_CONSUMER: "SLOW_CONSUMER",
  BAD_ROOM: "BAD_ROOM",
  NOT_IN_ROOM: "NOT_IN_ROOM",
  ALREADY_IN_ROOM: "ALREADY_IN_ROOM",
  TOO_MANY_ROOMS: "TOO_MANY_ROOMS",
  CLUSTER_UNAVAILABLE: "CLUSTER_UNAVAILABLE",
  NAME_LOST: "NAME_LOST",
} as const;
export type ErrorCode = typeof ErrorCode[keyof typeof ErrorCode];

/** The name of the room in `CHAT * <text>`. */
export const ROOM = "*";

// C0 controls but TAB, DEL, and C1 controls: they would let one user drive another user's
// terminal (ESC sequences, CSI as U+009B, BEL, ...). Matching them is the point here.
// deno-lint-ignore no-control-regex
const CONTROL_CHARACTERS = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/g;

/** True when `text` holds a control character other than TAB. */
export function hasControlCharacter(text: string): boolean {
  // search(), unlike test(), ignores and keeps the global regex's lastIndex.
  return text.search(CONTROL_CHARACTERS) !== -1;
}

/** The most characters of a client's own bytes that a reply echoes (a PING token, a name). */
export const MAX_ECHO_LENGTH = 128;

/**
 * `text` as a reply may echo it: at most {@linkcode MAX_ECHO_LENGTH} characters (code points,
 * so no surrogate pair is split), control characters shown as `?`. The dispatcher refuses
 * arguments with control characters before any handler runs; this is the second line.
 *
 * @example
 * ```ts
 * echoed("\x1b[31m" + "x".repeat(200)); // "?[31m" + "x".repeat(123)
 * ```
 */
export function echoed(text: string): string {
  let cut = text;
  if (text.length > MAX_ECHO_LENGTH) {
    let end = 0;
    for (let count = 0; count < MAX_ECHO_LENGTH && end < text.length; count++) {
      end += text.codePointAt(end)! > 0xffff ? 2 : 1;
    }
    cut = text.slice(0, end);
  }
  return cut.replace(CONTROL_CHARACTERS, "?");
}

/** Server → client lines. Each ends in LF. */
export const Reply = {
  hello: (pId: number, tId: number) =>
    `HELLO chatd ${VERSION} p=${pId} t=${tId} — JOIN <name> to start, HELP for commands\n`,
  pong: (token: string) => token === "" ? "PONG\n" : `PONG ${echoed(token)}\n`,
  joined: (name: string) => `OK JOIN ${name}\n`,
  users: (names: readonly string[]) =>
    names.length === 0 ? "USERS 0\n" : `USERS ${names.length} ${names.join(" ")}\n`,
  from: (sender: string, text: string) => `FROM ${sender} ${text}\n`,
  all: (sender: string, text: string) => `ALL ${sender} ${text}\n`,
  joinedNotice: (name: string) => `JOINED ${name}\n`,
  leftNotice: (name: string) => `LEFT ${name}\n`,
  bye: () => "BYE\n",
  roomJoined: (room: string) => `OK JOIN ${room}\n`,
  roomParted: (room: string) => `OK PART ${room}\n`,
  roomUsers: (room: string, names: readonly string[]) =>
    names.length === 0 ? `USERS ${room} 0\n` : `USERS ${room} ${names.length} ${names.join(" ")}\n`,
  roomMessage: (room: string, sender: string, text: string) => `ROOM ${room} ${sender} ${text}\n`,
  roomJoinedNotice: (room: string, name: string) => `JOINED ${room} ${name}\n`,
  roomLeftNotice: (room: string, name: string) => `LEFT ${room} ${name}\n`,
  history: (room: string, time: number, sender: string, text: string) =>
    `HISTORY ${room} ${new Date(time).toISOString()} ${sender} ${text}\n`,
  historyEnd: (room: string) => `HISTORY ${room} END\n`,
  /** `counts`: every room with members, sorted, as `#name=count`. */
  rooms: (counts: readonly string[]) =>
    counts.length === 0 ? "ROOMS 0\n" : `ROOMS ${counts.length} ${counts.join(" ")}\n`,
  shuttingDown: () => "BYE shutting down\n",
  /** `detail` may echo what the client sent: it is cut and cleaned ({@linkcode echoed}). */
  error: (code: ErrorCode, detail = "") =>
    detail === "" ? `ERR ${code}\n` : `ERR ${code} ${echoed(detail)}\n`,
} as const;

/** The `HELP` reply: one command a line, then `HELP END`. */
export const HELP_LINES: readonly string[] = [
  "HELP JOIN <name>          claim a name: 1-32 of A-Z a-z 0-9 _ -",
  "HELP CHAT <name> <text>   send <text> to <name>",
  "HELP CHAT * <text>        send <text> to everyone in the room",
  "HELP WHO                  list the users",
  "HELP JOIN #room           enter a room (created if new)",
  "HELP PART #room           leave a room",
  "HELP CHAT #room <text>    send <text> to everyone in #room",
  "HELP WHO #room            list the users in #room",
  "HELP ROOMS                list the rooms with their member counts",
  "HELP PING [token]         check the connection",
  "HELP LEAV                 leave and close the connection",
  "HELP HELP                 this list",
  "HELP END",
];

/** Longest name, in characters. */
export const MAX_NAME_LENGTH = 32;
const NAME_PATTERN = /^[A-Za-z0-9_-]+$/;

/**
 * Why `name` cannot be claimed, or `undefined` when it can.
 *
 * @example
 * ```ts
 * nameProblem("alice"); // undefined
 * nameProblem("a*b");   // "may contain only A-Z a-z 0-9 _ -"
 * ```
 */
export function nameProblem(name: string): string | undefined {
  if (name.length < 1 || name.length > MAX_NAME_LENGTH) {
    return `must be 1 to ${MAX_NAME_LENGTH} characters`;
  }
  if (!NAME_PATTERN.test(name)) return "may contain only A-Z a-z 0-9 _ -";
  return undefined;
}

/** Longest room name after its `#`, in characters. */
export const MAX_ROOM_LENGTH = 32;

/** True when `word` names a room (starts with `#`), valid or not. */
export function isRoomName(word: string): boolean {
  return word.charCodeAt(0) === 35;
}

/**
 * Why `room` is not a valid room name, or `undefined` when it is: `#` and 1–32 of
 * `A-Z a-z 0-9 _ -`.
 */
export function roomProblem(room: string): string | undefined {
  if (!isRoomName(room)) return "must start with #";
  if (room.length < 2 || room.length > MAX_ROOM_LENGTH + 1) {
    return `must be # and 1 to ${MAX_ROOM_LENGTH} characters`;
  }
  if (!NAME_PATTERN.test(room.slice(1))) return "may contain only A-Z a-z 0-9 _ - after #";
  return undefined;
}

/** The form in which names are compared: case-insensitive. */
export function nameKey(name: string): string {
  return name.toLowerCase();
}

/** A line split into its verb and the rest, with the separating space removed. */
export interface Command {
  /** Upper-cased. */
  verb: string;
  /** Everything after the first space, exactly as sent. */
  rest: string;
}

/** Splits a line (without its line ending) into verb and rest. */
export function splitCommand(line: string): Command {
  const space = line.indexOf(" ");
  const verb = space === -1 ? line : line.slice(0, space);
  return { verb: upperAscii(verb), rest: space === -1 ? "" : line.slice(space + 1) };
}

/** Upper-cases ASCII letters only, so that no Unicode case rule turns `joın` into `JOIN`. */
function upperAscii(text: string): string {
  // Most verbs arrive upper-case already: check before building a new string.
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 97 && code <= 122) return text.replace(/[a-z]+/g, (x) => x.toUpperCase());
  }
  return text;
}

/** Splits `rest` at its first space: `"bob hi there"` → `["bob", "hi there"]`. */
export function splitFirst(rest: string): [string, string] {
  const space = rest.indexOf(" ");
  if (space === -1) return [rest, ""];
  return [rest.slice(0, space), rest.slice(space + 1)];
}
