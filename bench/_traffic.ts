/**
 * The loadgen's message traffic: direct pairs or one room, closed loop (a window of messages
 * in flight per sender) or open loop (a fixed schedule). Every message's text is
 * `<sender>:<seq>:<sendTime>`; the receivers check loss, order and duplicates per sender and
 * record each delivery's latency.
 *
 * The hot path (a read of some lines) runs without closures or per-line arrays: the numbers
 * are parsed from the string in place, and the per-stream state lives in typed arrays
 * indexed by `receiver * senders + sender`.
 *
 * @module
 */
import { Histogram } from "./_histogram.ts";
import { Ledger } from "./_ledger.ts";
import type { Placement, TrafficResult, TrafficWorkload } from "./_messages.ts";
import { CHANNEL, connectAs, handleIrcLine, privmsgTextStart } from "./_irc.ts";
import { connectAndJoin, joinAs, type TcpClient, type TextSink } from "./_tcp_client.ts";

/** Messages tracked per sender for completion; a power of two above any window. */
const RING = 1024;
/** An open-loop send this much later than scheduled counts as late. */
const LATE_MS = 10;
/** The drain gives up when nothing arrived for this long. */
const DRAIN_QUIET_MS = 3000;
const MAX_ERROR_SAMPLES = 5;

const CH_A = 65, CH_F = 70, CH_L = 76, CH_COLON = 58, CH_DOT = 46, CH_0 = 48, CH_9 = 57;
const CH_CR = 13;

/**
 * The first letter of the names in each round (0 cold, 1 warm): sender, receiver, room user.
 * A name is that letter and the user's global index; IRC compares nicks case-insensitively,
 * so the rounds differ in letters, not in case.
 */
const ROUND_LETTERS = [
  { sender: "s", receiver: "r", user: "u" },
  { sender: "t", receiver: "q", user: "v" },
] as const;

/** The letters of the names in `round`. */
export function roundLetters(round: number): (typeof ROUND_LETTERS)[number] {
  const letters = ROUND_LETTERS[round];
  if (letters === undefined) throw new RangeError(`No names for round ${round}: use 0 or 1`);
  return letters;
}

/** Wall-clock time in ms with a fraction, comparable between processes on one machine. */
export function wallMs(): number {
  return performance.timeOrigin + performance.now();
}

type Phase = "setup" | "warmup" | "measure" | "stopped";

/** One loadgen's share of a traffic workload. */
export class Traffic implements TextSink {
  readonly #w: TrafficWorkload;
  /** Local users by local index (= `TcpClient.index`), and their global index. */
  readonly #clients: TcpClient[] = [];
  readonly #globalUser: number[] = [];
  /** Local senders. */
  readonly #senderClient: TcpClient[] = [];
  readonly #senderName: string[] = [];
  /** What each line a sender sends starts with, up to the sequence number. */
  readonly #senderPrefix: string[] = [];
  /** What each line ends with: LF, or CR LF for IRC. */
  readonly #eol: string;
  readonly #irc: boolean;
  readonly #letters: (typeof ROUND_LETTERS)[number];
  #seq = new Float64Array(0);
  #inflight = new Int32Array(0);
  #needed = new Int32Array(0);
  #ringSeq = new Float64Array(0);
  #ringLeft = new Int32Array(0);
  #offsetMs = new Float64Array(0);
  /** Global sender index → local sender index, or -1. */
  readonly #localSender: Int32Array;
  /** Per stream (local receiver × global sender): what arrived. */
  #ledger = new Ledger(0, 0);
  #phase: Phase = "setup";
  #openLoopStart = 0;
  /** Open loop: when the next message is due, so that reads can send it on time. */
  #nextDue = Infinity;
  /** Open loop: how late each send left, µs. */
  readonly #sendLag = new Histogram();
  #ticker: ReturnType<typeof setInterval> | undefined;
  #measureFrom = Infinity;
  #measureTo = Infinity;
  #measureStartedAt = 0;
  #measuredMs = 0;
  #sentAtMeasure = 0;
  #sentMeasured = 0;
  #deliveriesMeasured = 0;
  #lastDeliveryAt = 0;
  readonly #latency = new Histogram();
  #errors = 0;
  readonly #errorSamples: string[] = [];
  #unexpected = 0;
  #closedByServer = 0;
  #closing = false;
  #lateSends = 0;
  /** Set-up of a cluster scenario: the `JOINED` names each sender has seen. */
  readonly #seen = new Map<TcpClient, Set<string>>();
  /** `<sender> <name>` → wakes the set-up waiting for that notice. */
  readonly #seenWaiters = new Map<string, () => void>();

  constructor(workload: TrafficWorkload) {
    const { users, senders, loadgens } = workload;
    if (workload.mode === "room" && users < 2 * loadgens) {
      throw new RangeError(`A room of ${users} cannot be split over ${loadgens} loadgens`);
    }
    if (workload.window >= RING) throw new RangeError(`Window ${workload.window} ≥ ${RING}`);
    if (workload.mode === "direct" ? senders !== users : senders > users) {
      throw new RangeError(`${senders} senders do not fit ${users} ${workload.mode} users`);
    }
    this.#w = workload;
    this.#localSender = new Int32Array(senders).fill(-1);
    this.#irc = workload.protocol === "irc";
    this.#eol = this.#irc ? "\r\n" : "\n";
    this.#letters = roundLetters(workload.round);
  }

  get #senders(): number {
    return this.#w.senders;
  }

  // Setup ---------------------------------------------------------------------------------

  /** Connects and joins every local user; returns how many, and how many connections it took. */
  async setup(): Promise<{ clients: number; connects: number }> {
    const connects = this.#w.mode === "direct"
      ? await this.#setupDirect()
      : await this.#setupRoom();
    this.#ledger = new Ledger(this.#clients.length, this.#senders);
    const localSenders = this.#senderClient.length;
    this.#seq = new Float64Array(localSenders);
    this.#inflight = new Int32Array(localSenders);
    this.#ringSeq = new Float64Array(localSenders * RING).fill(-1);
    this.#ringLeft = new Int32Array(localSenders * RING);
    this.#offsetMs = new Float64Array(localSenders);
    this.#needed = new Int32Array(localSenders);
    const interval = this.#intervalMs();
    for (let k = 0; k < localSenders; k++) {
      this.#needed[k] = this.#w.mode === "direct" ? 1 : this.#clients.length - 1;
      this.#offsetMs[k] = interval * k / localSenders; // spread the senders over the interval
    }
    return { clients: this.#clients.length, connects };
  }

  /** Where user `index` connects: the second node for receivers in a cluster scenario. */
  #options(index: number, onPeer = false) {
    const port = onPeer ? this.#w.peerPort ?? this.#w.port : this.#w.port;
    return { host: this.#w.host, port, index, sink: this };
  }

  /**
   * Resolves once the sender's node has announced `name` with `JOINED`: a direct message to a
   * user of another node is refused until the sender's node knows it.
   */
  #joinedSeen(client: TcpClient, name: string): Promise<void> {
    const seen = this.#seen.get(client);
    if (seen?.has(name)) return Promise.resolve();
    const waiter = Promise.withResolvers<void>();
    const timer = setTimeout(
      () => waiter.reject(new Error(`No JOINED ${name} on the sender's node in 10 s`)),
      10_000,
    );
    this.#seenWaiters.set(`${client.name} ${name}`, () => {
      clearTimeout(timer);
      waiter.resolve();
    });
    return waiter.promise;
  }

  /** Pairs connections so that each receiver is placed apart from its sender. */
  async #setupDirect(): Promise<number> {
    const { users: pairs, loadgen, loadgens, placement, protocol } = this.#w;
    const { sender: s, receiver: r } = this.#letters;
    const mine: number[] = [];
    for (let g = loadgen; g < pairs; g += loadgens) mine.push(g);
    if (placement === "any") {
      // Any two clients will do: connect each under its name at once (IRC needs that). In a
      // cluster the receiver is on the other node, and joins after its sender so that the
      // sender sees its JOINED.
      const peer = this.#w.peerPort !== undefined;
      for (const g of mine) {
        const sender = await connectAs(this.#options(-1), protocol, `${s}${g}`, false);
        if (peer) this.#seen.set(sender, new Set());
        const receiver = await connectAs(this.#options(-1, peer), protocol, `${r}${g}`, false);
        if (peer) await this.#joinedSeen(sender, `${r}${g}`);
        this.#addJoined(sender, g);
        this.#addJoined(receiver, g);
        this.#addSender(g, sender, `${s}${g}`, `${r}${g}`);
      }
      return 2 * mine.length;
    }
    if (protocol !== "chatd") throw new RangeError(`Placement by ${placement} needs chatd`);
    const pool: TcpClient[] = [];
    let connects = 0;
    for (const g of mine) {
      for (;;) {
        if (connects > 40 * mine.length + 100) {
          throw new Error(`Could not place ${mine.length} pairs apart by ${placement}`);
        }
        connects++;
        const client = await connectAndJoin(this.#options(-1), undefined);
        const partner = pool.findIndex((other) => apart(other, client, placement));
        if (partner === -1) {
          pool.push(client);
          continue;
        }
        const sender = pool.splice(partner, 1)[0]!;
        await this.#addUser(sender, g, `${s}${g}`);
        await this.#addUser(client, g, `${r}${g}`);
        this.#addSender(g, sender, `${s}${g}`, `${r}${g}`);
        break;
      }
    }
    for (const client of pool) client.close();
    return connects;
  }

  async #setupRoom(): Promise<number> {
    const { users, loadgen, loadgens, senders, protocol } = this.#w;
    const letter = this.#letters.user;
    const mine: number[] = [];
    for (let u = loadgen; u < users; u += loadgens) mine.push(u);
    const clients: TcpClient[] = new Array(mine.length);
    let next = 0;
    const worker = async () => {
      while (next < mine.length) {
        const i = next++;
        const onPeer = mine[i]! >= senders;
        clients[i] = await connectAs(
          this.#options(i, onPeer),
          protocol,
          `${letter}${mine[i]}`,
          true,
        );
      }
    };
    await Promise.all(Array.from({ length: this.#w.connectConcurrency }, worker));
    for (let i = 0; i < mine.length; i++) {
      this.#clients.push(clients[i]!);
      this.#globalUser.push(mine[i]!);
      const target = this.#irc ? CHANNEL : "*";
      const name = `${letter}${mine[i]}`;
      if (mine[i]! < senders) this.#addSender(mine[i]!, clients[i]!, name, target);
    }
    return mine.length;
  }

  async #addUser(client: TcpClient, global: number, name: string): Promise<void> {
    this.#addJoined(client, global);
    await joinAs(client, name);
  }

  #addJoined(client: TcpClient, global: number): void {
    client.index = this.#clients.length;
    this.#clients.push(client);
    this.#globalUser.push(global);
  }

  #addSender(global: number, client: TcpClient, name: string, target: string): void {
    this.#localSender[global] = this.#senderClient.length;
    this.#senderClient.push(client);
    this.#senderName.push(name);
    this.#senderPrefix.push(this.#irc ? `PRIVMSG ${target} :${name}:` : `CHAT ${target} ${name}:`);
  }

  #intervalMs(): number {
    return this.#w.window === 0 ? 1000 / this.#w.ratePerSender : 0;
  }

  // Phases --------------------------------------------------------------------------------

  /** Starts sending (not yet measured). */
  startSending(): void {
    this.#phase = "warmup";
    if (this.#w.window > 0) {
      for (let k = 0; k < this.#senderClient.length; k++) this.#refill(k);
    } else {
      this.#openLoopStart = wallMs();
      this.#ticker = setInterval(() => this.#tick(), 1);
    }
  }

  /** Starts counting. */
  startMeasuring(): void {
    this.#phase = "measure";
    this.#measureFrom = wallMs();
    this.#measureStartedAt = performance.now();
    this.#sentAtMeasure = this.#totalSent();
  }

  /** Stops sending; returns what each local sender sent over the whole run, by name. */
  stop(): Record<string, number> {
    this.#measureTo = wallMs();
    this.#measuredMs = performance.now() - this.#measureStartedAt;
    this.#phase = "stopped";
    clearInterval(this.#ticker);
    this.#sentMeasured = this.#totalSent() - this.#sentAtMeasure;
    const sent: Record<string, number> = {};
    for (let k = 0; k < this.#senderName.length; k++) sent[this.#senderName[k]!] = this.#seq[k]!;
    return sent;
  }

  #totalSent(): number {
    let total = 0;
    for (const count of this.#seq) total += count;
    return total;
  }

  /**
   * Waits until everything `sent` (by every sender of every loadgen) has arrived, nothing
   * arrived for a while, or `timeoutMs` passed; then counts.
   */
  async drain(sent: Record<string, number>, timeoutMs: number): Promise<TrafficResult> {
    const expected = this.#expected(sent);
    const deadline = performance.now() + timeoutMs;
    this.#lastDeliveryAt = wallMs();
    while (
      !this.#ledger.complete(expected) && performance.now() < deadline &&
      wallMs() - this.#lastDeliveryAt < DRAIN_QUIET_MS
    ) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const { extra, ...counts } = this.#ledger.counts(expected);
    return {
      kind: "result",
      workload: "traffic",
      sentMeasured: this.#sentMeasured,
      deliveriesMeasured: this.#deliveriesMeasured,
      measuredMs: this.#measuredMs,
      counts,
      latency: this.#latency.toJSON(),
      errors: this.#errors,
      errorSamples: this.#errorSamples,
      unexpected: this.#unexpected + extra,
      closed: this.#closedByServer,
      lateSends: this.#lateSends,
      sendLag: this.#sendLag.toJSON(),
    };
  }

  /** Deliveries expected per stream, given what every sender sent. */
  #expected(sent: Record<string, number>): Float64Array {
    const direct = this.#w.mode === "direct";
    const { sender: s, user: u } = this.#letters;
    return Ledger.expectation(this.#clients.length, this.#senders, (receiver, sender) => {
      const user = this.#globalUser[receiver]!;
      // direct: local users alternate sender, receiver; a receiver expects its own sender.
      if (direct) return receiver % 2 === 1 && sender === user ? sent[`${s}${sender}`] ?? 0 : 0;
      return sender !== user ? sent[`${u}${sender}`] ?? 0 : 0;
    });
  }

  /** Closes every connection. */
  close(): void {
    this.#closing = true;
    clearInterval(this.#ticker);
    for (const client of this.#clients) client.close();
  }

  // Sending -------------------------------------------------------------------------------

  #send(k: number, stamp: number): void {
    const seq = this.#seq[k]!;
    this.#seq[k] = seq + 1;
    if (this.#w.window > 0) {
      const slot = k * RING + (seq & (RING - 1));
      this.#ringSeq[slot] = seq;
      this.#ringLeft[slot] = this.#needed[k]!;
      this.#inflight[k]!++;
    }
    this.#senderClient[k]!.send(`${this.#senderPrefix[k]}${seq}:${stamp.toFixed(3)}${this.#eol}`);
  }

  #refill(k: number): void {
    const window = this.#w.window;
    const now = wallMs();
    while (this.#inflight[k]! < window) this.#send(k, now);
  }

  /**
   * Open loop: sends every message whose time has come, stamped with that time. Runs from a
   * 1 ms interval timer (which fires about every 2 ms) and from every read that finds a
   * message due, which keeps sends within a fraction of a ms of their time under traffic.
   */
  #tick(): void {
    if (this.#phase !== "warmup" && this.#phase !== "measure") return;
    const now = wallMs();
    const interval = this.#intervalMs();
    let nextDue = Infinity;
    for (let k = 0; k < this.#senderClient.length; k++) {
      for (;;) {
        const due = this.#openLoopStart + this.#offsetMs[k]! + this.#seq[k]! * interval;
        if (due > now) {
          if (due < nextDue) nextDue = due;
          break;
        }
        if (now - due > LATE_MS) this.#lateSends++;
        if (due >= this.#measureFrom) this.#sendLag.record((now - due) * 1000);
        this.#send(k, due);
      }
    }
    this.#nextDue = nextDue;
  }

  // Receiving -----------------------------------------------------------------------------

  onText(client: TcpClient, text: string): void {
    const now = wallMs();
    if (now >= this.#nextDue) this.#tick();
    let start = 0;
    for (;;) {
      const lf = text.indexOf("\n", start);
      if (lf === -1) break;
      const end = lf > start && text.charCodeAt(lf - 1) === CH_CR ? lf - 1 : lf;
      let body = -1;
      if (this.#irc) body = privmsgTextStart(text, start, end);
      else {
        const first = text.charCodeAt(start);
        if (first === CH_F || (first === CH_A && text.charCodeAt(start + 1) === CH_L)) {
          body = text.indexOf(" ", text.indexOf(" ", start) + 1) + 1;
        }
      }
      if (body > 0) this.#delivery(client.index, text, start, body, end, now);
      else this.#otherLine(client, text.slice(start, end));
      start = lf + 1;
    }
  }

  /**
   * `FROM <sender> <text>`, `ALL <sender> <text>` or IRC's `:<sender>!... PRIVMSG <target>
   * :<text>`, where text (from `body`) = `<sender>:<seq>:<sendTime>`.
   */
  #delivery(
    receiver: number,
    text: string,
    start: number,
    body: number,
    end: number,
    now: number,
  ): void {
    // The sender's name is one letter and its global index.
    const space = body - 1;
    let i = space + 2;
    let sender = 0, seq = 0, whole = 0, fraction = 0, scale = 1;
    let c = text.charCodeAt(i);
    for (; c >= CH_0 && c <= CH_9; c = text.charCodeAt(++i)) sender = sender * 10 + c - CH_0;
    const okSender = c === CH_COLON && i > space + 2;
    c = text.charCodeAt(++i);
    const seqStart = i;
    for (; c >= CH_0 && c <= CH_9; c = text.charCodeAt(++i)) seq = seq * 10 + c - CH_0;
    const okSeq = c === CH_COLON && i > seqStart;
    c = text.charCodeAt(++i);
    for (; c >= CH_0 && c <= CH_9; c = text.charCodeAt(++i)) whole = whole * 10 + c - CH_0;
    if (c === CH_DOT) {
      for (c = text.charCodeAt(++i); c >= CH_0 && c <= CH_9; c = text.charCodeAt(++i)) {
        fraction = fraction * 10 + c - CH_0;
        scale *= 10;
      }
    }
    if (!okSender || !okSeq || i !== end || sender >= this.#senders) {
      this.#unexpected++;
      this.#sample(text.slice(start, end));
      return;
    }
    this.#delivered(receiver, sender, seq, whole + fraction / scale, now);
  }

  #delivered(receiver: number, sender: number, seq: number, sentAt: number, now: number): void {
    if (this.#ledger.record(receiver, sender, seq) === "duplicate") return;
    this.#lastDeliveryAt = now;
    if (this.#phase === "measure") this.#deliveriesMeasured++;
    if (sentAt >= this.#measureFrom && sentAt < this.#measureTo) {
      this.#latency.record((now - sentAt) * 1000);
    }
    const k = this.#localSender[sender]!;
    if (k === -1 || this.#w.window === 0) return;
    const slot = k * RING + (seq & (RING - 1));
    if (this.#ringSeq[slot] !== seq) return;
    if (--this.#ringLeft[slot]! > 0) return;
    this.#ringSeq[slot] = -1;
    this.#inflight[k]!--;
    if (this.#phase === "warmup" || this.#phase === "measure") this.#refill(k);
  }

  #otherLine(client: TcpClient, line: string): void {
    if (this.#irc) {
      const handled = handleIrcLine(client, line);
      if (handled === "error") this.#errors++;
      if (handled === "unexpected") this.#unexpected++;
      if (handled !== "ok") this.#sample(line);
      return;
    }
    if (line.startsWith("JOINED ")) {
      if (this.#phase === "setup" && this.#seen.size > 0) this.#noticed(client, line.slice(7));
      return;
    }
    if (line.startsWith("LEFT ")) return;
    // The replay after a JOIN of what was said before (chatd's --history, on by default): not
    // live traffic, neither counted nor an error.
    if (line.startsWith("HISTORY ")) return;
    if (line.startsWith("HELLO ") || line.startsWith("OK ")) return client.answer(line);
    if (line.startsWith("ERR ")) {
      if (!client.joined) return client.answer(line);
      this.#errors++;
      this.#sample(line);
      return;
    }
    this.#unexpected++;
    this.#sample(line);
  }

  #noticed(client: TcpClient, name: string): void {
    const seen = this.#seen.get(client);
    if (seen === undefined) return;
    seen.add(name);
    const key = `${client.name} ${name}`;
    const wake = this.#seenWaiters.get(key);
    if (wake === undefined) return;
    this.#seenWaiters.delete(key);
    wake();
  }

  #sample(line: string): void {
    if (this.#errorSamples.length < MAX_ERROR_SAMPLES) this.#errorSamples.push(line.slice(0, 120));
  }

  onClose(client: TcpClient): void {
    if (!this.#closing && client.joined) this.#closedByServer++;
  }
}

function apart(a: TcpClient, b: TcpClient, placement: Placement): boolean {
  switch (placement) {
    case "process":
      return a.pId !== b.pId;
    case "thread":
      return a.pId !== b.pId || a.tId !== b.tId;
    case "any":
      return true;
  }
}
