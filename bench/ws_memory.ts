/**
 * Memory per idle joined client, WebSocket against TCP: starts a 1×1 server for each, opens
 * N clients that JOIN and then only read (and throw away) what they are sent, and reports the
 * child's RSS growth per client: just after the joins, and the lowest over the next
 * `--settle` seconds (V8 gives back the joins' garbage late; see README "Performance"), and
 * the most OS threads the child had (a handshake that ran on a blocking-pool thread, as
 * `crypto.subtle` does, showed there).
 *
 *   deno run --unstable-net -A bench/ws_memory.ts [--clients 2000] [--settle 30]
 *   KINDS=ws deno run ...   one kind only
 *
 * @module
 */
import { parseArgs } from "node:util";
import { encodeFrame, Opcode } from "../src/_websocket.ts";
import { rssMiB, TestServer, waitUntil } from "../tests/test_util.ts";

function threads(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/Threads:\s+(\d+)/.exec(status)![1]);
}

const { values } = parseArgs({
  args: Deno.args,
  options: { clients: { type: "string" }, settle: { type: "string" } },
});
const CLIENTS = Number(values.clients ?? 2000);
const SETTLE_S = Number(values.settle ?? 30);
const encoder = new TextEncoder();
const MASK = new Uint8Array([9, 8, 7, 6]);

/** Reads and drops everything until the connection ends. */
async function drain(conn: Deno.Conn): Promise<void> {
  const sink = new Uint8Array(1024);
  try {
    while (await conn.read(sink) !== null) { /* thrown away */ }
  } catch { /* closed */ }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

async function openTcp(port: number, name: string): Promise<Deno.Conn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await writeAll(conn, encoder.encode(`JOIN ${name}\n`));
  drain(conn);
  return conn;
}

async function openWs(port: number, name: string): Promise<Deno.Conn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const head = [
    "GET /ws HTTP/1.1",
    `Host: 127.0.0.1:${port}`,
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13",
    "",
    "",
  ].join("\r\n");
  // The JOIN frame right behind the head: the server takes early frames.
  const join = encodeFrame(Opcode.TEXT, encoder.encode(`JOIN ${name}`), { mask: MASK });
  const bytes = new Uint8Array([...encoder.encode(head), ...join]);
  await writeAll(conn, bytes);
  drain(conn);
  return conn;
}

async function measure(kind: "tcp" | "ws"): Promise<void> {
  await using server = await TestServer.start([
    "--processes",
    "1",
    "--threads",
    "1",
    "--rate",
    "0",
    "--max-clients-per-thread",
    String(CLIENTS + 10),
  ]);
  const [pid] = server.childPids().get(0)!;
  await using who = await server.connect();
  await who.hello();
  const count = async () => {
    await who.send("WHO");
    for (;;) {
      const line = await who.readLine(60_000);
      const match = /^USERS (\d+)/.exec(line);
      if (match) return Number(match[1]);
    }
  };
  const before = rssMiB(pid!);
  let mostThreads = threads(pid!);
  const conns: Deno.Conn[] = [];
  const open = kind === "tcp" ? openTcp : openWs;
  const port = kind === "tcp" ? server.port : server.webPort!;
  for (let i = 0; i < CLIENTS; i += 100) {
    const batch = [];
    for (let j = i; j < Math.min(CLIENTS, i + 100); j++) batch.push(open(port, `${kind}${j}`));
    conns.push(...await Promise.all(batch));
    mostThreads = Math.max(mostThreads, threads(pid!));
  }
  await waitUntil(async () => await count() === CLIENTS, 120_000, "every client joined");
  const after = rssMiB(pid!);
  let lowest = after;
  for (let s = 0; s < SETTLE_S; s++) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    lowest = Math.min(lowest, rssMiB(pid!));
    mostThreads = Math.max(mostThreads, threads(pid!));
  }
  const perClient = (mib: number) => ((mib - before) * 1024 / CLIENTS).toFixed(1);
  console.log(
    `${kind}: ${CLIENTS} idle joined clients, child RSS ${before.toFixed(1)} MiB before, ` +
      `${after.toFixed(1)} after (${perClient(after)} KiB/client), lowest in ${SETTLE_S} s ` +
      `${lowest.toFixed(1)} (${perClient(lowest)} KiB/client), threads at most ${mostThreads}`,
  );
  for (const conn of conns) {
    try {
      conn.close();
    } catch { /* gone */ }
  }
}

const kinds = (Deno.env.get("KINDS") ?? "tcp,ws").split(",") as ("tcp" | "ws")[];
for (const kind of kinds) await measure(kind);
