/**
 * The yardstick: a minimal single-threaded Deno server of chatd's protocol subset (HELLO,
 * JOIN, CHAT <name>, CHAT *, JOINED/LEFT, WHO, PING, LEAV), written for speed but plainly:
 * `Deno.listen`, one async read loop per connection, TCP_NODELAY, and one write per connection
 * per turn. It is the floor of what Deno's own I/O allows; the bench reports chatd at 1×1 as
 * a ratio to it. No limits, no rate control, no logging: not a server to run for users.
 *
 *   deno run --allow-net bench/reference_server.ts [--host 127.0.0.1] [--port 0]
 *
 * Prints `reference listening on HOST:PORT` once it accepts connections.
 *
 * @module
 */
import { parseArgs } from "node:util";

const encoder = new TextEncoder();
// Reads are cut after their last LF, so one decoder without stream state serves everyone.
const decoder = new TextDecoder();
const LF = 10;
const NAME = /^[A-Za-z0-9_-]{1,32}$/;

/** One client connection: its name once joined, and the output of the current turn. */
class Client {
  readonly tcp: Deno.TcpConn;
  name = "";
  /** Encoded lines queued this turn; a broadcast line is encoded once and shared. */
  #out: Uint8Array[] = [];
  #writing: Promise<void> | undefined;
  #closed = false;
  readonly #flush = () => {
    this.#writing = this.#write();
  };

  constructor(tcp: Deno.TcpConn) {
    this.tcp = tcp;
  }

  /** Queues whole lines; everything queued in one turn leaves in one write. */
  send(lines: string): void {
    this.sendBytes(encoder.encode(lines));
  }

  /** Queues encoded lines, which may be shared with other clients and are not changed. */
  sendBytes(bytes: Uint8Array): void {
    if (this.#closed) return;
    const idle = this.#out.length === 0 && this.#writing === undefined;
    this.#out.push(bytes);
    if (idle) queueMicrotask(this.#flush);
  }

  async #write(): Promise<void> {
    try {
      while (this.#out.length > 0 && !this.#closed) {
        const data = this.#out.length === 1 ? this.#out[0]! : concat(this.#out);
        this.#out = [];
        let written = 0;
        while (written < data.length) written += await this.tcp.write(data.subarray(written));
      }
    } catch {
      this.close();
    } finally {
      this.#writing = undefined;
    }
  }

  /** Sends what is queued, then closes. */
  async end(): Promise<void> {
    await null; // lets a flush queued this turn start
    await this.#writing;
    this.close();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.tcp.close();
    } catch {
      // Already closed.
    }
  }
}

/** Joined clients by lower-case name. */
const users = new Map<string, Client>();

function broadcast(from: Client, line: string): void {
  const bytes = encoder.encode(line);
  for (const client of users.values()) if (client !== from) client.sendBytes(bytes);
}

function leave(client: Client): void {
  if (client.name === "" || users.get(client.name.toLowerCase()) !== client) return;
  users.delete(client.name.toLowerCase());
  broadcast(client, `LEFT ${client.name}\n`);
}

/** Handles one line; returns false when the connection is to close. */
function command(client: Client, line: string): boolean {
  const space = line.indexOf(" ");
  const verb = (space === -1 ? line : line.slice(0, space)).toUpperCase();
  const rest = space === -1 ? "" : line.slice(space + 1);
  if (verb === "CHAT") {
    if (client.name === "") return client.send("ERR NOT_JOINED\n"), true;
    const gap = rest.indexOf(" ");
    if (gap <= 0) return client.send("ERR BAD_COMMAND usage: CHAT <name> <text>\n"), true;
    const target = rest.slice(0, gap), text = rest.slice(gap + 1);
    if (target === "*") broadcast(client, `ALL ${client.name} ${text}\n`);
    else {
      const to = users.get(target.toLowerCase());
      if (to === undefined) client.send(`ERR NO_SUCH_USER ${target}\n`);
      else to.send(`FROM ${client.name} ${text}\n`);
    }
  } else if (verb === "JOIN") {
    if (client.name !== "") client.send(`ERR ALREADY_JOINED ${client.name}\n`);
    else if (!NAME.test(rest)) client.send("ERR BAD_NAME may contain only A-Z a-z 0-9 _ -\n");
    else if (users.has(rest.toLowerCase())) client.send(`ERR NAME_TAKEN ${rest}\n`);
    else {
      broadcast(client, `JOINED ${rest}\n`);
      client.name = rest;
      users.set(rest.toLowerCase(), client);
      client.send(`OK JOIN ${rest}\n`);
    }
  } else if (verb === "PING") client.send(rest === "" ? "PONG\n" : `PONG ${rest}\n`);
  else if (verb === "WHO") {
    const names = [...users.values()].map((user) => user.name).sort((a, b) =>
      a.toLowerCase() < b.toLowerCase() ? -1 : 1
    );
    client.send(`USERS ${names.length}${names.map((name) => " " + name).join("")}\n`);
  } else if (verb === "LEAV") {
    leave(client);
    client.send("BYE\n");
    return false;
  } else if (verb !== "") client.send(`ERR BAD_COMMAND ${verb}\n`);
  return true;
}

async function serve(tcp: Deno.TcpConn): Promise<void> {
  tcp.setNoDelay(true);
  const client = new Client(tcp);
  client.send("HELLO chatd reference p=0 t=0 — JOIN <name> to start\n");
  const buffer = new Uint8Array(4096);
  let tail: Uint8Array | undefined;
  let open = true;
  try {
    while (open) {
      const n = await tcp.read(buffer);
      if (n === null) break;
      const chunk = tail === undefined
        ? buffer.subarray(0, n)
        : concat([tail, buffer.subarray(0, n)]);
      const lastLf = chunk.lastIndexOf(LF);
      // A line longer than 64 KiB without its end is dropped rather than kept growing.
      tail = lastLf + 1 === chunk.length || chunk.length - lastLf > 65536
        ? undefined
        : chunk.slice(lastLf + 1);
      if (lastLf === -1) continue;
      const text = decoder.decode(chunk.subarray(0, lastLf));
      let start = 0;
      while (open && start <= text.length) {
        let end = text.indexOf("\n", start);
        if (end === -1) end = text.length;
        const line = text.charCodeAt(end - 1) === 13
          ? text.slice(start, end - 1)
          : text.slice(start, end);
        open = command(client, line);
        start = end + 1;
      }
    }
  } catch {
    // Reset by the peer: the same as a close.
  }
  leave(client);
  if (open) client.close();
  else await client.end();
}

function concat(parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const joined = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.length;
  }
  return joined;
}

async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "0" },
    },
  });
  const listener = Deno.listen({ hostname: values.host, port: Number(values.port) });
  console.log(`reference listening on ${listener.addr.hostname}:${listener.addr.port}`);
  for await (const tcp of listener) serve(tcp);
}

if (import.meta.main) await main(Deno.args);
