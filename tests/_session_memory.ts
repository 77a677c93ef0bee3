/**
 * Measures the V8 heap an idle joined client costs chatd itself: N sessions on
 * {@linkcode TcpTransport}s, each greeted, sent `JOIN`, confirmed, then left waiting in
 * `read`, with the thread's default session options. The connections are stand-ins whose
 * pending read never ends, so Deno's own cost of a socket is left out. Run by
 * `session_memory_test.ts` with `--v8-flags=--expose-gc`; prints `BYTES_PER_SESSION <n>`.
 *
 *   deno run --v8-flags=--expose-gc tests/_session_memory.ts [N]
 *
 * @module
 */
import { Session, type SessionHost } from "../src/session.ts";
import { TcpTransport } from "../src/tcp_transport.ts";
import { Reply } from "../src/protocol.ts";

const count = Number(Deno.args[0] ?? 2000);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("Cannot measure: run with --v8-flags=--expose-gc");

const encoder = new TextEncoder();
const never = new Promise<number | null>(() => {});
const remoteAddr: Deno.NetAddr = { transport: "tcp", hostname: "127.0.0.1", port: 40000 };

/** A connection that delivers one line, then waits for ever; writes are taken at once. */
class FakeConn {
  readonly remoteAddr = remoteAddr;
  #first: Uint8Array | undefined;

  constructor(line: string) {
    this.#first = encoder.encode(line);
  }

  read(buffer: Uint8Array): Promise<number | null> {
    const first = this.#first;
    if (first === undefined) return never;
    buffer.set(first);
    this.#first = undefined;
    return Promise.resolve(first.length);
  }

  write(data: Uint8Array): Promise<number> {
    return Promise.resolve(data.length);
  }

  close(): void {}
  setNoDelay(): void {}
  setKeepAlive(): void {}
}

let joined = 0;
const flushes: { flush(): boolean }[] = [];
const host = {
  claim(session: Session) {
    queueMicrotask(() => {
      session.joined(++joined);
    });
  },
  release() {},
  direct: () => false,
  room() {},
  users: () => [],
  namedRooms: {},
  closed() {},
  failed(_session: Session, error: unknown) {
    throw error;
  },
  slowConsumer() {},
  joinTimedOut() {},
  wantsFlush(queue: { flush(): boolean }) {
    flushes.push(queue);
  },
  fault: () => false,
} as unknown as SessionHost;
// The thread's defaults (config.ts): a rate limit is on.
const options = {
  joinTimeoutMs: 60_000,
  rate: 20,
  burst: 100,
  queue: { maxBytes: 1024 * 1024 },
};

/** The sessions, kept alive as a thread's table keeps them. */
const sessions: Session[] = [];

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await new Promise((resolve) => setTimeout(resolve, 0));
    for (const queue of flushes.splice(0)) queue.flush();
  }
}

function heapUsed(): number {
  for (let i = 0; i < 4; i++) gc!();
  return Deno.memoryUsage().heapUsed;
}

// Warm up: code, shapes and the first allocations of every kind are not a client's cost.
const warm = Math.min(200, count);
const clients = async (n: number, from: number) => {
  for (let i = 0; i < n; i++) {
    const conn = new FakeConn(`JOIN user${from + i}\n`) as unknown as Deno.Conn;
    const transport = new TcpTransport(conn, { maxLineBytes: 4096 });
    const session = new Session(from + i, transport, host, options);
    sessions.push(session);
    session.serve(Reply.hello(0, 0));
  }
  await settle();
};
await clients(warm, 0);
sessions.length = 0;
const baseline = heapUsed();
await clients(count, warm);
if (joined !== warm + count) throw new Error(`Only ${joined} of ${warm + count} joined`);
const after = heapUsed();
// Each stand-in connection (40 bytes) and table slot (8) is counted too.
console.log(`BYTES_PER_SESSION ${Math.round((after - baseline) / count)}`);
