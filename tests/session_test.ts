import assert from "node:assert/strict";
import { FlushRounds } from "../src/_flush_rounds.ts";
import { OutputChunks } from "../src/_output_chunks.ts";
import type { OutputQueue } from "../src/_output_queue.ts";
import {
  Session,
  type SessionHost,
  type SessionOptions,
  type SessionState,
} from "../src/session.ts";
import { FakeClock, FakeTransport, settle } from "./_fakes.ts";

const encoder = new TextEncoder();

/** A thread stand-in: records what sessions ask of it; flush rounds are the real ones. */
class FakeHost implements SessionHost {
  readonly claims: string[] = [];
  readonly releases: string[] = [];
  readonly closes: SessionState[] = [];
  readonly failures: unknown[] = [];
  slowConsumers = 0;
  joinTimeouts = 0;
  readonly rounds = new FlushRounds<OutputQueue>();

  claim(_session: Session, name: string): void {
    this.claims.push(name);
  }
  release(session: Session): void {
    this.releases.push(session.claimedName!);
  }
  direct(): boolean {
    return false;
  }
  room(): void {}
  users(): readonly string[] {
    return [];
  }
  readonly namedRooms = {
    enter: () => {},
    part: () => {},
    say: () => {},
    who: () => {},
    list: () => {},
  };
  closed(_session: Session, previous: SessionState): void {
    this.closes.push(previous);
  }
  failed(_session: Session, error: unknown): void {
    this.failures.push(error);
  }
  slowConsumer(): void {
    this.slowConsumers++;
  }
  joinTimedOut(): void {
    this.joinTimeouts++;
  }
  wantsFlush(queue: OutputQueue): void {
    this.rounds.add(queue);
  }
  fault(_session: Session, what: string): boolean {
    if (what === "throw") throw new Error("injected");
    return false;
  }
}

interface Setup {
  clock: FakeClock;
  host: FakeHost;
  transport: FakeTransport;
  session: Session;
  served: Promise<void>;
}

async function start(options: Partial<SessionOptions> = {}): Promise<Setup> {
  const clock = new FakeClock();
  const host = new FakeHost();
  const transport = new FakeTransport();
  const session = new Session(7, transport, host, {
    joinTimeoutMs: 1000,
    rate: 0,
    burst: 1,
    queue: { maxBytes: 1024, clock },
    clock,
    ...options,
  });
  const served = session.serve("HELLO test\n");
  await settle();
  assert.deepEqual(transport.written, ["HELLO test"]);
  return { clock, host, transport, session, served };
}

/** Feeds `JOIN name` and confirms it as directory change `seq`. */
async function joinAs(setup: Setup, name: string, seq: number): Promise<void> {
  setup.transport.feed(`JOIN ${name}`);
  await settle();
  assert.equal(setup.session.state, "joining");
  setup.session.joined(seq);
  await settle();
}

/** A broadcast line as the room sends it. */
function broadcast(session: Session, line: string, seq = Infinity): void {
  const chunks = new OutputChunks();
  chunks.append(encoder.encode(line));
  session.broadcast(chunks, seq);
}

Deno.test("a session answers each line in order and writes a read's replies in one write", async () => {
  const { transport } = await start();
  transport.feed("PING a", "PING b", "NOPE");
  await settle();
  assert.deepEqual(transport.written.slice(1), ["PONG a", "PONG b", "ERR BAD_COMMAND NOPE"]);
  assert.equal(transport.writes.length, 2);
});

Deno.test("a line the transport could not read is answered in its turn", async () => {
  const { transport } = await start();
  transport.feed("PING 1", "\u0000too long", "PING 2");
  await settle();
  assert.deepEqual(transport.written.slice(1), ["PONG 1", "ERR LINE_TOO_LONG", "PONG 2"]);
});

Deno.test("LEAV before JOIN sends BYE and what came before it, then closes (defect 1)", async () => {
  const { transport, host, served } = await start();
  transport.feed("PING x", "LEAV", "PING never");
  await served;
  await settle();
  assert.deepEqual(transport.written.slice(1), ["PONG x", "BYE"]);
  assert.equal(transport.closed, true);
  assert.deepEqual(host.closes, ["anonymous"]);
});

Deno.test("at the end of the stream, what was queued is written before the close", async () => {
  const setup = await start();
  await joinAs(setup, "alice", 3);
  setup.transport.holdWrites = true;
  setup.transport.feed("PING last");
  setup.transport.eof();
  await setup.served;
  await settle();
  assert.equal(setup.transport.closed, false);
  setup.transport.releaseWrites();
  await settle();
  assert.deepEqual(setup.transport.written.slice(-1), ["PONG last"]);
  assert.equal(setup.transport.closed, true);
  assert.deepEqual(setup.host.closes, ["joined"]);
});

Deno.test("a reset connection is closed at once", async () => {
  const { transport, host, served } = await start();
  transport.reset();
  await served;
  assert.equal(transport.closed, true);
  assert.deepEqual(host.closes, ["anonymous"]);
});

Deno.test("JOIN claims the name and OK JOIN comes with the confirmation", async () => {
  const setup = await start();
  setup.transport.feed("JOIN alice", "PING after");
  await settle();
  assert.deepEqual(setup.host.claims, ["alice"]);
  // The next line waits for the directory.
  assert.deepEqual(setup.transport.written.slice(1), []);
  setup.session.joined(5);
  await settle();
  assert.deepEqual(setup.transport.written.slice(1), ["OK JOIN alice", "PONG after"]);
  assert.equal(setup.session.name, "alice");
});

Deno.test("while joining, notices of changes up to its own are dropped and later ones held", async () => {
  const setup = await start();
  setup.transport.feed("JOIN carol");
  await settle();
  broadcast(setup.session, "JOINED bob\n", 4);
  broadcast(setup.session, "JOINED dave\n", 6);
  broadcast(setup.session, "ALL bob hi\n");
  setup.session.joined(5);
  await settle();
  assert.deepEqual(setup.transport.written.slice(1), [
    "OK JOIN carol",
    "JOINED dave",
    "ALL bob hi",
  ]);
});

Deno.test("a refused claim sends the error and the session may JOIN again", async () => {
  const setup = await start();
  setup.transport.feed("JOIN alice");
  await settle();
  broadcast(setup.session, "ALL bob hi\n");
  setup.session.refused("ERR NAME_TAKEN alice\n");
  await settle();
  assert.equal(setup.session.state, "anonymous");
  await joinAs(setup, "alice2", 9);
  assert.deepEqual(setup.transport.written.slice(1), ["ERR NAME_TAKEN alice", "OK JOIN alice2"]);
});

Deno.test("no JOIN within the join timeout: ERR TIMEOUT and the session closes", async () => {
  const { clock, transport, host } = await start();
  await clock.advance(999);
  assert.equal(transport.closed, false);
  assert.equal(host.joinTimeouts, 0);
  await clock.advance(1);
  assert.deepEqual(transport.written.slice(1), ["ERR TIMEOUT no JOIN in time"]);
  assert.equal(transport.closed, true);
  assert.deepEqual(host.closes, ["anonymous"]);
  assert.equal(host.joinTimeouts, 1, "the host is told, for its log");
});

Deno.test("a join timeout that passes while joining is re-armed when the claim is refused (defect 5)", async () => {
  const setup = await start();
  setup.transport.feed("JOIN alice");
  await settle();
  await setup.clock.advance(1500);
  assert.equal(setup.transport.closed, false, "a joining session is not timed out");
  setup.session.refused("ERR NAME_TAKEN alice\n");
  await settle();
  await setup.clock.advance(999);
  assert.equal(setup.transport.closed, false, "the new timeout runs from the refusal");
  await setup.clock.advance(1);
  assert.deepEqual(setup.transport.written.slice(1), [
    "ERR NAME_TAKEN alice",
    "ERR TIMEOUT no JOIN in time",
  ]);
  assert.equal(setup.transport.closed, true);
});

Deno.test("a session that timed out while waiting for its rate never claims (defect 2)", async () => {
  const setup = await start({ rate: 2, burst: 1, joinTimeoutMs: 300 });
  setup.transport.feed("PING", "JOIN ghost");
  await settle();
  assert.deepEqual(setup.transport.written.slice(1), ["PONG"]);
  await setup.clock.advance(300);
  assert.deepEqual(setup.transport.written.slice(1), ["PONG", "ERR TIMEOUT no JOIN in time"]);
  assert.equal(setup.transport.closed, true);
  await setup.clock.advance(500); // the JOIN's turn
  await setup.served;
  assert.deepEqual(setup.host.claims, []);
  assert.equal(setup.session.state, "closed");
  setup.session.joined(3); // a confirmation that comes anyway changes nothing
  assert.equal(setup.session.state, "closed");
});

Deno.test("over its rate a session waits for its next line, and loses none", async () => {
  const setup = await start({ rate: 10, burst: 2 });
  setup.transport.feed("PING 1", "PING 2", "PING 3", "PING 4");
  await settle();
  assert.deepEqual(setup.transport.written.slice(1), ["PONG 1", "PONG 2"]);
  await setup.clock.advance(100);
  assert.deepEqual(setup.transport.written.slice(1), ["PONG 1", "PONG 2", "PONG 3"]);
  await setup.clock.advance(100);
  assert.deepEqual(setup.transport.written.slice(1), ["PONG 1", "PONG 2", "PONG 3", "PONG 4"]);
});

Deno.test("lines held while joining count against the send-queue limit (defect 6)", async () => {
  const setup = await start();
  setup.transport.feed("JOIN slow");
  await settle();
  const line = "ALL bob " + "x".repeat(100) + "\n";
  for (let i = 0; i < 9; i++) broadcast(setup.session, line);
  assert.equal(setup.host.slowConsumers, 0);
  assert.ok(setup.session.queuedBytes >= 9 * line.length);
  broadcast(setup.session, line); // 10 × 109 bytes > 1024
  await settle();
  assert.equal(setup.host.slowConsumers, 1);
  assert.deepEqual(setup.transport.written.slice(1), ["ERR SLOW_CONSUMER not reading"]);
  assert.equal(setup.transport.closed, true);
});

Deno.test("held lines stop counting once written or dropped", async () => {
  const setup = await start();
  setup.transport.feed("JOIN alice");
  await settle();
  broadcast(setup.session, "ALL bob hi\n");
  assert.equal(setup.session.queuedBytes, "ALL bob hi\n".length);
  setup.session.refused("ERR NAME_TAKEN alice\n");
  await settle();
  assert.equal(setup.session.queuedBytes, 0);
});

Deno.test("a joined client that does not read gets ERR SLOW_CONSUMER and is closed after a grace period", async () => {
  const setup = await start();
  await joinAs(setup, "slow", 2);
  setup.transport.holdWrites = true;
  const line = "ALL bob " + "y".repeat(300) + "\n";
  broadcast(setup.session, line);
  await settle(); // one write under way, held by the fake
  for (let i = 0; i < 3; i++) broadcast(setup.session, line);
  await settle();
  assert.equal(setup.host.slowConsumers, 1, "bytes under way count");
  assert.equal(setup.transport.closed, false);
  await setup.clock.advance(250);
  assert.equal(setup.transport.closed, true);
  assert.deepEqual(setup.host.closes, ["joined"]);
});

Deno.test("a handler that throws closes its session only, and the host hears of it", async () => {
  const { transport, host, served } = await start();
  transport.feed("FAULT throw", "PING never");
  await served;
  assert.equal(host.failures.length, 1);
  assert.equal(transport.closed, true);
  assert.deepEqual(transport.written.slice(1), []);
});

Deno.test("LEAV when joined releases the name and says BYE once the directory freed it", async () => {
  const setup = await start();
  await joinAs(setup, "alice", 2);
  setup.transport.feed("LEAV");
  await settle();
  assert.deepEqual(setup.host.releases, ["alice"]);
  assert.equal(setup.session.state, "leaving");
  setup.session.left();
  await settle();
  assert.deepEqual(setup.transport.written.slice(-1), ["BYE"]);
  assert.equal(setup.transport.closed, true);
  assert.deepEqual(setup.host.closes, ["leaving"]);
});
