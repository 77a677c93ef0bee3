/**
 * The load generator's IRC dialect, so that the same scenarios run against ngircd: register
 * (NICK/USER, wait for 001), JOIN #bench (wait for 366, the end of NAMES), PRIVMSG to a nick
 * or the channel, answer PING; and reading `:nick!user@host PRIVMSG target :text` lines.
 *
 * @module
 */
import type { Protocol } from "./_messages.ts";
import { connectAndJoin, TcpClient, type TcpClientOptions } from "./_tcp_client.ts";

/** The channel that plays chatd's one room. */
export const CHANNEL = "#bench";

const COLON = 58;

/** What a line other than a delivery is, as far as the load generator cares. */
export type IrcLine =
  | { kind: "ping"; token: string }
  /** A three-digit reply; `error` for 4xx and 5xx. */
  | { kind: "numeric"; code: string; error: boolean }
  /** `:nick!user@host JOIN #channel` */
  | { kind: "join"; nick: string }
  /** Other commands from users or the server that need no answer (PART, QUIT, MODE ...). */
  | { kind: "notice"; command: string }
  /** `ERROR :...`: the server is closing the connection. */
  | { kind: "error"; text: string }
  | { kind: "unknown" };

/**
 * Where the text of a `:prefix PRIVMSG target :text` line starts within `text[start, end)`,
 * or -1 when the line is something else. Works in place: no slice, no array.
 */
export function privmsgTextStart(text: string, start: number, end: number): number {
  if (text.charCodeAt(start) !== COLON) return -1;
  const space = text.indexOf(" ", start);
  if (space === -1 || space >= end || !text.startsWith("PRIVMSG ", space + 1)) return -1;
  const colon = text.indexOf(" :", space + 9);
  return colon === -1 || colon + 2 > end ? -1 : colon + 2;
}

/** The nick of a `:nick!user@host JOIN #channel` line in `text[start, end)`, or undefined. */
export function joinNick(text: string, start: number, end: number): string | undefined {
  if (text.charCodeAt(start) !== COLON) return undefined;
  const space = text.indexOf(" ", start);
  if (space === -1 || space >= end || !text.startsWith("JOIN ", space + 1)) return undefined;
  const bang = text.indexOf("!", start);
  return text.slice(start + 1, bang === -1 || bang > space ? space : bang);
}

/** Classifies one line (without its CR LF) that is not a PRIVMSG delivery. */
export function classifyIrcLine(line: string): IrcLine {
  let rest = line;
  let nick = "";
  if (rest.charCodeAt(0) === COLON) {
    const space = rest.indexOf(" ");
    if (space === -1) return { kind: "unknown" };
    const prefix = rest.slice(1, space);
    const bang = prefix.indexOf("!");
    nick = bang === -1 ? prefix : prefix.slice(0, bang);
    rest = rest.slice(space + 1);
  }
  const space = rest.indexOf(" ");
  const command = (space === -1 ? rest : rest.slice(0, space)).toUpperCase();
  const params = space === -1 ? "" : rest.slice(space + 1);
  if (/^\d{3}$/.test(command)) {
    return { kind: "numeric", code: command, error: command[0] === "4" || command[0] === "5" };
  }
  switch (command) {
    case "PING":
      return { kind: "ping", token: params.startsWith(":") ? params.slice(1) : params };
    case "JOIN":
      return nick === "" ? { kind: "unknown" } : { kind: "join", nick };
    case "ERROR":
      return { kind: "error", text: params.startsWith(":") ? params.slice(1) : params };
    case "PART":
    case "QUIT":
    case "NICK":
    case "MODE":
    case "NOTICE":
    case "TOPIC":
    case "PONG":
      return { kind: "notice", command };
    default:
      return { kind: "unknown" };
  }
}

/** What {@linkcode handleIrcLine} needs of a client (a fake in tests). */
export type IrcPeer = Pick<TcpClient, "send" | "answer" | "joined">;

/**
 * Handles a line that is not a delivery for a client in IRC mode: answers PING, hands the
 * replies a set-up step waits for (001, 366, and any error before that) to
 * {@linkcode TcpClient.reply}, and ignores the rest of the registration burst.
 *
 * @returns `error` for an error to count (an error reply once joined, `ERROR`), `unexpected`
 * for a line outside the protocol, else `ok`.
 */
export function handleIrcLine(client: IrcPeer, line: string): "ok" | "error" | "unexpected" {
  const parsed = classifyIrcLine(line);
  switch (parsed.kind) {
    case "ping":
      client.send(`PONG :${parsed.token}\r\n`);
      return "ok";
    case "numeric":
      if (parsed.code === "001" || parsed.code === "366") client.answer(line);
      else if (parsed.error) {
        if (!client.joined) client.answer(line);
        else return "error";
      }
      return "ok";
    case "join":
    case "notice":
      return "ok";
    case "error":
      if (!client.joined) client.answer(line);
      return "error";
    case "unknown":
      return "unexpected";
  }
}

/** Waits for the next reply and checks that its numeric is `code`. */
async function expectNumeric(client: TcpClient, code: string, timeoutMs?: number): Promise<void> {
  const reply = await client.reply(timeoutMs);
  if (classifyIrcLine(reply).kind !== "numeric" || !reply.includes(` ${code} `)) {
    throw new Error(`Expected ${code}, got ${reply.slice(0, 120)}`);
  }
}

/**
 * Connects, registers as `nick` and, with `channel`, joins it and waits for the end of its
 * NAMES list.
 *
 * @throws {Error} with the server's reply when it refuses, or after the reply timeout.
 */
export async function ircConnect(
  options: TcpClientOptions,
  nick: string,
  channel?: string,
): Promise<TcpClient> {
  const client = await TcpClient.connect(options);
  client.name = nick;
  try {
    client.send(`NICK ${nick}\r\nUSER ${nick} 0 * :${nick}\r\n`);
    await expectNumeric(client, "001", options.replyTimeoutMs);
    if (channel !== undefined) {
      client.send(`JOIN ${channel}\r\n`);
      await expectNumeric(client, "366", options.replyTimeoutMs);
    }
    client.joined = true;
    return client;
  } catch (error: unknown) {
    client.close();
    throw error;
  }
}

/**
 * Connects as `name` in either protocol: chatd JOINs (everyone joined is in its one room);
 * IRC registers and, with `room`, joins {@linkcode CHANNEL}.
 */
export function connectAs(
  options: TcpClientOptions,
  protocol: Protocol,
  name: string,
  room: boolean,
): Promise<TcpClient> {
  return protocol === "irc"
    ? ircConnect(options, name, room ? CHANNEL : undefined)
    : connectAndJoin(options, name);
}
