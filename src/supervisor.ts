/**
 * The supervisor: the process the user starts. It owns the port, the runtime directory and
 * the directory of users, starts N child processes by re-executing itself, respawns them
 * when they die, replaces them when they retire, and handles SIGINT and SIGTERM, the only
 * place in chatd that does.
 *
 * @module
 */
import { type ChildCommand, childCommand, currentRuntime } from "./child_command.ts";
import { type Config, parseInvocation } from "./config.ts";
import { startHeartbeat } from "./_heartbeat.ts";
import { probeTcpPort } from "./tcp_transport.ts";
import { encodeLine, type FromChild, parseFromChild, readLines, type ToChild } from "./control.ts";
import { parseEndpointId } from "./directory_messages.ts";
import { DirectoryService } from "./directory_service.ts";
import { inspectorSignalProblem } from "./inspector_guard.ts";
import { removeEndpointFiles } from "./endpoint.ts";
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
  /** When the oldest unanswered heartbeat was sent; undefined when all are answered. */
  pingSentAt: number | undefined;
  /** Set once the watchdog has killed it. */
  killed: boolean;
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
    resolved = {
      ...config,
      port: probePort(config),
      runtimeDir: makeRuntimeDir(config.runtimeDir),
    };
  } catch (error: unknown) {
    if (!(error instanceof StartError || error instanceof RuntimeDirError)) throw error;
    console.error(`chatd: ${error.message}`);
    return error instanceof RuntimeDirError ? 2 : 1;
  }
  const supervisor = new Supervisor(resolved, log, { args, parsed: config });
  return await supervisor.run();
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
    const reason = error instanceof Deno.errors.AddrInUse
      ? "address in use"
      : error instanceof Error
      ? error.message
      : String(error);
    throw new StartError(`Cannot bind ${config.host}:${config.port}: ${reason}`, { cause: error });
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
  #stopping = false;
  #stoppingAt = 0;
  #graceTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #stopped = Promise.withResolvers<void>();

  constructor(config: Config, log: Logger, reloadSource: ReloadSource) {
    this.#config = config;
    this.#log = log;
    this.#warnings = new RateLimitedWarnings(log);
    this.#reloadSource = reloadSource;
    this.#directory = new DirectoryService({
      runtimeDir: config.runtimeDir,
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
      runtime_dir: this.#config.runtimeDir,
      log_level: this.#config.logLevel,
      log_format: this.#config.logFormat,
      config: this.#config.configFile,
    });
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
        node: nodeName || `${Deno.hostname()}-${port}`.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 64),
        creds: clusterCreds,
      });
      return true;
    } catch (error: unknown) {
      console.error(`chatd: Cannot join the cluster at ${cluster.join(",")}: ${error}`);
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
      pingSentAt: undefined,
      killed: false,
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
        return;
      case "listening": {
        child.listening = true;
        this.#lifecycle("child listening", context);
        if (this.#stopping) return this.#order(child, { kind: "shutdown" });
        // A replacement is up: the children it replaces may stop accepting now.
        for (const old of this.#children.values()) {
          if (old.pId === child.pId && old.retiring) this.#order(old, { kind: "drain" });
        }
        return this.#announce();
      }
      case "retiring": {
        if (this.#current[child.pId] !== child || this.#stopping) return;
        child.retiring = true;
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

  #announce(): void {
    if (this.#announced) return;
    for (let pId = 0; pId < this.#config.processes; pId++) {
      if (!this.#current[pId]?.listening) return;
    }
    this.#announced = true;
    console.log(`chatd listening on ${this.#config.host}:${this.#config.port}`);
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
    const failures = uptime < CRASH_LOOP_UPTIME_MS ? (this.#failures[child.pId] ?? 0) + 1 : 0;
    this.#failures[child.pId] = failures;
    if (failures === 0) return this.#spawn(child.pId);
    const delay = Math.min(BACKOFF_FIRST_MS * 2 ** (failures - 1), BACKOFF_MAX_MS);
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
