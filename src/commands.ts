/**
 * The commands a client can send, as one table, and the one function that checks a line
 * against it before calling the handler.
 *
 * @module
 */
import { M } from "./counters.ts";
import {
  echoed,
  ErrorCode,
  hasControlCharacter,
  HELP_LINES,
  isRoomName,
  nameProblem,
  Reply,
  ROOM,
  roomProblem,
  splitCommand,
  splitFirst,
} from "./protocol.ts";

/** What a handler may do to its client and to the server. `Session` (session.ts) implements it. */
export interface Session {
  /** The joined name, or undefined before `JOIN` succeeds. */
  readonly name: string | undefined;
  /** Sends one line (LF included) to this client. */
  reply(line: string): void;
  /** Asks the directory for `name`; resolves once `OK JOIN` or the error was sent. */
  join(name: string): Promise<void>;
  /** Delivers `text` to `to`; false when no such user is known. */
  direct(to: string, text: string): boolean;
  /** Delivers `text` to every other joined user. */
  room(text: string): void;
  /** Every joined name, sorted. */
  users(): readonly string[];
  /** Says `BYE`, closes the connection and frees the name. */
  leave(): void;
  /** `JOIN #room` (a valid room name); resolves once its reply or error was sent. */
  enterRoom(room: string): void | Promise<void>;
  /** `PART #room`; a promise holds back the next line until the directory is told. */
  partRoom(room: string): void | Promise<void>;
  /** `CHAT #room text`. */
  roomChat(room: string, text: string): void;
  /** `WHO #room`. */
  roomWho(room: string): void;
  /** `ROOMS`. */
  roomList(): void;
  /** Injects a fault (tests only); false when fault injection is off. */
  fault(what: string): boolean;
}

/** One row of the command table. */
export interface CommandSpec {
  /** False for commands a client may send before it has joined. */
  needsJoin: boolean;
  /**
   * True when the handler refuses control characters in its argument itself, with an error of
   * its own (JOIN: `BAD_NAME`); for the others the dispatcher answers `BAD_TEXT`.
   */
  checksOwnArgument?: boolean;
  /** Handles the rest of the line after the verb; a promise holds back the client's next line. */
  handler: (session: Session, rest: string) => void | Promise<void>;
}

/** True when `text` holds a control character other than TAB. */
export { hasControlCharacter };

const CONTROL_CHARACTERS_REFUSED = "control characters are not allowed";

/** Replies `ERR BAD_ROOM` and returns false unless `room` is a valid room name. */
function validRoom(session: Session, room: string): boolean {
  const problem = roomProblem(room);
  if (problem === undefined) return true;
  session.reply(Reply.error(ErrorCode.BAD_ROOM, problem));
  return false;
}

/** Replies `ERR NOT_JOINED` and returns false before `JOIN <name>`. */
function joined(session: Session): boolean {
  if (session.name !== undefined) return true;
  session.reply(Reply.error(ErrorCode.NOT_JOINED));
  return false;
}

function join(session: Session, rest: string): void | Promise<void> {
  if (isRoomName(rest)) {
    if (!joined(session) || !validRoom(session, rest)) return;
    return session.enterRoom(rest);
  }
  if (session.name !== undefined) {
    return session.reply(Reply.error(ErrorCode.ALREADY_JOINED, session.name));
  }
  const problem = nameProblem(rest);
  if (problem !== undefined) return session.reply(Reply.error(ErrorCode.BAD_NAME, problem));
  return session.join(rest);
}

function chat(session: Session, rest: string): void {
  const [to, text] = splitFirst(rest);
  if (to === "" || text === "") {
    return session.reply(Reply.error(ErrorCode.BAD_COMMAND, "usage: CHAT <name> <text>"));
  }
  // The dispatcher has refused control characters anywhere in `rest` already.
  if (to === ROOM) return session.room(text);
  if (isRoomName(to)) {
    if (validRoom(session, to)) session.roomChat(to, text);
    return;
  }
  if (!session.direct(to, text)) session.reply(Reply.error(ErrorCode.NO_SUCH_USER, to));
}

/** Every command, by upper-case verb. */
export const COMMANDS: Readonly<Record<string, CommandSpec>> = {
  PING: { needsJoin: false, handler: (session, rest) => session.reply(Reply.pong(rest)) },
  HELP: {
    needsJoin: false,
    handler: (session) => session.reply(HELP_LINES.map((line) => line + "\n").join("")),
  },
  JOIN: { needsJoin: false, checksOwnArgument: true, handler: join },
  WHO: {
    needsJoin: false,
    handler: (session, rest) => {
      if (rest === "") return session.reply(Reply.users(session.users()));
      if (joined(session) && validRoom(session, rest)) session.roomWho(rest);
    },
  },
  PART: {
    needsJoin: true,
    handler: (session, rest) => validRoom(session, rest) ? session.partRoom(rest) : undefined,
  },
  ROOMS: { needsJoin: true, handler: (session) => session.roomList() },
  LEAV: { needsJoin: false, handler: (session) => session.leave() },
  CHAT: { needsJoin: true, handler: chat },
  // Hidden, and answered as an unknown verb unless CHATD_FAULTS=1 (see README).
  FAULT: {
    needsJoin: false,
    handler: (session, rest) => {
      if (!session.fault(rest)) session.reply(Reply.error(ErrorCode.BAD_COMMAND, "FAULT"));
    },
  },
};

/** Where each verb is counted in a thread's metrics row (see counters.ts). */
const RECEIVED: ReadonlyMap<string, number> = new Map([
  ["JOIN", M.received_join],
  ["CHAT", M.received_chat],
  ["WHO", M.received_who],
  ["PING", M.received_ping],
  ["LEAV", M.received_leav],
  ["HELP", M.received_help],
]);

/**
 * Runs one line (without its line ending) against the command table.
 *
 * @example
 * ```ts
 * dispatch(session, "ping hello"); // session.reply("PONG hello\n")
 * ```
 */
export function dispatch(
  session: Session,
  line: string,
  counts?: Float64Array,
): void | Promise<void> {
  if (line === "") return;
  const { verb, rest } = splitCommand(line);
  if (counts !== undefined) counts[RECEIVED.get(verb) ?? M.received_other]! += 1;
  const spec = COMMANDS[verb];
  if (spec === undefined) {
    return session.reply(Reply.error(ErrorCode.BAD_COMMAND, echoed(verb.slice(0, 32))));
  }
  if (spec.needsJoin && session.name === undefined) {
    return session.reply(Reply.error(ErrorCode.NOT_JOINED));
  }
  // Every argument, not only message text: a PING token or a CHAT name is echoed back.
  if (spec.checksOwnArgument !== true && hasControlCharacter(rest)) {
    return session.reply(Reply.error(ErrorCode.BAD_TEXT, CONTROL_CHARACTERS_REFUSED));
  }
  return spec.handler(session, rest);
}
