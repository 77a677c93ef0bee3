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
import { LineSplitter } from "./_line_reader.ts";
import { CLIENT_HELP, formatServerLine, parseUserLine, showable } from "./_client_format.ts";
import { Terminal, type TerminalEvent } from "./_terminal.ts";
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
  /** Connect with TLS, trusting the CA certificate in `caFile` (PEM) besides the system's. */
  tls?: { caFile: string | undefined };
  /** How long `/quit` waits for the server's `BYE`, in milliseconds. Default 2000. */
  leaveTimeoutMs?: number;
}

const NAME_PROMPT = "Enter your name: ";
const CHAT_PROMPT = "> ";
const DEFAULT_LEAVE_TIMEOUT_MS = 2000;
// Generous: a server line is a client line plus a short prefix, and a client line is at most
// MAX_LINE_BYTES_LIMIT.
const MAX_SERVER_LINE_BYTES = 2 * MAX_LINE_BYTES_LIMIT;

/** Everything the client reacts to, in the order it happened. */
type ClientEvent =
  | TerminalEvent
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
  /** Where typed lines go: the lobby (`*`) or the room last entered. */
  #current = ROOM;

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
    if (this.#phase === "chatting") return this.#roomChanged(verb, rest);
    if (this.#phase !== "joining") return;
    if (verb === "OK" && rest.startsWith("JOIN ")) {
      this.#phase = "chatting";
      this.#terminal.prompt(CHAT_PROMPT);
    } else if (verb === "ERR") {
      this.#askName();
    }
  }

  /** `OK JOIN #room` makes it the current room; `OK PART` of the current room, the lobby. */
  #roomChanged(verb: string, rest: string): void {
    if (verb !== "OK") return;
    const [what, room] = splitFirst(rest);
    if (what === "JOIN" && room.startsWith("#")) this.#current = room;
    else if (what === "PART" && room.toLowerCase() === this.#current.toLowerCase()) {
      this.#current = ROOM;
    } else return;
    this.#terminal.prompt(this.#prompt());
  }

  #prompt(): string {
    return this.#current === ROOM ? CHAT_PROMPT : `${this.#current}${CHAT_PROMPT}`;
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
        return await this.#send(`CHAT ${this.#current} ${command.text}`);
      case "direct":
        return await this.#send(`CHAT ${command.to} ${command.text}`);
      case "who":
        return await this.#send(command.room === undefined ? "WHO" : `WHO ${command.room}`);
      case "join":
        return await this.#send(`JOIN ${command.room}`);
      case "part":
        if (command.room === undefined && this.#current === ROOM) {
          return this.#terminal.show("! you are in the lobby; /part #room leaves a room");
        }
        return await this.#send(`PART ${command.room ?? this.#current}`);
      case "rooms":
        return await this.#send("ROOMS");
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

async function connect(
  host: string,
  port: number,
  tls: ClientOptions["tls"],
): Promise<Deno.Conn | undefined> {
  try {
    if (tls === undefined) return await Deno.connect({ hostname: host, port });
    const caCerts = tls.caFile === undefined ? undefined : [await Deno.readTextFile(tls.caFile)];
    const conn = await Deno.connectTls({ hostname: host, port, caCerts });
    try {
      // Now, so that a certificate the client does not trust is reported as such.
      await conn.handshake();
    } catch (error: unknown) {
      conn.close();
      throw error;
    }
    return conn;
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
  const conn = await connect(options.host, options.port, options.tls);
  if (conn === undefined) return 1;
  const events = new EventQueue();
  readServer(conn, events);
  const terminal = new Terminal((event) => events.push(event));
  try {
    return await new ChatSession(conn, terminal, events, options).run();
  } finally {
    terminal.close();
    conn.close();
  }
}
