/**
 * Named rooms against one big room: R rooms of U users each (one sender a room), or the lobby
 * with R×U users (one sender), every sender writing M messages at once; measures how long
 * until every member has read every message, as deliveries per second. With `--history N`
 * the supervisor keeps history (a copy of each message goes to it); with `--data-dir` it is
 * also written to SQLite.
 *
 *   deno run --unstable-net -A bench/rooms.ts [--rooms 50] [--users 20] [--messages 200]
 *     [--lobby] [--history 0] [--data-dir] [--processes 2] [--threads 2]
 *
 * The clients run in this one process, so on a small machine they take CPU from the server:
 * the figures compare configurations run the same way, they are not the server's ceiling.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { TestServer } from "../tests/test_util.ts";

const { values } = parseArgs({
  options: {
    rooms: { type: "string", default: "50" },
    users: { type: "string", default: "20" },
    messages: { type: "string", default: "200" },
    lobby: { type: "boolean", default: false },
    history: { type: "string", default: "0" },
    "data-dir": { type: "boolean", default: false },
    processes: { type: "string", default: "2" },
    threads: { type: "string", default: "2" },
  },
});
const rooms = values.lobby ? 1 : Number(values.rooms);
const users = values.lobby ? Number(values.rooms) * Number(values.users) : Number(values.users);
const messages = Number(values.messages);
const encoder = new TextEncoder();

/** A raw client: counts the lines it reads, and can wait for one that matches. */
class Client {
  readonly conn: Deno.TcpConn;
  /** Message lines (`ROOM`, `ALL`) read. */
  delivered = 0;
  #waiting: { test: (line: string) => boolean; resolve: () => void } | undefined;
  #onCount: (() => void) | undefined;

  constructor(conn: Deno.TcpConn) {
    this.conn = conn;
    this.#read();
  }

  async #read(): Promise<void> {
    const decoder = new TextDecoder();
    const buffer = new Uint8Array(65536);
    let pending = "";
    try {
      for (;;) {
        const n = await this.conn.read(buffer);
        if (n === null) return;
        pending += decoder.decode(buffer.subarray(0, n), { stream: true });
        let start = 0;
        for (let end = pending.indexOf("\n"); end !== -1; end = pending.indexOf("\n", start)) {
          const first = pending.charCodeAt(start);
          if (first === 82 /* R */ || first === 65 /* A */) this.delivered++;
          else if (this.#waiting?.test(pending.slice(start, end))) {
            const waiting = this.#waiting;
            this.#waiting = undefined;
            waiting.resolve();
          }
          start = end + 1;
        }
        pending = pending.slice(start);
        this.#onCount?.();
      }
    } catch {
      // closed
    }
  }

  /** Sends `text` and resolves when a line matching `test` is read. */
  ask(text: string, test: (line: string) => boolean): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#waiting = { test, resolve };
    this.conn.write(encoder.encode(text));
    return promise;
  }

  /** Resolves once `count` message lines were read. */
  until(count: number): Promise<void> {
    if (this.delivered >= count) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#onCount = () => {
      if (this.delivered < count) return;
      this.#onCount = undefined;
      resolve();
    };
    return promise;
  }
}

const dataDir = values["data-dir"] ? await Deno.makeTempDir({ prefix: "chatd-bench-" }) : "";
try {
  await using server = await TestServer.start([
    "--processes",
    values.processes!,
    "--threads",
    values.threads!,
    "--rate",
    "0",
    "--max-send-queue",
    String(64 * 1024 * 1024),
    "--history",
    values.history!,
    ...(dataDir === "" ? [] : ["--data-dir", dataDir]),
    "--log-level",
    "warning",
  ]);
  const all: Client[][] = [];
  for (let r = 0; r < rooms; r++) {
    const members: Client[] = [];
    for (let u = 0; u < users; u++) {
      const client = new Client(await Deno.connect({ hostname: server.host, port: server.port }));
      const name = `u${r}x${u}`;
      await client.ask(`JOIN ${name}\n`, (line) => line === `OK JOIN ${name}`);
      if (!values.lobby) {
        await client.ask(`JOIN #r${r}\n`, (line) => line.startsWith(`USERS #r${r} `));
      }
      members.push(client);
    }
    all.push(members);
  }
  const target = values.lobby ? "*" : "";
  const started = performance.now();
  for (const [r, members] of all.entries()) {
    const to = target || `#r${r}`;
    const burst = Array.from({ length: messages }, (_, i) => `CHAT ${to} m${i}\n`).join("");
    members[0]!.conn.write(encoder.encode(burst));
  }
  await Promise.all(all.flatMap((members) => members.slice(1).map((c) => c.until(messages))));
  const seconds = (performance.now() - started) / 1000;
  const deliveries = rooms * (users - 1) * messages;
  console.log(
    `${values.lobby ? `lobby of ${users}` : `${rooms} rooms x ${users} users`} ` +
      `(${values.processes}x${values.threads}), ${messages} messages a sender, ` +
      `history ${values.history}${dataDir === "" ? "" : " + data-dir"}: ` +
      `${deliveries} deliveries in ${seconds.toFixed(2)} s = ` +
      `${Math.round(deliveries / seconds)} deliveries/s, ` +
      `${Math.round(rooms * messages / seconds)} messages/s`,
  );
  for (const members of all) for (const client of members) client.conn.close();
} finally {
  if (dataDir !== "") await Deno.remove(dataDir, { recursive: true });
}
