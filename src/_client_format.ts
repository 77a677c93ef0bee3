/**
 * What the terminal client shows and what it reads: server lines turned into text a person
 * reads, with every control character escaped, and typed lines turned into commands. Pure
 * functions and tables, without I/O.
 *
 * @module
 */
import { type ErrorCode, splitCommand, splitFirst } from "./protocol.ts";

/** The client's own commands, as `/help` shows them. */
export const CLIENT_HELP: readonly string[] = [
  "commands:",
  "  <text>               send <text> to everyone in the room",
  "  /msg <name> <text>   send <text> to <name> only",
  "  /who                 list the users",
  "  /join #room          enter a room; typed lines go there",
  "  /part [#room]        leave a room (the current one); typed lines go to the lobby",
  "  /rooms               list the rooms",
  "  /who #room           list the users in a room",
  "  /help                this list",
  "  /quit or exit        leave (Ctrl-D and Ctrl-C too)",
  "  //text               send /text to the room",
];

// C0 and C1 controls, DEL, the line and paragraph separators and the bidi overrides: each
// could move the cursor, recolour the terminal or reorder what the user reads.
// deno-lint-ignore no-control-regex
const UNSHOWABLE = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * `text` with every control character written out as an escape (`\x1b`), and TAB as a space,
 * so that it cannot drive the terminal.
 *
 * @example
 * ```ts
 * showable("hi\x1b[2J"); // "hi\\x1b[2J"
 * ```
 */
export function showable(text: string): string {
  return text.replace(UNSHOWABLE, (char) => {
    if (char === "\t") return " ";
    const code = char.charCodeAt(0);
    return code <= 0xff
      ? `\\x${code.toString(16).padStart(2, "0")}`
      : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/**
 * What each error code means to a person; `detail` is what followed the code. Keyed by
 * {@linkcode ErrorCode} so that the compiler checks every code has a message; a newer
 * server's codes, which it cannot know, {@linkcode formatError} shows as they are.
 */
const ERROR_MESSAGES: Readonly<Record<ErrorCode, (detail: string) => string>> = {
  BAD_COMMAND: (detail) => `the server did not understand ${detail || "that"}`,
  BAD_NAME: (detail) => `that name cannot be used: ${detail || "invalid"}`,
  NAME_TAKEN: (detail) => `the name ${detail || "you chose"} is taken`,
  ALREADY_JOINED: (detail) => `you have already joined as ${detail}`,
  NOT_JOINED: () => "you have not joined yet",
  NO_SUCH_USER: (detail) => `no such user: ${detail}`,
  SERVER_FULL: () => "the server is full",
  LINE_TOO_LONG: () => "that line is too long",
  BAD_ENCODING: () => "that line is not valid UTF-8",
  BAD_TEXT: (detail) => `message refused: ${detail || "invalid text"}`,
  TIMEOUT: (detail) => `timed out: ${detail || "too slow"}`,
  SLOW_CONSUMER: () => "dropped by the server for not reading fast enough",
  BAD_ROOM: (detail) => `that room name cannot be used: ${detail || "invalid"}`,
  NOT_IN_ROOM: (detail) => `you are not in ${detail || "that room"}`,
  ALREADY_IN_ROOM: (detail) => `you are already in ${detail}`,
  TOO_MANY_ROOMS: (detail) =>
    detail === "server" ? "the server has too many rooms" : `you are in too many rooms (${detail})`,
  CLUSTER_UNAVAILABLE: (detail) =>
    detail === "*" || detail.startsWith("#")
      ? `the other servers cannot be reached now: your line in ${
        detail === "*" ? "the lobby" : detail
      } reached only this server's users`
      : `the other servers cannot be reached now${detail ? ` (${detail})` : ""}; try again`,
  NAME_LOST: (detail) =>
    `your name ${detail} went to a user on another server after an outage; you were disconnected`,
};

function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_MESSAGES, code);
}

function formatError(rest: string): string {
  const [code, detail] = splitFirst(rest);
  const message = isErrorCode(code)
    ? ERROR_MESSAGES[code](detail)
    : `error ${code}${detail === "" ? "" : `: ${detail}`}`;
  return `! ${message}`;
}

function formatUsers(rest: string): string {
  const [first, after] = splitFirst(rest);
  const room = first.startsWith("#") ? ` in ${first}` : "";
  const [count, names] = room === "" ? [first, after] : splitFirst(after);
  return `* users${room} (${count}): ${names === "" ? "nobody" : names.split(" ").join(", ")}`;
}

function formatRooms(rest: string): string {
  const [count, rooms] = splitFirst(rest);
  if (rooms === "") return `* rooms (${count}): none`;
  return `* rooms (${count}): ${
    rooms.split(" ").map((room) => room.replace("=", " (") + ")").join(", ")
  }`;
}

/** Dim, and back to normal intensity: history is shown dimmed. */
const DIM = "\x1b[2m";
const UNDIM = "\x1b[22m";

/** `HISTORY <room> <time> <sender> <text>`, shown dimmed with its time (UTC, to the minute). */
function formatHistory(rest: string): string | undefined {
  const [room, after] = splitFirst(rest);
  if (after === "END") return undefined;
  const [time, said] = splitFirst(after);
  const [sender, text] = splitFirst(said);
  const minute = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d)/.exec(time);
  const when = minute ? `${minute[1]} ${minute[2]}` : time;
  const where = room === "*" ? "" : `[${room}] `;
  return DIM + showable(`${where}[${when}] ${sender}: ${text}`) + UNDIM;
}

/**
 * What to show for one server line (without its LF), or `undefined` for a line that shows
 * nothing. The result holds no control characters, whatever the server sent.
 *
 * @example
 * ```ts
 * formatServerLine("ALL alice hi");            // "alice: hi"
 * formatServerLine("FROM alice psst");         // "[alice → you] psst"
 * formatServerLine("ERR NO_SUCH_USER bob");    // "! no such user: bob"
 * ```
 */
export function formatServerLine(line: string): string | undefined {
  if (line === "") return undefined;
  const { verb, rest } = splitCommand(line);
  const [first, second] = splitFirst(rest);
  let shown: string | undefined;
  switch (verb) {
    case "HELLO":
      shown = `* connected to ${first} ${splitFirst(second)[0]}`.trimEnd();
      break;
    case "OK":
      shown = first === "JOIN" && second.startsWith("#")
        ? `* you are in ${second}; typed lines go there`
        : first === "JOIN"
        ? `* you joined as ${second}; /help lists the commands`
        : first === "PART"
        ? `* you left ${second}`
        : `* ok`;
      break;
    case "ROOM": {
      const [sender, text] = splitFirst(second);
      shown = `[${first}] ${sender}: ${text}`;
      break;
    }
    case "HISTORY":
      return formatHistory(rest);
    case "ROOMS":
      shown = formatRooms(rest);
      break;
    case "ALL":
      shown = `${first}: ${second}`;
      break;
    case "FROM":
      shown = `[${first} → you] ${second}`;
      break;
    case "JOINED":
      shown = first.startsWith("#") ? `* ${second} joined ${first}` : `* ${rest} joined`;
      break;
    case "LEFT":
      shown = first.startsWith("#") ? `* ${second} left ${first}` : `* ${rest} left`;
      break;
    case "USERS":
      shown = formatUsers(rest);
      break;
    case "HELP":
      shown = rest === "END" ? undefined : rest;
      break;
    case "PONG":
      shown = `* pong ${rest}`.trimEnd();
      break;
    case "BYE":
      shown = rest === "" ? "* bye" : `* the server says goodbye: ${rest}`;
      break;
    case "ERR":
      shown = formatError(rest);
      break;
    default:
      shown = line;
  }
  return shown === undefined ? undefined : showable(shown);
}

/** What a typed line asks for. */
export type UserCommand =
  | { kind: "room"; text: string }
  | { kind: "direct"; to: string; text: string }
  | { kind: "who"; room?: string }
  | { kind: "join"; room: string }
  | { kind: "part"; room?: string }
  | { kind: "rooms" }
  | { kind: "help" }
  | { kind: "quit" }
  | { kind: "nothing" }
  | { kind: "mistake"; message: string };

/**
 * Reads one typed line (without its line ending) as a command.
 *
 * @example
 * ```ts
 * parseUserLine("/msg bob hi"); // { kind: "direct", to: "bob", text: "hi" }
 * parseUserLine("hello");       // { kind: "room", text: "hello" }
 * ```
 */
export function parseUserLine(line: string): UserCommand {
  if (line.trim() === "") return { kind: "nothing" };
  if (line.trim() === "exit") return { kind: "quit" };
  if (line.startsWith("//")) return { kind: "room", text: line.slice(1) };
  if (!line.startsWith("/")) return { kind: "room", text: line };
  const [command, rest] = splitFirst(line.trimEnd());
  switch (command) {
    case "/msg": {
      const [to, text] = splitFirst(rest.trimStart());
      if (to === "" || text.trim() === "") {
        return { kind: "mistake", message: "usage: /msg <name> <text>" };
      }
      return { kind: "direct", to, text };
    }
    case "/who":
      return rest.trim() === "" ? { kind: "who" } : { kind: "who", room: rest.trim() };
    case "/join": {
      const room = rest.trim();
      if (!room.startsWith("#") || room.includes(" ")) {
        return { kind: "mistake", message: "usage: /join #room" };
      }
      return { kind: "join", room };
    }
    case "/part": {
      const room = rest.trim();
      if (room === "") return { kind: "part" };
      if (!room.startsWith("#") || room.includes(" ")) {
        return { kind: "mistake", message: "usage: /part [#room]" };
      }
      return { kind: "part", room };
    }
    case "/rooms":
      return { kind: "rooms" };
    case "/help":
      return { kind: "help" };
    case "/quit":
      return { kind: "quit" };
    default:
      return { kind: "mistake", message: `unknown command ${command}; /help lists the commands` };
  }
}

// East Asian Wide and Fullwidth blocks and the emoji blocks, which terminals draw two cells
// wide. Not all of Unicode's table; enough for CJK, Hangul, fullwidth forms and emoji.
const WIDE_RANGES: readonly (readonly [number, number])[] = [
  [0x1100, 0x115f],
  [0x231a, 0x231b],
  [0x2329, 0x232a],
  [0x23e9, 0x23ec],
  [0x2e80, 0x303e],
  [0x3041, 0x33ff],
  [0x3400, 0x4dbf],
  [0x4e00, 0x9fff],
  [0xa000, 0xa4cf],
  [0xa960, 0xa97f],
  [0xac00, 0xd7a3],
  [0xf900, 0xfaff],
  [0xfe10, 0xfe19],
  [0xfe30, 0xfe6f],
  [0xff00, 0xff60],
  [0xffe0, 0xffe6],
  [0x1f300, 0x1f64f],
  [0x1f900, 0x1f9ff],
  [0x20000, 0x3fffd],
];

const ZERO_WIDTH = /^[\p{Mn}\p{Me}\u200b-\u200f\u2060-\u2064\ufeff]$/u;

/**
 * How many terminal cells `char` (one code point) takes: 0 for combining marks and
 * zero-width characters, 2 for wide (CJK, Hangul, fullwidth, emoji), otherwise 1.
 *
 * @example
 * ```ts
 * cellWidth("a");  // 1
 * cellWidth("日"); // 2
 * ```
 */
export function cellWidth(char: string): 0 | 1 | 2 {
  const code = char.codePointAt(0) ?? 0;
  if (code < 0x300) return 1;
  if (ZERO_WIDTH.test(char)) return 0;
  for (const [low, high] of WIDE_RANGES) {
    if (code < low) return 1;
    if (code <= high) return 2;
  }
  return 1;
}

/** A place on the screen relative to where some text started: row, and cell in that row. */
export interface ScreenPosition {
  row: number;
  column: number;
}

/**
 * Where the cursor stands after `text` (no control characters) is written from `from` on a
 * terminal `columns` cells wide. A row filled to its last cell puts the cursor at column 0 of
 * the next row; a wide character that does not fit in a row's last cell moves to the next row,
 * as terminals draw it. Costs one step per code point of `text`.
 *
 * @example
 * ```ts
 * advance({ row: 0, column: 0 }, "x".repeat(100), 80); // { row: 1, column: 20 }
 * ```
 */
export function advance(from: ScreenPosition, text: string, columns: number): ScreenPosition {
  let { row, column } = from;
  for (const char of text) {
    const width = cellWidth(char);
    if (width === 2 && column === columns - 1) {
      row++;
      column = 0;
    }
    column += width;
    if (column >= columns) {
      row++;
      column -= columns;
    }
  }
  return { row, column };
}
