/**
 * The cluster link: how a node's supervisor reaches the other chatd nodes through NATS with
 * JetStream. One NATS connection per node, the supervisor's; threads reach it over the bus.
 *
 * - `chatd_names` (KV, key = the lower-cased name, value = {@linkcode ClusterEntry}): the
 *   atomic create decides a claim across nodes (exactly one winner); a watch gives every
 *   node the other nodes' users.
 * - `chatd_nodes` (KV, key = node name): each node's heartbeat, put every
 *   {@linkcode HEARTBEAT_MS}. A node not heard from for {@linkcode NODE_TIMEOUT_MS} is dead:
 *   every node forgets its users (they see `LEFT`) and deletes their names from
 *   `chatd_names` (a conditional delete on the revision seen, so a name taken again since is
 *   kept).
 * - `chatd.node.<node>` (core NATS): chat records for one node, as bus datagrams (`wire.ts`).
 *   One subject per receiving node, published on one connection per sending node, keeps the
 *   order per sender → receiver.
 * - `chatd_history` (JetStream stream, with `--history`): subjects `chatd.history.lobby` and
 *   `chatd.history.room.<room key without #>`, the last `--history` lines of each. Every node
 *   publishes the lines its users say and reads the whole stream back in stream order, so every
 *   node holds the same history in the same order.
 *
 * Cut off from NATS, a node publishes nothing (the client's reconnect buffer would hand
 * stale records over late, or drop them unseen): {@linkcode Cluster.publish} says so, and a
 * claim is refused as `unavailable` at once. Back (or after a freeze), it re-reads both
 * buckets and reconciles (`_reconcile.ts`): the bucket entry wins.
 *
 * @module
 */
import { connect, credsAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { type KV, Kvm, type KvWatchEntry } from "@nats-io/kv";
import {
  DiscardPolicy,
  type JetStreamManager,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import { type Logger, logger } from "./log.ts";
import { hasControlCharacter, nameKey, nameProblem, ROOM, roomProblem } from "./protocol.ts";
import type { HistoryLine } from "./history.ts";
import { type NameRecord, type ReconcileAction, reconcileNames } from "./_reconcile.ts";

/** How often a node puts its heartbeat. */
export const HEARTBEAT_MS = 1000;
/** A node silent this long is dead; its users get `LEFT` within this plus a check period. */
export const NODE_TIMEOUT_MS = 3000;
const CHECK_MS = 500;
/**
 * How long an entry of a live node, missing from a re-read bucket, is still shown: its node
 * claims it again if the bucket lost it (a NATS server back without its storage).
 */
const GHOST_GRACE_MS = NODE_TIMEOUT_MS;
const NAMES_BUCKET = "chatd_names";
const NODES_BUCKET = "chatd_nodes";
const HISTORY_STREAM = "chatd_history";
const HISTORY_SUBJECTS = "chatd.history.>";
/** How long an entry waits at most for the node's history to catch up with the stream. */
const HISTORY_SYNC_MS = 2000;

/** A node name: also a NATS subject token and a KV key. */
export const NODE_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** A name claim as stored in `chatd_names`. */
export interface ClusterEntry {
  name: string;
  node: string;
  /** The node's run that made the claim: a node restarted under the same name has another. */
  boot: string;
  /** The thread endpoint on that node. */
  ep: string;
  conn: number;
}

/** How a claim across the cluster ended. */
export type ClaimResult = "won" | "taken" | "unavailable";

/** What the cluster tells the directory. */
export interface ClusterHandlers {
  /** Another node's user claimed a name. */
  onAdd(entry: ClusterEntry): void;
  /**
   * Another node's user is gone: its name was deleted from the bucket (`final` false: its
   * node, when alive, announced the release on this node's subject before deleting it), or
   * its node died or restarted (`final` true: no announcement comes).
   */
  onRemove(entry: ClusterEntry, final: boolean): void;
  /** A datagram another node sent to this one. */
  onDatagram(data: Uint8Array): void;
  /**
   * A name this node's user holds is another node's in `chatd_names` (found after an outage
   * or a freeze): the bucket wins, the local holder loses it. `key` is the lower-cased name.
   */
  onLost(key: string): void;
  /** A line of history (`room` is `*` or a room key), in stream order; with `history` only. */
  onHistory?(room: string, line: HistoryLine): void;
  /** Another node was heard from for the first time, or under a new run. */
  onNode?(node: string): void;
}

/** Options of {@linkcode joinCluster}. */
export interface ClusterOptions {
  /** NATS server URLs. */
  servers: string[];
  /** This node's name, see {@linkcode NODE_NAME}. */
  node: string;
  /** A NATS credentials file; empty = none (a token or user may be in the URL). */
  creds?: string;
  /** Lines of history kept per room (`--history`); 0 (the default) keeps no stream. */
  history?: number;
  /** Rooms whose history the stream keeps at most, the lobby included; default 20,001. */
  historyRooms?: number;
}

/** What {@linkcode natsAuth} finds: the URLs without credentials, and the credentials. */
export interface NatsAuth {
  servers: string[];
  user?: string;
  pass?: string;
  token?: string;
}

/**
 * Takes a user and password (`nats://user:pass@host:port`) or a token (`nats://token@host`)
 * out of the `--cluster` URLs: the NATS client authenticates with its `user`/`pass`/`token`
 * options and does not read them from a URL.
 *
 * @throws {TypeError} when two URLs carry different credentials.
 */
export function natsAuth(urls: readonly string[]): NatsAuth {
  let userinfo: string | undefined;
  const servers = urls.map((url) =>
    url.replace(/^([a-z]+:\/\/)([^@/]*)@/, (_, scheme: string, found: string) => {
      if (userinfo !== undefined && userinfo !== found) {
        throw new TypeError("Cannot join the cluster: the URLs carry different credentials");
      }
      userinfo = found;
      return scheme;
    })
  );
  if (userinfo === undefined) return { servers };
  const colon = userinfo.indexOf(":");
  if (colon === -1) return { servers, token: decodeURIComponent(userinfo) };
  return {
    servers,
    user: decodeURIComponent(userinfo.slice(0, colon)),
    pass: decodeURIComponent(userinfo.slice(colon + 1)),
  };
}

function parseClusterEntry(data: Uint8Array): ClusterEntry | undefined {
  try {
    const v = JSON.parse(new TextDecoder().decode(data));
    if (
      typeof v === "object" && v !== null && typeof v.name === "string" &&
      typeof v.node === "string" && NODE_NAME.test(v.node) && typeof v.boot === "string" &&
      typeof v.ep === "string" && Number.isInteger(v.conn)
    ) {
      return { name: v.name, node: v.node, boot: v.boot, ep: v.ep, conn: v.conn };
    }
  } catch {
    // fall through
  }
  return undefined;
}

/** The history subject of `room` (`*` for the lobby, or a room name in any letter case). */
export function historySubject(room: string): string {
  return room === ROOM ? "chatd.history.lobby" : `chatd.history.room.${nameKey(room).slice(1)}`;
}

/** The room (`*` or a room key) and line of a history message, or undefined if malformed. */
export function parseHistoryMessage(
  subject: string,
  data: Uint8Array,
): { room: string; line: HistoryLine } | undefined {
  const room = subject === "chatd.history.lobby"
    ? ROOM
    : subject.startsWith("chatd.history.room.")
    ? `#${subject.slice("chatd.history.room.".length)}`
    : undefined;
  if (room === undefined || (room !== ROOM && roomProblem(room) !== undefined)) return undefined;
  try {
    const v = JSON.parse(new TextDecoder().decode(data));
    if (
      typeof v === "object" && v !== null && Number.isFinite(v.time) &&
      typeof v.sender === "string" && nameProblem(v.sender) === undefined &&
      typeof v.text === "string" && !hasControlCharacter(v.text)
    ) {
      return { room: nameKey(room), line: { time: v.time, sender: v.sender, text: v.text } };
    }
  } catch {
    // fall through
  }
  return undefined;
}

/** What the directory uses of a {@linkcode Cluster}; tests give a fake. */
export type ClusterLink = Pick<
  Cluster,
  "claim" | "release" | "publish" | "publishAll" | "close" | "publishHistory" | "historySynced"
>;

/** Joins a cluster: {@linkcode Cluster.join}, or a fake's. */
export type JoinCluster = (
  options: ClusterOptions,
  handlers: ClusterHandlers,
) => Promise<ClusterLink>;

/** A node's link to the cluster. */
export class Cluster {
  readonly node: string;
  readonly boot = crypto.randomUUID();
  readonly #nc: NatsConnection;
  #names: KV;
  #nodes: KV;
  readonly #handlers: ClusterHandlers;
  readonly #log: Logger = logger("cluster");
  /** Other nodes' entries by name key, with their revision. */
  readonly #remote = new Map<string, { entry: ClusterEntry; revision: number }>();
  /** Other nodes: the run each heartbeat names. */
  readonly #boots = new Map<string, string>();
  /** Other nodes: when each was last heard from (or first seen). */
  readonly #lastSeen = new Map<string, number>();
  /** This node's claims in flight or held: resolves to the revision, or undefined if lost. */
  readonly #own = new Map<string, Promise<number | undefined>>();
  /** This node's claims won and held, with their revision and what was stored. */
  readonly #held = new Map<string, number>();
  readonly #claims = new Map<string, ClusterEntry>();
  /** The last revision of each key this node applied, so that a replay is ignored. */
  #revisions = new Map<string, number>();
  /** Bumped by each re-read: events of an older watch are ignored. */
  #generation = 0;
  #namesWatch: { stop(): void } | undefined;
  #nodesWatch: { stop(): void } | undefined;
  /** False from a disconnect until the client has reconnected. */
  #connected = true;
  /** The re-read running now, and whether another was asked for meanwhile. */
  #syncing: Promise<void> | undefined;
  #syncAgain = false;
  /** What to do for each record published since the flush in flight was sent, should it fail. */
  #unconfirmed: (() => void)[] = [];
  #confirming = false;
  /** Ghosts of live nodes waiting out {@linkcode GHOST_GRACE_MS}. */
  readonly #graceTimers = new Set<ReturnType<typeof setTimeout>>();
  readonly #timers: ReturnType<typeof setInterval>[] = [];
  /** Deletes not yet answered: closing waits for them. */
  readonly #deleting = new Set<Promise<void>>();
  /** When this node's own heartbeat last reached NATS. */
  #lastBeat = performance.now();
  #closed = false;
  /** The history stream's manager, when the node keeps history. */
  #jsm: JetStreamManager | undefined;
  /** The stream sequence of the last history line read. */
  #historySeq = 0;
  /** Entries waiting for the history to reach a stream sequence. */
  #historyWaiters: { seq: number; resolve: () => void }[] = [];
  /** The history stream's messages, stopped on close. */
  #historyMessages: { stop(): void } | undefined;

  private constructor(
    nc: NatsConnection,
    names: KV,
    nodes: KV,
    node: string,
    handlers: ClusterHandlers,
  ) {
    this.#nc = nc;
    this.#names = names;
    this.#nodes = nodes;
    this.node = node;
    this.#handlers = handlers;
  }

  /**
   * Connects, opens the buckets, starts the heartbeat and the watches.
   *
   * @throws {Error} when the NATS server cannot be reached or has no JetStream.
   */
  static async join(options: ClusterOptions, handlers: ClusterHandlers): Promise<Cluster> {
    const nc = await connect({
      ...natsAuth(options.servers),
      name: `chatd ${options.node}`,
      maxReconnectAttempts: -1,
      authenticator: options.creds
        ? credsAuthenticator(await Deno.readFile(options.creds))
        : undefined,
    });
    try {
      const kvm = new Kvm(nc);
      const names = await kvm.create(NAMES_BUCKET, { history: 1 });
      const nodes = await kvm.create(NODES_BUCKET, { history: 1, ttl: 10 * NODE_TIMEOUT_MS });
      const cluster = new Cluster(nc, names, nodes, options.node, handlers);
      if ((options.history ?? 0) > 0) {
        await cluster.#openHistory(options.history!, options.historyRooms ?? 20_001);
      }
      await cluster.#start();
      return cluster;
    } catch (error: unknown) {
      await nc.close();
      throw error;
    }
  }

  async #start(): Promise<void> {
    (async () => {
      for await (const status of this.#nc.status()) {
        if (status.type === "disconnect") {
          this.#connected = false;
          this.#log.warning("cluster disconnected");
        } else if (status.type === "reconnect") {
          this.#connected = true;
          this.#log.info("cluster reconnected");
          this.#resync();
        }
      }
    })();
    const sub = this.#nc.subscribe(`chatd.node.${this.node}`);
    (async () => {
      for await (const message of sub) this.#handlers.onDatagram(message.data);
    })();
    await this.#beat();
    await this.#sync();
    this.#timers.push(setInterval(() => this.#beat(), HEARTBEAT_MS));
    this.#timers.push(setInterval(() => this.#check(), CHECK_MS));
  }

  /** True while the NATS connection is up: what is published now is sent now. */
  get available(): boolean {
    return this.#connected && !this.#closed;
  }

  /**
   * Re-reads both buckets and reconciles, once the one running has ended. A failed re-read
   * (NATS gone again) is tried again with the next heartbeat that reaches NATS.
   */
  #resync(): void {
    if (this.#closed) return;
    if (this.#syncing) {
      this.#syncAgain = true;
      return;
    }
    this.#syncing = this.#sync().catch((error: unknown) => {
      this.#log.warning("cluster re-read failed", { error: String(error) });
      this.#syncAgain = true;
    }).finally(() => {
      this.#syncing = undefined;
      if (this.#syncAgain && this.#connected) {
        this.#syncAgain = false;
        this.#resync();
      }
    });
  }

  /**
   * Opens the buckets (a NATS server that lost its storage has none), reads `chatd_names` as
   * of its last revision `since`, reconciles with that, then watches from `since + 1`:
   * what changed meanwhile comes again and is ignored by its revision.
   */
  async #sync(): Promise<void> {
    const kvm = new Kvm(this.#nc);
    this.#names = await kvm.create(NAMES_BUCKET, { history: 1 });
    this.#nodes = await kvm.create(NODES_BUCKET, { history: 1, ttl: 10 * NODE_TIMEOUT_MS });
    const generation = ++this.#generation;
    this.#nodesWatch?.stop();
    const nodesWatch = await this.#nodes.watch();
    this.#nodesWatch = nodesWatch;
    (async () => {
      for await (const e of nodesWatch) {
        if (generation !== this.#generation) break;
        if (e.key !== this.node && e.operation === "PUT") {
          this.#lastSeen.set(e.key, performance.now());
          this.#booted(e.key, e.value);
        }
      }
    })();
    const since = (await this.#names.status()).streamInfo.state.last_seq;
    const bucket = new Map<string, NameRecord>();
    for await (const key of await this.#names.keys()) {
      const e = await this.#names.get(key);
      if (e === null || e.operation !== "PUT") continue;
      const entry = parseClusterEntry(e.value);
      if (entry === undefined || nameKey(entry.name) !== key) {
        this.#log.warning("malformed name entry ignored", { key });
        continue;
      }
      bucket.set(key, { entry, revision: e.revision });
    }
    if (generation !== this.#generation || this.#closed) return;
    this.#namesWatch?.stop();
    this.#revisions = new Map([...bucket].map(([key, record]) => [key, record.revision]));
    const pending = new Set([...this.#own.keys()].filter((key) => !this.#held.has(key)));
    const actions = reconcileNames({
      node: this.node,
      boot: this.boot,
      held: this.#held,
      pending,
      remote: this.#remote,
      bucket,
    });
    if (actions.length > 0) {
      this.#log.info("cluster names reconciled", { changes: actions.map(describe).join(",") });
    }
    for (const action of actions) this.#act(action);
    // A node that restarted serves once its earlier run's names are free.
    await Promise.allSettled([...this.#deleting]);
    const namesWatch = await this.#names.watch({ resumeFromRevision: since + 1 });
    this.#namesWatch = namesWatch;
    (async () => {
      for await (const e of namesWatch as AsyncIterable<KvWatchEntry>) {
        if (generation !== this.#generation) break;
        this.#onName(e.key, e.operation, e.value, e.revision);
      }
    })();
  }

  #act(action: ReconcileAction): void {
    switch (action.kind) {
      case "keep":
        this.#held.set(action.key, action.revision);
        this.#own.set(action.key, Promise.resolve(action.revision));
        return;
      case "reclaim":
        return void this.#reclaim(action.key);
      case "lost":
        return this.#lose(action.key);
      case "delete":
        return this.#delete(action.key, action.revision);
      case "ghost": {
        const { entry, revision } = action.record;
        const key = nameKey(entry.name);
        const remove = () => {
          if (this.#remote.get(key)?.revision !== revision) return;
          this.#remote.delete(key);
          this.#handlers.onRemove(entry, true);
        };
        if (!this.#lastSeen.has(entry.node)) return remove();
        const timer = setTimeout(() => {
          this.#graceTimers.delete(timer);
          remove();
        }, GHOST_GRACE_MS);
        this.#graceTimers.add(timer);
        return;
      }
      case "appeared": {
        const { entry, revision } = action.record;
        return this.#showRemote(nameKey(entry.name), entry, revision);
      }
    }
  }

  /** Claims a held name again that the bucket lost; another node's claim since wins. */
  async #reclaim(key: string): Promise<void> {
    const claim = this.#claims.get(key);
    const own = this.#own.get(key);
    if (claim === undefined || own === undefined) return;
    const result = await this.#create(key, JSON.stringify(claim));
    if (this.#own.get(key) !== own) {
      // Released meanwhile: what was created is not held.
      if (typeof result === "number") this.#delete(key, result);
      return;
    }
    if (typeof result === "number") {
      this.#held.set(key, result);
      this.#own.set(key, Promise.resolve(result));
    } else if (result === "taken") this.#lose(key);
    else this.#syncAgain = true;
  }

  /** A held name the bucket gives to another node's user. */
  #lose(key: string): void {
    if (!this.#held.delete(key)) return;
    this.#own.delete(key);
    this.#claims.delete(key);
    this.#log.warning("name lost to another node", { key });
    this.#handlers.onLost(key);
  }

  /** Creates `key`: its revision, or why not. */
  async #create(key: string, value: string): Promise<number | "taken" | "unavailable"> {
    try {
      return await this.#names.create(key, value);
    } catch (error: unknown) {
      this.#log.debug("cluster claim refused", { key, error: String(error) });
      // The create fails for an existing key and for a broker that cannot answer: ask which.
      try {
        const e = await this.#names.get(key);
        return e !== null && e.operation === "PUT" ? "taken" : "unavailable";
      } catch {
        return "unavailable";
      }
    }
  }

  /**
   * Creates the history stream (or uses the one there: its limits are those of the node that
   * created it) and reads it from the start, in stream order.
   */
  async #openHistory(lines: number, rooms: number): Promise<void> {
    const jsm = await jetstreamManager(this.#nc);
    try {
      await jsm.streams.info(HISTORY_STREAM);
    } catch {
      await jsm.streams.add({
        name: HISTORY_STREAM,
        subjects: [HISTORY_SUBJECTS],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        discard: DiscardPolicy.Old,
        max_msgs_per_subject: lines,
        max_msgs: lines * rooms,
      });
    }
    this.#jsm = jsm;
    // Ordered: one message after the other, from the start; recreated by the client after a
    // NATS restart, from where it was.
    const consumer = await jsm.jetstream().consumers.get(HISTORY_STREAM, {
      filter_subjects: HISTORY_SUBJECTS,
    });
    const messages = await consumer.consume();
    this.#historyMessages = messages;
    (async () => {
      for await (const message of messages) {
        this.#historySeq = message.seq;
        const parsed = parseHistoryMessage(message.subject, message.data);
        if (parsed === undefined) this.#log.warning("malformed history line ignored");
        else this.#handlers.onHistory?.(parsed.room, parsed.line);
        this.#historyWaiters = this.#historyWaiters.filter((waiter) => {
          if (waiter.seq > this.#historySeq) return true;
          waiter.resolve();
          return false;
        });
      }
    })();
  }

  /** A heartbeat of `node`: if it names a new run, the users of its earlier runs are gone. */
  #booted(node: string, value: Uint8Array): void {
    let boot: unknown;
    try {
      boot = JSON.parse(new TextDecoder().decode(value)).boot;
    } catch {
      return;
    }
    if (typeof boot !== "string" || this.#boots.get(node) === boot) return;
    this.#boots.set(node, boot);
    for (const [key, { entry }] of this.#remote) {
      if (entry.node !== node || entry.boot === boot) continue;
      this.#remote.delete(key);
      this.#handlers.onRemove(entry, true);
    }
    this.#handlers.onNode?.(node);
  }

  async #beat(): Promise<void> {
    try {
      await this.#nodes.put(this.node, JSON.stringify({ boot: this.boot }));
      const now = performance.now();
      // Back after being cut off from NATS ourselves: the silence was ours, not the others'.
      if (now - this.#lastBeat > 2 * HEARTBEAT_MS) {
        for (const node of this.#lastSeen.keys()) this.#lastSeen.set(node, now);
        // Frozen, or cut off without the client noticing: what changed meanwhile is re-read.
        this.#resync();
      } else if (this.#syncAgain && !this.#syncing) {
        this.#syncAgain = false;
        this.#resync();
      }
      this.#lastBeat = now;
    } catch (error: unknown) {
      if (!this.#closed) this.#log.warning("heartbeat failed", { error: String(error) });
    }
  }

  #onName(key: string, operation: string, value: Uint8Array, revision: number): void {
    const seen = this.#revisions.get(key);
    if (seen !== undefined && revision <= seen) return;
    if (operation !== "PUT") {
      this.#revisions.delete(key);
      // Another node judged this one dead and deleted a name a user here still holds.
      if (this.#held.has(key)) return this.#resync();
      const gone = this.#remote.get(key);
      if (gone === undefined) return;
      this.#remote.delete(key);
      this.#handlers.onRemove(gone.entry, false);
      return;
    }
    this.#revisions.set(key, revision);
    const entry = parseClusterEntry(value);
    if (entry === undefined || nameKey(entry.name) !== key) {
      this.#log.warning("malformed name entry ignored", { key });
      return;
    }
    if (entry.node === this.node) {
      // Left by an earlier run of this node, or a claim this run gave up (should NATS take it
      // after the client stopped waiting): free the name.
      if (entry.boot !== this.boot || !this.#own.has(key)) this.#delete(key, revision);
      return;
    }
    // The bucket wins over a name held here (its holder's claim was deleted meanwhile).
    if (this.#held.has(key)) this.#lose(key);
    this.#showRemote(key, entry, revision);
  }

  /** Shows another node's entry, replacing what was shown under its key. */
  #showRemote(key: string, entry: ClusterEntry, revision: number): void {
    const previous = this.#remote.get(key);
    if (previous?.revision === revision) return;
    if (previous && sameClaim(previous.entry, entry)) {
      // The same user's claim, put again by its node (into a bucket that had lost it).
      this.#remote.set(key, { entry, revision });
      return;
    }
    if (previous) this.#handlers.onRemove(previous.entry, true);
    this.#remote.set(key, { entry, revision });
    if (!this.#lastSeen.has(entry.node)) this.#lastSeen.set(entry.node, performance.now());
    this.#handlers.onAdd(entry);
  }

  #check(): void {
    const now = performance.now();
    // Cut off from NATS ourselves: every other node looks silent, and none is judged.
    if (now - this.#lastBeat > 2 * HEARTBEAT_MS) return;
    const dead = new Set<string>();
    for (const [node, seen] of this.#lastSeen) {
      if (now - seen > NODE_TIMEOUT_MS) dead.add(node);
    }
    if (dead.size === 0) return;
    for (const node of dead) this.#lastSeen.delete(node);
    this.#log.warning("nodes silent, their users removed", { nodes: [...dead].join(",") });
    for (const [key, { entry, revision }] of this.#remote) {
      if (!dead.has(entry.node)) continue;
      this.#remote.delete(key);
      this.#handlers.onRemove(entry, true);
      this.#delete(key, revision);
    }
  }

  #delete(key: string, revision: number): void {
    // Conditional: another node may have deleted it already, or the name been taken again.
    const deleting = this.#names.delete(key, { previousSeq: revision }).catch(() => {})
      .finally(() => this.#deleting.delete(deleting));
    this.#deleting.add(deleting);
  }

  /**
   * Claims `name` across the cluster for a user of this node. A claim that cannot be decided
   * (NATS unreachable now, or not answering) is `unavailable`, at once when the connection
   * is known to be down.
   */
  claim(name: string, ep: string, conn: number): Promise<ClaimResult> {
    if (!this.available) return Promise.resolve("unavailable");
    const key = nameKey(name);
    const value: ClusterEntry = { name, node: this.node, boot: this.boot, ep, conn };
    const result = this.#create(key, JSON.stringify(value));
    const created = result.then((r) => typeof r === "number" ? r : undefined);
    this.#own.set(key, created);
    return result.then((r) => {
      if (this.#own.get(key) !== created) return typeof r === "number" ? "won" : r;
      if (typeof r !== "number") {
        this.#own.delete(key);
        return r;
      }
      this.#held.set(key, r);
      this.#claims.set(key, value);
      return "won";
    });
  }

  /** Gives up a name this node claimed. */
  release(name: string): void {
    const key = nameKey(name);
    const own = this.#own.get(key);
    if (own === undefined) return;
    this.#own.delete(key);
    this.#held.delete(key);
    this.#claims.delete(key);
    const releasing = own.then((revision) => {
      if (revision !== undefined) this.#delete(key, revision);
    }).finally(() => this.#deleting.delete(releasing));
    this.#deleting.add(releasing);
  }

  /**
   * Sends a datagram to node `node`: false when it cannot go now (NATS unreachable), in which
   * case nothing is queued for later. When the connection breaks before NATS has confirmed
   * that it received the datagram (a flush: a PING answered after it), `unconfirmed` is
   * called: the NATS client drops what it had not written, and the server what it had not
   * forwarded, without a word.
   */
  publish(node: string, data: Uint8Array, unconfirmed?: () => void): boolean {
    if (!this.available) return false;
    try {
      this.#nc.publish(`chatd.node.${node}`, data);
    } catch (error: unknown) {
      this.#log.warning("publish failed", { node, error: String(error) });
      return false;
    }
    if (unconfirmed) {
      this.#unconfirmed.push(unconfirmed);
      this.#confirm();
    }
    return true;
  }

  /** One flush at a time; what is published meanwhile waits for the next. */
  #confirm(): void {
    if (this.#confirming) return;
    this.#confirming = true;
    const batch = this.#unconfirmed;
    this.#unconfirmed = [];
    this.#nc.flush().then(() => {}, () => {
      this.#log.warning("records not confirmed by NATS", { count: batch.length });
      for (const failed of batch) failed();
    }).finally(() => {
      this.#confirming = false;
      if (this.#unconfirmed.length > 0) this.#confirm();
    });
  }

  /**
   * Sends a datagram to every other live node; nothing while NATS is unreachable. False when
   * there are other nodes and it could not be sent to them (see {@linkcode publish}).
   */
  publishAll(data: Uint8Array): boolean {
    let sent = true;
    for (const node of this.#lastSeen.keys()) sent = this.publish(node, data) && sent;
    return sent;
  }

  /**
   * Adds a line to the history of `room` (`*` or a room name) on every node: published to the
   * stream on this node's one connection, so one sender's lines keep their order.
   */
  publishHistory(room: string, line: HistoryLine): void {
    // Cut off, nothing is left to the client's reconnect buffer (see publish): a line said
    // then is delivered live but kept in no history (README, "Running several nodes").
    if (this.#closed || this.#jsm === undefined || !this.#connected) return;
    try {
      this.#nc.publish(historySubject(room), JSON.stringify(line));
    } catch (error: unknown) {
      this.#log.warning("history line not published", { room, error: String(error) });
    }
  }

  /**
   * Resolves once this node has read every history line the stream held when called (so a
   * user entering now gets every line stored before, whichever node it was said on); at once
   * without history, and after {@linkcode HISTORY_SYNC_MS} at most (NATS slow or away).
   */
  async historySynced(): Promise<void> {
    if (this.#jsm === undefined || this.#closed) return;
    const reached = Promise.withResolvers<void>();
    const timer = setTimeout(reached.resolve, HISTORY_SYNC_MS);
    try {
      const info = this.#jsm.streams.info(HISTORY_STREAM).then(
        (i) => i.state.last_seq,
        (error: unknown) => void this.#log.debug("history not synced", { error: String(error) }),
      );
      const last = await Promise.race([info, reached.promise]);
      if (typeof last !== "number" || last <= this.#historySeq) return;
      this.#historyWaiters.push({ seq: last, resolve: reached.resolve });
      await reached.promise;
    } finally {
      clearTimeout(timer);
      this.#historyWaiters = this.#historyWaiters.filter((w) => w.resolve !== reached.resolve);
    }
  }

  /**
   * Stops the heartbeat, deletes this node's names and heartbeat key, and closes the
   * connection; cut off from NATS, it just closes.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const timer of this.#timers) clearInterval(timer);
    this.#historyMessages?.stop();
    for (const timer of this.#graceTimers) clearTimeout(timer);
    if (!this.#connected) {
      // Cut off, nothing would reach NATS: every request would wait for its timeout. The
      // other nodes remove this node's users once they find it silent.
      this.#log.warning("cluster left while cut off: names left to the other nodes");
      await this.#nc.close().catch(() => {});
      return;
    }
    await this.#syncing;
    this.#namesWatch?.stop();
    this.#nodesWatch?.stop();
    await Promise.allSettled([...this.#own.values()]);
    while (this.#deleting.size > 0) await Promise.allSettled([...this.#deleting]);
    try {
      await this.#nodes.delete(this.node);
      await this.#nc.drain();
    } catch (error: unknown) {
      this.#log.warning("cluster close failed", { error: String(error) });
      await this.#nc.close().catch(() => {});
    }
  }
}

function describe(action: ReconcileAction): string {
  return "key" in action
    ? `${action.kind} ${action.key}`
    : `${action.kind} ${action.record.entry.name}`;
}

function sameClaim(a: ClusterEntry, b: ClusterEntry): boolean {
  return a.name === b.name && a.node === b.node && a.boot === b.boot && a.ep === b.ep &&
    a.conn === b.conn;
}
