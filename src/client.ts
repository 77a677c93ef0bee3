/**
 * The interactive terminal client, `chatd client`: asks for a name, then sends each typed
 * line to the room and shows what the server sends, without garbling the line being typed.
 *
 * Everything that happens — a typed line, a server line, the end of either stream, Ctrl-C,
 * the `/quit` deadline — becomes one {@linkcode ClientEvent} in one queue, and one loop
 * handles them in order, so the client's state changes in one place.
 *
 * @module
 */
import process from "node:process";
import * as readline from "node:readline";
import { LineSplitter } from "./_line_reader.ts";
import { MAX_LINE_BYTES_LIMIT } from "./config.ts";
import { ROOM, splitCommand, splitFirst } from "./protocol.ts";

/** Options of {@linkcode runClient}. */
export interface ClientOptions {
  /** The server's address. */
  host: string;
  /** The server's TCP port. */
  port: number;
  /** The name to join with; when undefined, or when the server refuses it, the user is asked. */
  name: string | undefined;
  /** How long `/quit` waits for the server's `BYE`, in milliseconds. Default 2000. */
  leaveTimeoutMs?: number;
}

const NAME_PROMPT = "Enter your name: ";
const CHAT_PROMPT = "> ";
const DEFAULT_LEAVE_TIMEOUT_MS = 2000;
// Generous: a server line is a client line plus a short prefix, and a client line is at most
// MAX_LINE_BYTES_LIMIT.
const MAX_SERVER_LINE_BYTES = 2 * MAX_LINE_BYTES_LIMIT;

/** The client's own commands, as `/help` shows them. */
export const CLIENT_HELP: readonly string[] = [
  "commands:",
  "  <text>               send <text> to everyone in the room",
  "  /msg <name> <text>   send <text> to <name> only",
  "  /who                 list the users",
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
 * string, not {@linkcode ErrorCode}: a client may meet a newer server's codes, and the
 * client tests check that every code of this version has a message.
 */
const ERROR_MESSAGES: Readonly<Record<string, (detail: string) => string>> = {
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
};

function formatError(rest: string): string {
  const [code, detail] = splitFirst(rest);
  const message = Object.hasOwn(ERROR_MESSAGES, code)
    ? ERROR_MESSAGES[code]!(detail)
    : `error ${code}${detail === "" ? "" : `: ${detail}`}`;
  return `! ${message}`;
}

function formatUsers(rest: string): string {
  const [count, names] = splitFirst(rest);
  return `* users (${count}): ${names === "" ? "nobody" : names.split(" ").join(", ")}`;
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
      shown = first === "JOIN" ? `* you joined as ${second}; /help lists the commands` : `* ok`;
      break;
    case "ALL":
      shown = `${first}: ${second}`;
      break;
    case "FROM":
      shown = `[${first} → you] ${second}`;
      break;
    case "JOINED":
      shown = `* ${rest} joined`;
      break;
    case "LEFT":
      shown = `* ${rest} left`;
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
  | { kind: "who" }
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
      return { kind: "who" };
    case "/help":
      return { kind: "help" };
    case "/quit":
      return { kind: "quit" };
    default:
      return { kind: "mistake", message: `unknown command ${command}; /help lists the commands` };
  }
}

/** Everything the client reacts to, in the order it happened. */
type ClientEvent =
  | { kind: "typed"; line: string }
  /** Standard input ended: Ctrl-D, or the end of a pipe. */
  | { kind: "typing-ended" }
  /** Ctrl-C at the terminal. */
  | { kind: "interrupted" }
  | { kind: "received"; line: string }
  | { kind: "line-too-long" }
  | { kind: "disconnected" }
  | { kind: "leave-timed-out" };

/** A queue whose reader can leave some events for later (typed lines while joining). */
class EventQueue {
  readonly #events: ClientEvent[] = [];
  #wake: (() => void) | undefined;

  push(event: ClientEvent): void {
    this.#events.push(event);
    this.#wake?.();
  }

  /** The first queued event that `accept` takes, waiting for one if need be. */
  async next(accept: (event: ClientEvent) => boolean): Promise<ClientEvent> {
    for (;;) {
      const index = this.#events.findIndex(accept);
      if (index !== -1) return this.#events.splice(index, 1)[0]!;
      await new Promise<void>((resolve) => this.#wake = resolve);
      this.#wake = undefined;
    }
  }
}

/** Reads server lines into `events` until the connection ends. */
async function readServer(conn: Deno.Conn, events: EventQueue): Promise<void> {
  const decoder = new TextDecoder();
  const splitter = new LineSplitter(MAX_SERVER_LINE_BYTES);
  const sink = {
    line: (bytes: Uint8Array) => events.push({ kind: "received", line: decoder.decode(bytes) }),
    tooLong: () => events.push({ kind: "line-too-long" }),
  };
  const buffer = new Uint8Array(65536);
  try {
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) break;
      splitter.push(buffer.subarray(0, n), sink);
    }
  } catch {
    // A reset ends the connection as surely as EOF does.
  }
  events.push({ kind: "disconnected" });
}

/** The terminal: a readline prompt above which incoming lines are printed. */
class Terminal {
  readonly #rl: readline.Interface;
  readonly #interactive: boolean;
  #prompting = false;

  constructor(events: EventQueue) {
    this.#interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY);
    this.#rl = readline.createInterface({
      input: process.stdin,
      output: process.stdout,
      terminal: this.#interactive,
    });
    this.#rl.on("line", (line) => {
      // Now, not when the line is handled: keys typed meanwhile must land after a prompt.
      if (this.#prompting && this.#interactive) this.#rl.prompt();
      events.push({ kind: "typed", line });
    });
    this.#rl.on("close", () => events.push({ kind: "typing-ended" }));
    this.#rl.on("SIGINT", () => events.push({ kind: "interrupted" }));
  }

  /** Shows `prompt` and keeps redrawing it, with any half-typed input, below new lines. */
  prompt(prompt: string): void {
    this.#rl.setPrompt(prompt);
    this.#prompting = true;
    if (this.#interactive) this.#rl.prompt(true);
  }

  /** Takes the prompt away until the next {@linkcode prompt}. */
  stopPrompting(): void {
    this.#clearInputLine();
    this.#prompting = false;
  }

  /** Prints `text` on its own line(s) above the prompt and the input being typed. */
  show(text: string): void {
    this.#clearInputLine();
    process.stdout.write(text + "\n");
    if (this.#prompting && this.#interactive) this.#rl.prompt(true);
  }

  /** Prints `message` on stderr, as the last thing before exiting. */
  fail(message: string): void {
    this.#clearInputLine();
    process.stderr.write(`chatd client: ${message}\n`);
  }

  close(): void {
    this.#rl.close();
  }

  #clearInputLine(): void {
    if (!this.#interactive || !this.#prompting) return;
    readline.clearLine(process.stdout, 0);
    readline.cursorTo(process.stdout, 0);
  }
}

type Phase = "greeting" | "asking-name" | "joining" | "chatting" | "leaving";

/** One connection's conversation: the state machine behind {@linkcode runClient}. */
class ChatSession {
  readonly #conn: Deno.Conn;
  readonly #terminal: Terminal;
  readonly #events: EventQueue;
  readonly #options: ClientOptions;
  readonly #encoder = new TextEncoder();
  #phase: Phase = "greeting";
  #exitCode: number | undefined;
  #leaveTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(conn: Deno.Conn, terminal: Terminal, events: EventQueue, options: ClientOptions) {
    this.#conn = conn;
    this.#terminal = terminal;
    this.#events = events;
    this.#options = options;
  }

  /** Handles events until the session ends; returns the exit code. */
  async run(): Promise<number> {
    try {
      while (this.#exitCode === undefined) {
        const event = await this.#events.next((event) => this.#accepts(event));
        await this.#handle(event);
      }
      return this.#exitCode;
    } finally {
      clearTimeout(this.#leaveTimer);
    }
  }

  // Typed lines wait while no prompt is up, so a piped script's lines go where they belong.
  #accepts(event: ClientEvent): boolean {
    const waiting = this.#phase === "greeting" || this.#phase === "joining" ||
      this.#phase === "leaving";
    return !(waiting && (event.kind === "typed" || event.kind === "typing-ended"));
  }

  async #handle(event: ClientEvent): Promise<void> {
    switch (event.kind) {
      case "typed":
        return this.#phase === "asking-name"
          ? await this.#typedName(event.line)
          : await this.#typedChat(event.line);
      case "typing-ended":
      case "interrupted":
        return await this.#leave();
      case "received":
        return await this.#received(event.line);
      case "line-too-long":
        return this.#terminal.show("! the server sent a line too long to show");
      case "disconnected":
        return this.#disconnected();
      case "leave-timed-out":
        this.#terminal.fail("no BYE from the server; leaving anyway");
        this.#exitCode = 0;
    }
  }

  async #received(line: string): Promise<void> {
    const { verb, rest } = splitCommand(line);
    if (verb === "BYE") return this.#bye(rest);
    const shown = formatServerLine(line);
    if (shown !== undefined) this.#terminal.show(shown);
    if (this.#phase === "greeting" && verb === "HELLO") return await this.#startJoining();
    if (this.#phase !== "joining") return;
    if (verb === "OK" && rest.startsWith("JOIN ")) {
      this.#phase = "chatting";
      this.#terminal.prompt(CHAT_PROMPT);
    } else if (verb === "ERR") {
      this.#askName();
    }
  }

  async #startJoining(): Promise<void> {
    const name = this.#options.name;
    if (name === undefined) this.#askName();
    else await this.#join(name);
  }

  #askName(): void {
    this.#phase = "asking-name";
    this.#terminal.prompt(NAME_PROMPT);
  }

  async #typedName(line: string): Promise<void> {
    if (line.trim() === "/quit") return await this.#leave();
    await this.#join(line.trim());
  }

  async #join(name: string): Promise<void> {
    this.#phase = "joining";
    this.#terminal.stopPrompting();
    await this.#send(`JOIN ${name}`);
  }

  async #typedChat(line: string): Promise<void> {
    const command = parseUserLine(line);
    switch (command.kind) {
      case "room":
        return await this.#send(`CHAT ${ROOM} ${command.text}`);
      case "direct":
        return await this.#send(`CHAT ${command.to} ${command.text}`);
      case "who":
        return await this.#send("WHO");
      case "help":
        return this.#terminal.show(CLIENT_HELP.join("\n"));
      case "quit":
        return await this.#leave();
      case "mistake":
        return this.#terminal.show(`! ${showable(command.message)}`);
      case "nothing":
        return;
    }
  }

  /** Says `LEAV` and waits, for a bounded time, for the server's `BYE`. */
  async #leave(): Promise<void> {
    if (this.#phase === "leaving") return;
    this.#phase = "leaving";
    this.#terminal.stopPrompting();
    this.#leaveTimer = setTimeout(
      () => this.#events.push({ kind: "leave-timed-out" }),
      this.#options.leaveTimeoutMs ?? DEFAULT_LEAVE_TIMEOUT_MS,
    );
    await this.#send("LEAV");
  }

  #bye(rest: string): void {
    if (this.#phase === "leaving") {
      this.#terminal.show("* bye");
      this.#exitCode = 0;
    } else {
      this.#terminal.fail(
        rest === "shutting down" ? "The server is shutting down" : "The server said goodbye",
      );
      this.#exitCode = 1;
    }
  }

  #disconnected(): void {
    if (this.#phase === "leaving") {
      this.#exitCode = 0;
      return;
    }
    this.#terminal.fail("The server closed the connection");
    this.#exitCode = 1;
  }

  async #send(line: string): Promise<void> {
    const bytes = this.#encoder.encode(line + "\n");
    try {
      for (let written = 0; written < bytes.length;) {
        written += await this.#conn.write(bytes.subarray(written));
      }
    } catch {
      // The reader sees the same broken connection and reports it.
    }
  }
}

async function connect(host: string, port: number): Promise<Deno.Conn | undefined> {
  try {
    return await Deno.connect({ hostname: host, port });
  } catch (error: unknown) {
    const why = error instanceof Deno.errors.ConnectionRefused
      ? "connection refused; is the server running?"
      : error instanceof Error
      ? error.message
      : String(error);
    console.error(`chatd client: Cannot connect to ${host}:${port}: ${why}`);
    return undefined;
  }
}

/**
 * Runs the interactive client on the terminal until the user quits or the server goes away.
 *
 * Returns 0 after `/quit`, `exit`, Ctrl-D or Ctrl-C (once the server said `BYE`, or after
 * `leaveTimeoutMs`); 1, with a message on stderr, when the server cannot be reached, shuts
 * down or closes the connection.
 *
 * @example
 * ```ts
 * Deno.exit(await runClient({ host: "127.0.0.1", port: 4321, name: undefined }));
 * ```
 */
export async function runClient(options: ClientOptions): Promise<number> {
  const conn = await connect(options.host, options.port);
  if (conn === undefined) return 1;
  const events = new EventQueue();
  readServer(conn, events);
  const terminal = new Terminal(events);
  try {
    return await new ChatSession(conn, terminal, events, options).run();
  } finally {
    terminal.close();
    conn.close();
  }
}
