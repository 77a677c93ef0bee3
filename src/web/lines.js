// The chat protocol as the page reads it: server lines to events, error codes to sentences,
// and the reconnect delay. Pure functions, no DOM, so that `deno test` can load this module.

/**
 * One server line (without its LF) as an event with a `kind`. Events of a room carry `room`:
 * `*` for the lobby, `#name` for a named room.
 * @param {string} line
 */
export function parseLine(line) {
  const space = line.indexOf(" ");
  const verb = (space === -1 ? line : line.slice(0, space)).toUpperCase();
  const rest = space === -1 ? "" : line.slice(space + 1);
  const [first, second] = splitFirst(rest);
  switch (verb) {
    case "HELLO":
      return { kind: "hello", line };
    case "OK":
      if (first === "JOIN") {
        return isRoom(second)
          ? { kind: "entered", room: second }
          : { kind: "joined-as", name: second };
      }
      if (first === "PART" && isRoom(second)) return { kind: "parted", room: second };
      return { kind: "other", line };
    case "USERS": {
      // `USERS <count> <names…>` (the lobby) or `USERS #room <count> <names…>`.
      const [room, counted] = isRoom(first) ? [first, second] : ["*", rest];
      const names = splitFirst(counted)[1];
      return { kind: "users", room, names: names === "" ? [] : names.split(" ") };
    }
    case "JOINED":
      return isRoom(first)
        ? { kind: "joined", room: first, name: second }
        : { kind: "joined", room: "*", name: rest };
    case "LEFT":
      return isRoom(first)
        ? { kind: "left", room: first, name: second }
        : { kind: "left", room: "*", name: rest };
    case "FROM":
      return { kind: "direct", sender: first, text: second };
    case "ALL":
      return { kind: "message", room: "*", sender: first, text: second };
    case "ROOM": {
      if (!isRoom(first)) return { kind: "other", line };
      const [sender, text] = splitFirst(second);
      return { kind: "message", room: first, sender, text };
    }
    case "HISTORY": {
      // `HISTORY <room> <time> <sender> <text>`, ended by `HISTORY <room> END`.
      if (first !== "*" && !isRoom(first)) return { kind: "other", line };
      if (second === "END") return { kind: "history-end", room: first };
      const [time, after] = splitFirst(second);
      const [sender, text] = splitFirst(after);
      if (sender === "") return { kind: "other", line };
      return { kind: "history", room: first, time, sender, text };
    }
    case "ROOMS": {
      // `ROOMS <count> #a=3 #b=12 …`
      const rooms = [];
      for (const item of second === "" ? [] : second.split(" ")) {
        const equals = item.lastIndexOf("=");
        const room = equals === -1 ? item : item.slice(0, equals);
        const count = equals === -1 ? NaN : Number(item.slice(equals + 1));
        if (isRoom(room) && Number.isInteger(count)) rooms.push({ room, count });
      }
      return { kind: "rooms", rooms };
    }
    case "BYE":
      return { kind: "bye", reason: rest };
    case "ERR":
      return { kind: "error", code: first, detail: second };
    case "PONG":
      return { kind: "pong" };
    default:
      return { kind: "other", line };
  }
}

/** The rule for a room's name: `#` and 1 to 32 of `A-Z a-z 0-9 _ -`. */
const ROOM_NAME = /^#[A-Za-z0-9_-]{1,32}$/;

/**
 * True when `text` is a valid room name such as `#tea`.
 * @param {string} text
 */
export function isRoom(text) {
  return ROOM_NAME.test(text);
}

/**
 * `text` cut at its first space: the word before and the rest after it.
 * @param {string} text
 * @returns {[string, string]}
 */
function splitFirst(text) {
  const space = text.indexOf(" ");
  return space === -1 ? [text, ""] : [text.slice(0, space), text.slice(space + 1)];
}

/** What each error code means to a person; `detail` is what followed the code. */
const ERRORS = {
  BAD_COMMAND: (detail) => `The server did not understand ${detail || "that"}.`,
  BAD_NAME: (detail) =>
    `That name cannot be used: it ${detail || "is invalid"}. ` +
    "Use 1 to 32 letters, digits, _ or -.",
  NAME_TAKEN: (detail) => `The name ${detail || "you chose"} is taken. Choose another.`,
  ALREADY_JOINED: (detail) => `You have already joined as ${detail}.`,
  NOT_JOINED: () => "You have not joined yet.",
  NO_SUCH_USER: (detail) => `Nobody is called ${detail}: the message was not delivered.`,
  SERVER_FULL: () => "The server is full. Try again later.",
  LINE_TOO_LONG: () => "That message is too long: it was not sent.",
  BAD_ENCODING: () => "That message is not valid text: it was not sent.",
  BAD_TEXT: () => "That message holds control characters: it was not sent.",
  TIMEOUT: () => "You took too long to choose a name.",
  SLOW_CONSUMER: () => "The server dropped this page for not reading fast enough.",
  BAD_ROOM: (detail) =>
    `That room name cannot be used: it ${detail || "is invalid"}. ` +
    "Use # and 1 to 32 letters, digits, _ or -.",
  NOT_IN_ROOM: (detail) => `You are not in ${detail || "that room"}.`,
  ALREADY_IN_ROOM: (detail) => `You are already in ${detail || "that room"}.`,
  TOO_MANY_ROOMS: (detail) =>
    detail === "server"
      ? "The server holds as many rooms as it may: join an existing one."
      : `You are in as many rooms as you may (${detail}): leave one first.`,
  CLUSTER_UNAVAILABLE: (detail) =>
    detail === "*" || String(detail ?? "").startsWith("#")
      ? `The other servers cannot be reached right now: your line in ${
        detail === "*" ? "the lobby" : detail
      } reached only this server's users.`
      : `The other servers cannot be reached right now${
        detail ? ` (${detail})` : ""
      }: that was not sent or done. Try again shortly.`,
  NAME_LOST: (detail) => `Your name ${detail} went to a user on another server after an outage.`,
};

/**
 * A sentence for `ERR <code> <detail>`.
 * @param {string} code
 * @param {string} detail
 */
export function describeError(code, detail) {
  const describe = Object.hasOwn(ERRORS, code) ? ERRORS[code] : undefined;
  return describe ? describe(detail) : `Error ${code}${detail ? `: ${detail}` : ""}.`;
}

/**
 * Milliseconds to wait before reconnect attempt `attempt` (0 first): 0.5 s doubling up to
 * 10 s, each spread by ±25% so that pages cut off together do not all come back together.
 * @param {number} attempt
 * @param {number} random a number in [0, 1), Math.random() in the page
 */
export function reconnectDelay(attempt, random) {
  const base = Math.min(10_000, 500 * 2 ** Math.min(attempt, 10));
  return Math.round(base * (0.75 + random / 2));
}

/** The longest line the server takes by default (`--max-line-bytes`). */
export const MAX_LINE_BYTES = 4096;
