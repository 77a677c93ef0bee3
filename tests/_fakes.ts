/**
 * Fakes for unit tests below the transport: a clock whose time moves only when told, a
 * transport that records what was written, an acceptor, a bus that records records.
 *
 * @module
 */
import type { Clock } from "../src/_clock.ts";
import type { Bus } from "../src/bus.ts";
import type { Acceptor, LineReceiver, Transport, WriteDone } from "../src/transport.ts";

const decoder = new TextDecoder();

function assertEquals(actual: number, expected: number): void {
  if (actual !== expected) throw new Error(`lines(${actual}) after a read of ${expected}`);
}

/** A clock that moves only with {@linkcode advance}. */
export class FakeClock implements Clock {
  #now = 1000;
  #next = 1;
  #timers = new Map<number, { at: number; callback: () => void }>();

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** Timers not yet run. */
  get pending(): number {
    return this.#timers.size;
  }

  /**
   * Moves time on by `ms`, running each timer that falls due in order, and letting the
   * promise jobs it starts run before the next one.
   */
  async advance(ms: number): Promise<void> {
    const until = this.#now + ms;
    for (;;) {
      let dueId: number | undefined;
      let due: { at: number; callback: () => void } | undefined;
      for (const [id, timer] of this.#timers) {
        if (timer.at <= until && (due === undefined || timer.at < due.at)) {
          dueId = id;
          due = timer;
        }
      }
      if (due === undefined) break;
      this.#timers.delete(dueId!);
      this.#now = due.at;
      due.callback();
      await settle();
    }
    this.#now = until;
    await settle();
  }
}

/** Lets every pending promise job (and the flush rounds they start) run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

/** A transport fed by the test; it records every line written. */
export class FakeTransport implements Transport {
  readonly peer = "fake:1";
  /** Every line written, without its LF. */
  readonly written: string[] = [];
  /** Every write, as the chunks it was given. */
  readonly writes: Uint8Array[][] = [];
  closed = false;
  /** While true, writes stay under way until {@linkcode releaseWrites}. */
  holdWrites = false;
  #held: (() => void)[] = [];
  #failWrites = false;
  #input: ({ lines: string[] } | "eof" | "reset")[] = [];
  #reading: (() => void) | undefined;
  /** The lines of the last read, for lines(). */
  #read: string[] = [];

  /** What the next read finds: these lines, in one read. */
  feed(...lines: string[]): void {
    this.#input.push({ lines });
    this.#wake();
  }

  /** The peer closes its side. */
  eof(): void {
    this.#input.push("eof");
    this.#wake();
  }

  /** The connection is reset: the read fails. */
  reset(): void {
    this.#input.push("reset");
    this.#wake();
  }

  /** Makes writes fail from now on. */
  failWrites(): void {
    this.#failWrites = true;
  }

  /** Lets held writes complete. */
  releaseWrites(): void {
    this.holdWrites = false;
    for (const release of this.#held.splice(0)) release();
  }

  #wake(): void {
    const wake = this.#reading;
    this.#reading = undefined;
    wake?.();
  }

  async read(): Promise<number | null> {
    while (this.#input.length === 0 && !this.closed) {
      await new Promise<void>((resolve) => this.#reading = resolve);
    }
    const next = this.#input.shift();
    if (next === undefined || next === "eof") return null;
    if (next === "reset") throw new Deno.errors.ConnectionReset("reset by the fake peer");
    this.#read = next.lines;
    return next.lines.length;
  }

  lines(count: number, receiver: LineReceiver): boolean {
    assertEquals(count, this.#read.length);
    for (const line of this.#read) {
      if (line === "\u0000too long") receiver.invalid("LINE_TOO_LONG");
      else receiver.line(line);
    }
    this.#read = [];
    return true;
  }

  write(chunks: Uint8Array[], done: WriteDone): void {
    this.#write(chunks, done);
  }

  async #write(chunks: Uint8Array[], done: WriteDone): Promise<void> {
    // Never reported during the call.
    await Promise.resolve();
    if (this.closed || this.#failWrites) return done.failed(new Deno.errors.BrokenPipe("pipe"));
    // Copied now: the chunks are views of shared buffers.
    this.writes.push(chunks.map((chunk) => chunk.slice()));
    if (this.holdWrites) await new Promise<void>((resolve) => this.#held.push(resolve));
    if (this.closed) return done.failed(new Deno.errors.BrokenPipe("pipe"));
    const text = chunks.map((chunk) => decoder.decode(chunk)).join("");
    for (const line of text.split("\n").slice(0, -1)) this.written.push(line);
    done.written();
  }

  close(): void {
    this.closed = true;
    this.#wake();
  }
}

/** An acceptor whose connections the test hands in. */
export class FakeAcceptor implements Acceptor {
  closed = false;
  accepts = 0;
  /** A connection whose accept completes as the acceptor closes, instead of failing. */
  lateArrival: Transport | undefined;
  #pending: PromiseWithResolvers<Transport> | undefined;

  accept(): Promise<Transport> {
    if (this.#pending) throw new Error("two accepts at once");
    if (this.closed) return Promise.reject(new Deno.errors.BadResource("closed"));
    this.accepts++;
    this.#pending = Promise.withResolvers<Transport>();
    return this.#pending.promise;
  }

  /** A connection arrives; false when no accept was waiting for it. */
  arrive(transport: Transport): boolean {
    const pending = this.#pending;
    if (pending === undefined) return false;
    this.#pending = undefined;
    pending.resolve(transport);
    return true;
  }

  /** The waiting accept fails with `error` (EMFILE, say); false when none was waiting. */
  fail(error: Error): boolean {
    const pending = this.#pending;
    if (pending === undefined) return false;
    this.#pending = undefined;
    pending.reject(error);
    return true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const pending = this.#pending;
    this.#pending = undefined;
    if (this.lateArrival !== undefined) pending?.resolve(this.lateArrival);
    else pending?.reject(new Deno.errors.BadResource("closed"));
  }
}

/** A bus that records what is sent. */
export class FakeBus implements Bus {
  readonly id = "1-0-1-0";
  readonly sent: { to: string; record: Uint8Array }[] = [];
  peers: readonly string[] = [];
  closed = false;

  send(to: string, record: Uint8Array): void {
    if (!this.closed) this.sent.push({ to, record });
  }

  sendAll(record: Uint8Array): void {
    for (const to of this.peers) if (to !== this.id) this.send(to, record);
  }

  setPeers(peers: readonly string[]): void {
    this.peers = peers;
  }

  /** While true, flushed() waits for {@linkcode releaseFlush}. */
  holdFlush = false;
  #flushWaiters: (() => void)[] = [];

  flushed(): Promise<void> {
    if (!this.holdFlush) return Promise.resolve();
    return new Promise((resolve) => this.#flushWaiters.push(resolve));
  }

  /** Lets every flushed() resolve, now and later. */
  releaseFlush(): void {
    this.holdFlush = false;
    for (const resolve of this.#flushWaiters.splice(0)) resolve();
  }

  close(): void {
    this.closed = true;
  }
}
