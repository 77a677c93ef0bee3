/**
 * Direct messages per second over WebSocket against TCP, on one server: P pairs of clients,
 * each sender keeping W messages in flight to its receiver (a closed loop), for D seconds.
 * Reports messages/s and the server's CPU per message (the figure the load generator, which
 * shares the 2 cores, distorts least). WebSocket clients are Deno's own `WebSocket`; TCP
 * clients are `Deno.connect` with a line splitter.
 *
 *   deno run --unstable-net -A bench/ws_rate.ts [--pairs 50] [--window 16] [--seconds 5]
 *   KINDS=ws deno run ...   one kind only
 *
 * @module
 */
import { parseArgs } from "node:util";
import { TestServer, waitUntil } from "../tests/test_util.ts";
import { cpuMs } from "./_proc.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    pairs: { type: "string" },
    window: { type: "string" },
    seconds: { type: "string" },
    processes: { type: "string" },
    threads: { type: "string" },
  },
});
const PAIRS = Number(values.pairs ?? 50);
const WINDOW = Number(values.window ?? 16);
const SECONDS = Number(values.seconds ?? 5);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One client: sends lines, hands each received line to `onLine`. */
interface Client {
  send(line: string): void;
  close(): void;
}

async function tcpClient(port: number, onLine: (line: string) => void): Promise<Client> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conn.setNoDelay(true);
  (async () => {
    const buffer = new Uint8Array(64 * 1024);
    let tail = "";
    try {
      for (;;) {
        const n = await conn.read(buffer);
        if (n === null) return;
        const text = tail + decoder.decode(buffer.subarray(0, n), { stream: true });
        const lines = text.split("\n");
        tail = lines.pop()!;
        for (const line of lines) onLine(line);
      }
    } catch { /* closed */ }
  })();
  let pending = "";
  return {
    send(line) {
      // Lines of one turn leave in one write, as a real client's would.
      if (pending === "") {
        queueMicrotask(() => {
          const bytes = encoder.encode(pending);
          pending = "";
          conn.write(bytes).catch(() => {});
        });
      }
      pending += line + "\n";
    },
    close: () => conn.close(),
  };
}

async function wsClient(port: number, onLine: (line: string) => void): Promise<Client> {
  const socket = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  socket.onmessage = (event) => onLine(String(event.data));
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = reject;
  });
  return { send: (line) => socket.send(line), close: () => socket.close() };
}

async function measure(kind: "tcp" | "ws"): Promise<void> {
  await using server = await TestServer.start([
    "--processes",
    values.processes ?? "1",
    "--threads",
    values.threads ?? "1",
    "--rate",
    "0",
  ]);
  const open = kind === "tcp" ? tcpClient : wsClient;
  const port = kind === "tcp" ? server.port : server.webPort!;
  let received = 0;
  let joined = 0;
  let measuring = true;
  const clients: Client[] = [];
  const senders: Client[] = [];
  for (let i = 0; i < PAIRS; i++) {
    const sender = await open(port, (line) => {
      if (line.startsWith("OK JOIN")) joined++;
    });
    const receiver = await open(port, (line) => {
      if (line.startsWith("OK JOIN")) joined++;
      else if (line.startsWith("FROM ")) {
        received++;
        // Closed loop: each delivery lets its sender send one more.
        if (measuring) sender.send(`CHAT r${kind}${i} m`);
      }
    });
    sender.send(`JOIN s${kind}${i}`);
    receiver.send(`JOIN r${kind}${i}`);
    clients.push(sender, receiver);
    senders.push(sender);
  }
  await waitUntil(() => joined === PAIRS * 2, 30_000, "every client joined");
  const pids = [...server.childPids().values()].map(([pid]) => pid!);
  const cpuBefore = pids.reduce((sum, pid) => sum + cpuMs(pid), 0);
  const start = performance.now();
  const receivedBefore = received;
  for (const [i, sender] of senders.entries()) {
    for (let w = 0; w < WINDOW; w++) sender.send(`CHAT r${kind}${i} m`);
  }
  await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
  const count = received - receivedBefore;
  const elapsed = (performance.now() - start) / 1000;
  const cpu = pids.reduce((sum, pid) => sum + cpuMs(pid), 0) - cpuBefore;
  measuring = false;
  console.log(
    `${kind}: ${PAIRS} pairs, ${WINDOW} in flight each: ${Math.round(count / elapsed)} msgs/s, ` +
      `server CPU ${(cpu * 1000 / count).toFixed(2)} µs per message`,
  );
  for (const client of clients) {
    try {
      client.close();
    } catch { /* gone */ }
  }
}

const kinds = (Deno.env.get("KINDS") ?? "tcp,ws").split(",") as ("tcp" | "ws")[];
for (const kind of kinds) await measure(kind);
