/**
 * The supervisor: the process the user starts. It owns the port, the runtime directory and
 * the directory of users, starts N child processes by re-executing itself, respawns them
 * when they die, replaces them when they retire, and handles SIGINT and SIGTERM, the only
 * place in chatd that does.
 *
 * @module
 */
import { type ChildCommand, childCommand, currentRuntime } from "./child_command.ts";
import type { Config } from "./config.ts";
import { startHeartbeat } from "./_heartbeat.ts";
import { probeTcpPort } from "./tcp_transport.ts";
import { encodeLine, type FromChild, parseFromChild, readLines, type ToChild } from "./control.ts";
import { parseEndpointId } from "./directory_messages.ts";
import { DirectoryService } from "./directory_service.ts";
import { removeEndpointFiles } from "./endpoint.ts";
import { type Logger, logger, setupLogging } from "./log.ts";

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
 */
export async function runSupervisor(config: Config): Promise<number> {
  setupLogging(config.logLevel, { pid: Deno.pid });
  const log = logger("supervisor");
  let resolved: Config;
  try {
    const port = probePort(config);
    const webPort = config.web ? probeWebPort(config, port) : config.webPort;
    resolved = { ...config, port, webPort, runtimeDir: makeRuntimeDir(config) };
  } catch (error: unknown) {
    if (!(error instanceof StartError)) throw error;
    console.error(`chatd: ${error.message}`);
    return 1;
  }
  const supervisor = new Supervisor(resolved, log);
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

/**
 * {@linkcode probePort} for the web port; `--web-port 0` never picks the line port `port`.
 *
 * @throws {StartError} when the address cannot be bound, or is the line port.
 */
export function probeWebPort(config: Pick<Config, "host" | "webPort">, port: number): number {
  if (config.webPort === port) {
    throw new StartError(`Cannot serve the web port on ${port}: it is the line port`);
  }
  for (let attempt = 0; attempt < 5; attempt++) {
    const webPort = probePort({ host: config.host, port: config.webPort });
    if (webPort !== port) return webPort;
  }
  throw new StartError("Cannot find a free web port apart from the line port");
}

/**
 * Makes the private (0700) runtime directory for the Unix sockets. A directory given with
 * `--runtime-dir` is reused; socket files a killed earlier run left in it are removed.
 *
 * @throws {StartError} when the directory cannot be made private.
 */
export function makeRuntimeDir(config: Pick<Config, "runtimeDir">): string {
  try {
    if (config.runtimeDir === "") return Deno.makeTempDirSync({ prefix: "chatd-" });
    Deno.mkdirSync(config.runtimeDir, { recursive: true, mode: 0o700 });
    Deno.chmodSync(config.runtimeDir, 0o700);
    for (const file of Deno.readDirSync(config.runtimeDir)) {
      if (file.name.endsWith(".sock")) Deno.removeSync(`${config.runtimeDir}/${file.name}`);
    }
    return config.runtimeDir;
  } catch (error: unknown) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new StartError(`Cannot make runtime directory ${config.runtimeDir}: ${reason}`, {
      cause: error,
    });
  }
}

class Supervisor {
  readonly #config: Config;
  readonly #log: Logger;
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

  constructor(config: Config, log: Logger) {
    this.#config = config;
    this.#log = log;
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
    });
    const onSignal = () => this.#shutdown();
    Deno.addSignalListener("SIGINT", onSignal);
    Deno.addSignalListener("SIGTERM", onSignal);
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
    this.#directory.close();
    try {
      Deno.removeSync(this.#config.runtimeDir, { recursive: true });
    } catch (error: unknown) {
      this.#log.warning("could not remove runtime directory", { error: String(error) });
    }
    this.#log.info("supervisor exiting");
    return 0;
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
    this.#log.info("child started", { p_id: pId, pid: process.pid, instance });
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
          this.#log.warning("bad report from child dropped", {
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
        this.#log.info("child listening", context);
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

  #announce(): void {
    if (this.#announced) return;
    for (let pId = 0; pId < this.#config.processes; pId++) {
      if (!this.#current[pId]?.listening) return;
    }
    this.#announced = true;
    console.log(`chatd listening on ${this.#config.host}:${this.#config.port}`);
    if (this.#config.web) {
      console.log(`chatd web on http://${this.#config.host}:${this.#config.webPort}/`);
    }
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
