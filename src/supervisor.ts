/**
 * The supervisor: the process the user starts. It owns the port, the runtime directory and
 * the directory of users, starts N child processes by re-executing itself, respawns them
 * when they die, replaces them when they retire, and handles SIGINT and SIGTERM, the only
 * place in chatd that does.
 *
 * @module
 */
import { type ChildCommand, childCommand, currentRuntime } from "./child_command.ts";
import { type Config, parseInvocation, redactClusterUrl } from "./config.ts";
import { startHeartbeat } from "./_heartbeat.ts";
import { probeTcpPort, readKeyPair, type TlsKeyPair } from "./tcp_transport.ts";
import { encodeLine, type FromChild, parseFromChild, readLines, type ToChild } from "./control.ts";
import { parseEndpointId } from "./directory_messages.ts";
import { DirectoryService } from "./directory_service.ts";
import { inspectorSignalProblem } from "./inspector_guard.ts";
import { HistoryStore, HistoryStoreError } from "./history_store.ts";
import { removeEndpointFiles } from "./endpoint.ts";
import { machineLimits, resolveMaxClients } from "./capacity.ts";
import {
  type ChildSample,
  formatMetrics,
  noCounts,
  type RestartCause,
  type SupervisorCounts,
} from "./metrics.ts";
import { type MetricsServer, serveMetrics } from "./metrics_server.ts";
import { type Logger, logger, RateLimitedWarnings, setLogLevel, setupLogging } from "./log.ts";
import { makeRuntimeDir, removeRuntimeDir, RuntimeDirError } from "./runtime_dir.ts";

/** A child that dies sooner than this after starting counts as crash-looping. */
const CRASH_LOOP_UPTIME_MS = 1000;
const BACKOFF_FIRST_MS = 100;
const BACKOFF_MAX_MS = 10_000;
/**
 * A repeated signal within this window is the same signal: Ctrl-C under `deno task` reaches
 * the supervisor twice, from the terminal and forwarded by the task runner.
 */
const SIGNAL_DEBOUNCE_MS = 500;

/** One run of a child process. */
interface Child {
  pId: number;
  /** Unique per run: a respawned or replacement child of the same p_id gets a new one. */
  instance: number;
  process: Deno.ChildProcess;
  stdin: WritableStreamDefaultWriter<Uint8Array>;
  startedAt: number;
  listening: boolean;
  retiring: boolean;
  /** Set once it has been ordered to drain (after its replacement listened). */
  draining: boolean;
  /** When the oldest unanswered heartbeat was sent; undefined when all are answered. */
  pingSentAt: number | undefined;
  /** Set once the watchdog has killed it. */
  killed: boolean;
  /** What its last heartbeat answer said, for `/metrics`. */
  sample: ChildSample | undefined;
}

/** Raised when the server cannot start; the message is for the user. */
export class StartError extends Error {
  override name = "StartError";
}

/**
 * Runs the server until SIGINT or SIGTERM; returns the exit code.
 *
 * Prints `chatd listening on HOST:PORT` to stdout once every thread of every child accepts.
 *
 * @param args the command line, which SIGHUP parses again with the `--config` file re-read.
 */
export async function runSupervisor(config: Config, args: string[] = []): Promise<number> {
  setupLogging(config.logLevel, { pid: Deno.pid }, { format: config.logFormat });
  const log = logger("supervisor");
  const inspectorProblem = await inspectorSignalProblem();
  if (inspectorProblem !== undefined) {
    console.error(`chatd: ${inspectorProblem}`);
    return 2;
  }
  let resolved: Config;
  try {
    if (config.tlsCert !== "") checkKeyPair(config);
    const port = probePort(config);
    const taken = [port];
    const tlsPort = config.tlsPort === -1
      ? -1
      : probeExtraPort(config.host, config.tlsPort, taken, "--tls-port");
    taken.push(tlsPort);
    resolved = {
      ...config,
      port,
      tlsPort,
      webPort: config.web
        ? probeExtraPort(config.host, config.webPort, taken, "--web-port")
        : config.webPort,
      runtimeDir: makeRuntimeDir(config.runtimeDir),
    };
  } catch (error: unknown) {
    if (!(error instanceof StartError || error instanceof RuntimeDirError)) throw error;
    console.error(`chatd: ${error.message}`);
    return error instanceof RuntimeDirError ? 2 : 1;
  }
  let store: HistoryStore | undefined;
  if (config.dataDir !== "" && config.history > 0) {
    try {
      store = HistoryStore.open(config.dataDir, {
        lines: config.history,
        onWritten: (total) => log.debug("history written", { total }),
        onError: (error) => log.error("history batch not written", { error: String(error) }),
      });
    } catch (error: unknown) {
      if (!(error instanceof HistoryStoreError)) throw error;
      console.error(`chatd: ${error.message}`);
      removeRuntimeDir(resolved.runtimeDir);
      return 2;
    }
  }
  const machine = await machineLimits();
  if (machine.problem !== undefined) {
    log.warning("machine limits unknown, assuming defaults", {
      problem: machine.problem,
      descriptors: machine.limits.descriptors,
      memory_bytes: machine.limits.memoryBytes,
    });
  }
  const capacity = resolveMaxClients(config.maxClients, config, machine.limits);
  if (capacity.capped) {
    log.warning("--max-clients is more than the descriptor limit allows, capped", {
      asked: config.maxClients,
      max_clients: capacity.maxClients,
      descriptors: machine.limits.descriptors,
    });
  }
  resolved.maxClients = capacity.maxClients;
  const deadPeer = machine.limits.deadPeerSeconds;
  if (deadPeer !== undefined && deadPeer > DEAD_PEER_WARNING_S) {
    log.warning("a dead peer holds its name this long: see deploy/60-chatd.conf", {
      dead_peer_s: deadPeer,
    });
  }
  const supervisor = new Supervisor(resolved, log, { args, parsed: config }, store);
  return await supervisor.run();
}

/** Why an address could not be bound, in words for the user. */
function bindProblem(error: unknown): string {
  if (error instanceof Deno.errors.AddrInUse) return "address in use";
  return error instanceof Error ? error.message : String(error);
}

/**
 * How long to wait before respawning a child that has died `failures` times in a row within
 * its first second: 100 ms, doubling each time, at most 10 s; 0 when it lived longer.
 *
 * @example
 * ```ts
 * respawnDelay(3); // 400
 * ```
 */
export function respawnDelay(failures: number): number {
  if (failures <= 0) return 0;
  return Math.min(BACKOFF_FIRST_MS * 2 ** (failures - 1), BACKOFF_MAX_MS);
}

/** What {@linkcode handover} needs to know of a child. */
export interface HandoverChild {
  pId: number;
  retiring: boolean;
  /** Set once it has been ordered to drain. */
  draining: boolean;
}

/**
 * The children to order to drain now that `listening` reports that every thread of its child
 * accepts: the retired children of its p_id, but only when it is the child serving that
 * p_id now. A replacement that itself retired before its last thread listened (its first
 * threads accepted its quota meanwhile) hands over nothing: its own replacement may not
 * listen yet, and draining the old children then would leave the port without a listener.
 * Children already draining are not ordered again.
 *
 * @param current the child serving each p_id now.
 * @param children every child alive.
 */
export function handover<C extends HandoverChild>(
  listening: C,
  current: readonly (C | undefined)[],
  children: Iterable<C>,
): C[] {
  if (current[listening.pId] !== listening) return [];
  const drain: C[] = [];
  for (const old of children) {
    if (old !== listening && old.pId === listening.pId && old.retiring && !old.draining) {
      drain.push(old);
    }
  }
  return drain;
}

/**
 * Checks that the port is free and resolves `--port 0` to a free port, before any child
 * starts. The probe listener is closed again: the threads bind the port with `reusePort`.
 *
 * @throws {StartError} when the address cannot be bound.
 */
export function probePort(config: Pick<Config, "host" | "port">): number {
  try {
    return probeTcpPort(config.host, config.port);
  } catch (error: unknown) {
    throw new StartError(`Cannot bind ${config.host}:${config.port}: ${bindProblem(error)}`, {
      cause: error,
    });
  }
}

/** System keepalive settings that leave a dead peer unnoticed longer than this are warned of. */
const DEAD_PEER_WARNING_S = 600;

/**
 * {@linkcode probePort} for another port (`--web-port`, `--tls-port`): port 0 never picks one
 * of the ports `taken` already, and an explicit one may not be one of them.
 *
 * @throws {StartError} when the address cannot be bound, or is taken by another flag.
 */
export function probeExtraPort(
  host: string,
  port: number,
  taken: readonly number[],
  flag: string,
): number {
  if (port !== 0 && taken.includes(port)) {
    throw new StartError(`Cannot use ${flag} ${port}: another of chatd's ports`);
  }
  for (let attempt = 0; attempt < 5; attempt++) {
    const bound = probePort({ host, port });
    if (!taken.includes(bound)) return bound;
  }
  throw new StartError(`Cannot find a free port for ${flag}`);
}

/**
 * Checks that `--tls-cert` and `--tls-key` can be read and make a TLS listener, before any
 * child starts.
 *
 * @throws {StartError} when they cannot.
 */
export function checkKeyPair(config: Pick<Config, "host" | "tlsCert" | "tlsKey">): void {
  try {
    probeTcpPort(config.host, 0, readKeyPair(config.tlsCert, config.tlsKey));
  } catch (error: unknown) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new StartError(
      `Cannot use --tls-cert ${config.tlsCert} with --tls-key ${config.tlsKey}: ${reason}`,
      { cause: error },
    );
  }
}

/** What SIGHUP needs: the command line and the settings it gave at start. */
interface ReloadSource {
  args: string[];
  parsed: Config;
}

/** The settings SIGHUP applies; the others need a restart. */
const RELOADABLE: ReadonlySet<keyof Config> = new Set(["logLevel"]);

class Supervisor {
  #config: Config;
  readonly #log: Logger;
  readonly #warnings: RateLimitedWarnings;
  readonly #reloadSource: ReloadSource;
  readonly #directory: DirectoryService;
  /** Every child process alive, by instance. */
  readonly #children = new Map<number, Child>();
  /** The child serving each p_id now (not retiring). */
  readonly #current: (Child | undefined)[] = [];
  readonly #failures: number[] = [];
  readonly #respawnTimers = new Set<ReturnType<typeof setTimeout>>();
  #nextInstance = 0;
  #announced = false;
  readonly #supervisorCounts = new Map<number, SupervisorCounts>();
  #metricsServer: MetricsServer | undefined;
  #stopping = false;
  #stoppingAt = 0;
  #graceTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #stopped = Promise.withResolvers<void>();

  constructor(
    config: Config,
    log: Logger,
    reloadSource: ReloadSource,
    store: HistoryStore | undefined,
  ) {
    this.#config = config;
    this.#log = log;
    this.#warnings = new RateLimitedWarnings(log);
    this.#reloadSource = reloadSource;
    this.#directory = new DirectoryService({
      runtimeDir: config.runtimeDir,
      maxRooms: config.maxRooms,
      history: config.history,
      // Replay counts against the send queue: half of it, at most, so the user stays.
      maxReplayBytes: Math.floor(config.maxSendQueue / 2),
      store,
      isLive: (ep) => {
        const id = parseEndpointId(ep);
        return id !== undefined && this.#children.get(id.instance)?.pId === id.pId;
      },
    });
  }

  async run(): Promise<number> {
    this.#log.info("supervisor started", {
      host: this.#config.host,
      port: this.#config.port,
      processes: this.#config.processes,
      threads: this.#config.threads,
      max_clients: this.#config.maxClients,
      runtime_dir: this.#config.runtimeDir,
      log_level: this.#config.logLevel,
      log_format: this.#config.logFormat,
      config: this.#config.configFile,
    });
    if (this.#config.metricsPort >= 0) {
      // Bound before any child starts, as the chat port is checked: a port in use stops here.
      try {
        this.#metricsServer = await serveMetrics(this.#config.host, this.#config.metricsPort, {
          metrics: () => this.metricsText(),
          healthy: () => this.healthy(),
        });
      } catch (error: unknown) {
        const reason = bindProblem(error);
        console.error(
          `chatd: Cannot bind ${this.#config.host}:${this.#config.metricsPort} for --metrics-port: ${reason}`,
        );
        await this.#directory.close();
        removeRuntimeDir(this.#config.runtimeDir);
        return 1;
      }
    }
    if (!(await this.#joinCluster())) return 1;
    const onSignal = () => this.#shutdown();
    const onHangUp = () => this.#reload();
    Deno.addSignalListener("SIGINT", onSignal);
    Deno.addSignalListener("SIGTERM", onSignal);
    Deno.addSignalListener("SIGHUP", onHangUp);
    for (let pId = 0; pId < this.#config.processes; pId++) this.#spawn(pId);
    const stopHeartbeat = startHeartbeat({
      watchdogSeconds: this.#config.watchdog,
      peers: () => this.#children.values(),
      skip: (child) => child.killed,
      ping: (child) => this.#order(child, { kind: "ping" }),
      hung: (child) => this.#hung(child),
    });
    await this.#stopped.promise;
    stopHeartbeat();
    await this.#metricsServer?.[Symbol.asyncDispose]();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    Deno.removeSignalListener("SIGHUP", onHangUp);
    await this.#directory.close();
    const removal = removeRuntimeDir(this.#config.runtimeDir);
    if (!removal.dirRemoved) this.#log.warning("runtime directory kept", { kept: removal.kept });
    this.#log.info("supervisor exiting");
    return 0;
  }

  /** Joins the `--cluster`, if any; false (said on stderr) when it cannot. */
  async #joinCluster(): Promise<boolean> {
    const { cluster, nodeName, clusterCreds, port } = this.#config;
    if (cluster.length === 0) return true;
    try {
      await this.#directory.joinCluster({
        servers: cluster,
        node: nodeName || `${hostName()}-${port}`.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 64),
        creds: clusterCreds,
      });
      return true;
    } catch (error: unknown) {
      const at = cluster.map(redactClusterUrl).join(",");
      console.error(`chatd: Cannot join the cluster at ${at}: ${error}`);
      await this.#directory.close();
      removeRuntimeDir(this.#config.runtimeDir);
      this.#log.info("supervisor exiting");
      return false;
    }
  }

  #spawn(pId: number): void {
    const instance = this.#nextInstance++;
    const command: ChildCommand = childCommand(currentRuntime(), this.#config, pId, instance);
    const process = new Deno.Command(command.command, {
      args: command.args,
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const child: Child = {
      pId,
      instance,
      process,
      stdin: process.stdin.getWriter(),
      startedAt: performance.now(),
      listening: false,
      retiring: false,
      draining: false,
      pingSentAt: undefined,
      killed: false,
      sample: undefined,
    };
    this.#children.set(instance, child);
    this.#current[pId] = child;
    // Start-up is summed up by "supervisor started"; later (re)starts matter at info.
    this.#lifecycle("child started", { p_id: pId, pid: process.pid, instance });
    this.#readReports(child);
    process.status.then((status) => this.#exited(child, status));
  }

  async #readReports(child: Child): Promise<void> {
    try {
      for await (const line of readLines(child.process.stdout)) {
        let report: FromChild;
        try {
          report = parseFromChild(line);
        } catch (error: unknown) {
          this.#warnings.warn("bad report from child dropped", {
            p_id: child.pId,
            pid: child.process.pid,
            error: String(error),
          });
          continue;
        }
        this.#onReport(child, report);
      }
    } catch {
      // The pipe broke with the child; #exited handles the rest.
    }
  }

  /** Kills a child that left a heartbeat unanswered for `--watchdog`. */
  #hung(child: Child): void {
    this.#log.error("child stopped answering heartbeats, killing it", {
      p_id: child.pId,
      pid: child.process.pid,
      watchdog_s: this.#config.watchdog,
    });
    child.killed = true; // Its exit respawns it.
    this.#counts(child.pId).watchdogKills++;
    try {
      child.process.kill("SIGKILL");
    } catch {
      // Exited meanwhile.
    }
  }

  #order(child: Child, message: ToChild): void {
    child.stdin.write(encodeLine(message)).catch(() => {});
  }

  #onReport(child: Child, report: FromChild): void {
    const context = { p_id: child.pId, pid: child.process.pid };
    switch (report.kind) {
      case "pong":
        child.pingSentAt = undefined;
        if (report.rss !== undefined) {
          child.sample = {
            pId: child.pId,
            rss: report.rss,
            serving: report.serving!,
            rows: report.metrics!,
          };
        }
        return;
      case "listening": {
        child.listening = true;
        this.#lifecycle("child listening", context);
        if (this.#stopping) return this.#order(child, { kind: "shutdown" });
        for (const old of handover(child, this.#current, this.#children.values())) {
          old.draining = true;
          this.#order(old, { kind: "drain" });
        }
        return this.#announce();
      }
      case "retiring": {
        if (this.#current[child.pId] !== child || this.#stopping) return;
        child.retiring = true;
        this.#counts(child.pId).recycles++;
        this.#log.info("child retiring, starting its replacement", context);
        this.#spawn(child.pId);
        return;
      }
      case "thread_exit": {
        const id = parseEndpointId(report.ep);
        if (id?.instance !== child.instance) return;
        this.#log.warning("child lost a thread", { ...context, t_id: id.tId });
        this.#directory.removeEndpoints([report.ep]);
        return;
      }
    }
  }

  /** Logs a child's start at debug during start-up, at info once the server is up. */
  #lifecycle(message: string, properties: Record<string, unknown>): void {
    if (this.#announced) this.#log.info(message, properties);
    else this.#log.debug(message, properties);
  }

  /**
   * SIGHUP: re-reads the `--config` file (the command line still wins) and applies what can
   * change at run time, the log level, here and in every child and thread. A terminal hang-up
   * lands here too: it never stops the server.
   */
  #reload(): void {
    this.#reloadTls();
    const file = this.#config.configFile;
    if (file === "") {
      this.#log.info("SIGHUP: no --config file, nothing to reload");
      return;
    }
    let next: Config;
    try {
      const invocation = parseInvocation(this.#reloadSource.args, { faults: this.#config.faults });
      if (invocation.kind !== "serve") throw new TypeError(`not a server command line`);
      next = invocation.config;
    } catch (error: unknown) {
      this.#log.error("SIGHUP: config not reloaded, the running settings stay", {
        config: file,
        error: error instanceof Error ? error.message : String(error),
      });
      return;
    }
    const before = this.#reloadSource.parsed;
    const changed = (Object.keys(next) as (keyof Config)[])
      // By value: --web-origin is a list.
      .filter((key) =>
        !RELOADABLE.has(key) && JSON.stringify(next[key]) !== JSON.stringify(before[key])
      );
    if (changed.length > 0) {
      this.#log.warning("SIGHUP: these settings changed but apply only after a restart", {
        settings: changed.join(","),
      });
    }
    this.#config = { ...this.#config, logLevel: next.logLevel }; // respawned children too
    setLogLevel(next.logLevel);
    for (const child of this.#children.values()) {
      this.#order(child, { kind: "reload", logLevel: next.logLevel });
    }
    this.#log.info("SIGHUP: config reloaded", { config: file, log_level: next.logLevel });
  }

  /**
   * SIGHUP with TLS on: reads the certificate and key files again and, when they make a TLS
   * listener, sends them to every child, whose threads listen with them and drain the old
   * listeners; connected clients stay. A certificate that does not work is logged and the
   * old one stays.
   */
  #reloadTls(): void {
    const { tlsCert, tlsKey } = this.#config;
    if (tlsCert === "") return;
    let pair: TlsKeyPair;
    try {
      pair = readKeyPair(tlsCert, tlsKey);
      probeTcpPort(this.#config.host, 0, pair);
    } catch (error: unknown) {
      this.#log.error("SIGHUP: TLS certificate not reloaded, the old one stays", {
        cert: tlsCert,
        error: error instanceof Error ? error.message : String(error),
      });
      return;
    }
    for (const child of this.#children.values()) {
      this.#order(child, { kind: "tls", cert: pair.cert, key: pair.key });
    }
    this.#log.info("SIGHUP: TLS certificate reloaded", { cert: tlsCert });
  }

  #announce(): void {
    if (this.#announced) return;
    for (let pId = 0; pId < this.#config.processes; pId++) {
      if (!this.#current[pId]?.listening) return;
    }
    this.#announced = true;
    const { host, port, tlsPort, webPort } = this.#config;
    console.log(`chatd listening on ${host}:${port}`);
    if (tlsPort !== -1) console.log(`chatd tls on ${host}:${tlsPort}`);
    const scheme = this.#config.tlsCert === "" ? "http" : "https";
    if (this.#config.web) console.log(`chatd web on ${scheme}://${host}:${webPort}/`);
    if (this.#metricsServer !== undefined) {
      console.log(
        `chatd metrics on http://${this.#config.host}:${this.#metricsServer.port}/metrics`,
      );
    }
  }

  #counts(pId: number): SupervisorCounts {
    let counts = this.#supervisorCounts.get(pId);
    if (counts === undefined) this.#supervisorCounts.set(pId, counts = noCounts());
    return counts;
  }

  /** `/metrics` now: the current children's last samples and the supervisor's counts. */
  metricsText(): string {
    for (let pId = 0; pId < this.#config.processes; pId++) this.#counts(pId);
    const children: ChildSample[] = [];
    for (const child of this.#current) if (child?.sample) children.push(child.sample);
    return formatMetrics({
      threads: this.#config.threads,
      children,
      supervisor: this.#supervisorCounts,
    });
  }

  /** True when every p_id has a child whose every thread serves, by its last heartbeat. */
  healthy(): boolean {
    if (this.#stopping) return false;
    for (let pId = 0; pId < this.#config.processes; pId++) {
      const child = this.#current[pId];
      if (!child?.listening || child.killed) return false;
      if (child.sample === undefined || child.sample.serving < this.#config.threads) return false;
    }
    return true;
  }

  #exited(child: Child, status: Deno.CommandStatus): void {
    this.#children.delete(child.instance);
    child.stdin.close().catch(() => {}); // the pipe's descriptor, else one leaks per child
    const ofChild = (ep: string) => parseEndpointId(ep)?.instance === child.instance;
    this.#directory.removeInstance(ofChild);
    // The socket files a dead child could not remove itself.
    removeEndpointFiles(this.#config.runtimeDir, ofChild);
    const uptime = performance.now() - child.startedAt;
    this.#log.info("child exited", {
      p_id: child.pId,
      pid: child.process.pid,
      code: status.code,
      signal: status.signal,
      uptime_ms: Math.round(uptime),
    });
    if (this.#stopping) {
      if (this.#children.size === 0) this.#finish();
      return;
    }
    if (this.#current[child.pId] !== child) return; // A retired child; its replacement runs.
    this.#current[child.pId] = undefined;
    const cause: RestartCause = child.killed
      ? "watchdog"
      : status.signal !== null
      ? "signal"
      : "exit";
    this.#counts(child.pId).restarts[cause]++;
    const failures = uptime < CRASH_LOOP_UPTIME_MS ? (this.#failures[child.pId] ?? 0) + 1 : 0;
    this.#failures[child.pId] = failures;
    if (failures === 0) return this.#spawn(child.pId);
    const delay = respawnDelay(failures);
    this.#log.warning("child is crash-looping, respawn delayed", {
      p_id: child.pId,
      failures,
      delay_ms: delay,
    });
    const timer = setTimeout(() => {
      this.#respawnTimers.delete(timer);
      this.#spawn(child.pId);
    }, delay);
    this.#respawnTimers.add(timer);
  }

  #shutdown(): void {
    if (this.#stopping) {
      if (performance.now() - this.#stoppingAt < SIGNAL_DEBOUNCE_MS) return;
      this.#log.warning("second signal: killing children now");
      this.#killAll();
      return;
    }
    this.#stopping = true;
    this.#stoppingAt = performance.now();
    this.#log.info("shutting down", { children: this.#children.size, grace_s: this.#config.grace });
    for (const timer of this.#respawnTimers) clearTimeout(timer);
    this.#respawnTimers.clear();
    if (this.#children.size === 0) return this.#finish();
    for (const child of this.#children.values()) this.#order(child, { kind: "shutdown" });
    this.#graceTimer = setTimeout(() => {
      this.#log.warning("grace period over: killing children", { children: this.#children.size });
      this.#killAll();
    }, this.#config.grace * 1000);
  }

  #killAll(): void {
    for (const child of this.#children.values()) {
      try {
        child.process.kill("SIGKILL");
      } catch {
        // Already exited.
      }
    }
  }

  #finish(): void {
    clearTimeout(this.#graceTimer);
    this.#stopped.resolve();
  }
}

/**
 * This machine's name, for a node without `--node-name`. `Deno.hostname()` needs
 * `--allow-sys`, which `deno task start` does not grant (and asking would prompt on a
 * terminal); /etc/hostname needs only `--allow-read` (/proc/sys/kernel/hostname would need
 * `--allow-all` in a process allowed to run programs).
 */
function hostName(): string {
  if (Deno.permissions.querySync({ name: "sys", kind: "hostname" }).state === "granted") {
    return Deno.hostname();
  }
  try {
    return Deno.readTextFileSync("/etc/hostname").trim() || "chatd";
  } catch {
    return "chatd";
  }
}
