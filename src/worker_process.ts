/**
 * A child process: starts T threads, relays the supervisor's orders to them, reports back.
 *
 * The supervisor talks to it over its stdin (orders, one JSON line each) and stdout
 * (reports); stderr is the shared log. End-of-file on stdin means the supervisor is gone,
 * even when it was killed with SIGKILL: the child then removes the runtime directory and
 * exits at once, so no orphan keeps the port or leaves sockets behind.
 *
 * @module
 */
import type { Config } from "./config.ts";
import {
  ControlError,
  encodeLine,
  type FromChild,
  type FromThread,
  parseFromThread,
  parseToChild,
  readLines,
  type ToChild,
  type ToThread,
} from "./control.ts";
import { startHeartbeat } from "./_heartbeat.ts";
import { Counters, ThreadMetrics } from "./counters.ts";
import { endpointId } from "./directory_messages.ts";
import { removeEndpointFiles } from "./endpoint.ts";
import { type Logger, logger, RateLimitedWarnings, setLogLevel, setupLogging } from "./log.ts";
import { removeRuntimeDir } from "./runtime_dir.ts";

/** Options of {@linkcode runWorkerProcess}. */
export interface WorkerProcessOptions {
  config: Config;
  pId: number;
  /** The supervisor's number for this run of child `pId`. */
  instance: number;
}

/** How long after a thread crashed before it is started again. */
const THREAD_RESTART_DELAY_MS = 100;
/** The exit code of a process that lost a thread to an endless loop. */
const EXIT_THREAD_HUNG = 75;
/** The exit code of a process told to exit by `FAULT exit` (EX_SOFTWARE). */
const EXIT_FAULT_INJECTED = 70;

/**
 * Fault injection (with CHATD_FAULTS=1): in the child whose instance this variable names, the
 * last thread starts only once the process has reported `retiring`, so that its first threads
 * take its whole `--clients-per-process` quota before it listens (a slow thread start, as on
 * a cold module cache). Ignored with one thread: that thread would never listen.
 */
const LATE_THREAD_VARIABLE = "CHATD_FAULT_LATE_THREAD";

/** The instance CHATD_FAULT_LATE_THREAD names, with fault injection on; else undefined. */
function lateThreadInstance(config: Config): number | undefined {
  if (!config.faults || config.threads < 2) return undefined;
  const value = Deno.env.get(LATE_THREAD_VARIABLE);
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined;
}

/** One thread as the process sees it. */
interface ThreadSlot {
  tId: number;
  worker: Worker;
  ep: string;
  restarts: number;
  listening: boolean;
  done: boolean;
  /** When the oldest unanswered heartbeat was sent; undefined when all are answered. */
  pingSentAt: number | undefined;
}

/** Runs a child process until it is told to stop, drains, or loses its supervisor. */
export async function runWorkerProcess(options: WorkerProcessOptions): Promise<never> {
  const { config, pId, instance } = options;
  setupLogging(config.logLevel, { p_id: pId, pid: Deno.pid });
  const log = logger("process");
  // Ctrl-C in a terminal signals the whole process group. Only the supervisor acts on it;
  // it then orders every child to shut down gracefully.
  Deno.addSignalListener("SIGINT", () => {});
  // SIGHUP too: a terminal hang-up reaches the whole group, and the supervisor reloads.
  Deno.addSignalListener("SIGHUP", () => {});
  const child = new WorkerProcess(options, log);
  // SIGTERM often reaches the whole group too (systemd's default), or one child alone: either
  // way this child shuts down gracefully; alone, it is then respawned.
  Deno.addSignalListener("SIGTERM", () => child.obey({ kind: "shutdown" }));
  log.debug("process started", { instance, threads: config.threads });
  child.start();
  try {
    for await (const line of readLines(Deno.stdin.readable)) child.order(line);
  } catch (error: unknown) {
    log.warning("control pipe failed", { error: String(error) });
  }
  return child.orphaned();
}

class WorkerProcess {
  #config: Config;
  readonly #pId: number;
  readonly #instance: number;
  readonly #log: Logger;
  readonly #warnings: RateLimitedWarnings;
  readonly #counters = new Counters();
  readonly #metrics: ThreadMetrics;
  readonly #threads: ThreadSlot[] = [];
  #reportedListening = false;
  #retiring = false;
  /** Starts the thread held back by CHATD_FAULT_LATE_THREAD, once the process retires. */
  #lateStart: (() => void) | undefined;
  #ending: ToChild["kind"] | undefined;

  constructor(options: WorkerProcessOptions, log: Logger) {
    this.#config = options.config;
    this.#pId = options.pId;
    this.#instance = options.instance;
    this.#log = log;
    this.#warnings = new RateLimitedWarnings(log);
    this.#metrics = new ThreadMetrics(options.config.threads);
  }

  start(): void {
    for (let tId = 0; tId < this.#config.threads; tId++) this.#startThread(tId, 0);
    // Checks that each thread's event loop still turns.
    startHeartbeat({
      watchdogSeconds: this.#config.watchdog,
      peers: () => this.#threads,
      skip: (slot) => slot.done,
      ping: (slot) => this.#toThread(slot, { kind: "ping" }),
      hung: (slot) => this.#threadHung(slot),
    });
  }

  #startThread(tId: number, restarts: number): void {
    const ep = endpointId({ pId: this.#pId, tId, instance: this.#instance, restart: restarts });
    const worker = new Worker(new URL("./thread.ts", import.meta.url), { type: "module" });
    const slot: ThreadSlot = {
      tId,
      worker,
      ep,
      restarts,
      listening: false,
      done: false,
      pingSentAt: undefined,
    };
    this.#threads[tId] = slot;
    worker.onmessage = (event: MessageEvent<unknown>) => {
      try {
        this.#fromThread(slot, parseFromThread(event.data));
      } catch (error: unknown) {
        this.#warnings.warn("bad message from thread dropped", {
          t_id: tId,
          error: String(error),
        });
      }
    };
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      this.#threadDied(slot, event.message);
    };
    const init: ToThread = {
      kind: "init",
      config: this.#config,
      pId: this.#pId,
      tId,
      ep,
      counters: this.#counters.buffer,
      metrics: this.#metrics.buffer,
    };
    if (
      restarts === 0 && tId === this.#config.threads - 1 && !this.#retiring &&
      lateThreadInstance(this.#config) === this.#instance
    ) {
      this.#log.warning("injecting fault: last thread starts after the quota", { t_id: tId });
      this.#lateStart = () => worker.postMessage(init);
      return;
    }
    worker.postMessage(init);
  }

  #threadDied(slot: ThreadSlot, reason: string): void {
    if (this.#threads[slot.tId] !== slot) return;
    slot.listening = false;
    slot.worker.terminate();
    this.#log.error("thread died", { t_id: slot.tId, reason });
    removeEndpointFiles(this.#config.runtimeDir, (ep) => ep === slot.ep);
    this.#report({ kind: "thread_exit", ep: slot.ep });
    if (this.#ending !== undefined) {
      slot.done = true;
      this.#maybeExit();
      return;
    }
    setTimeout(() => {
      this.#log.info("thread restarting", { t_id: slot.tId, restarts: slot.restarts + 1 });
      this.#startThread(slot.tId, slot.restarts + 1);
    }, THREAD_RESTART_DELAY_MS);
  }

  /**
   * A thread stopped answering. `Worker.terminate()` cannot stop a worker that spins in a
   * loop (it keeps running, and keeps its sockets), so the process exits: the kernel closes
   * everything, and the supervisor respawns the process.
   */
  #threadHung(slot: ThreadSlot): never {
    this.#log.error("thread stopped answering heartbeats, restarting the process", {
      t_id: slot.tId,
      watchdog_s: this.#config.watchdog,
    });
    Deno.exit(EXIT_THREAD_HUNG);
  }

  #fromThread(slot: ThreadSlot, message: FromThread): void {
    switch (message.kind) {
      case "listening":
        slot.listening = true;
        if (this.#ending === "drain") this.#toThread(slot, { kind: "drain" });
        if (this.#ending === "shutdown") this.#toThread(slot, { kind: "shutdown" });
        if (!this.#reportedListening && this.#threads.every((thread) => thread.listening)) {
          this.#reportedListening = true;
          this.#log.debug("process listening", { port: this.#config.port });
          this.#report({ kind: "listening" });
        }
        return;
      case "quota":
        if (this.#retiring) return;
        this.#retiring = true;
        this.#log.info("process retiring", { accepted: this.#counters.handled });
        this.#report({ kind: "retiring" });
        this.#lateStart?.();
        this.#lateStart = undefined;
        return;
      case "done":
        slot.done = true;
        this.#maybeExit();
        return;
      case "pong":
        slot.pingSentAt = undefined;
        return;
      case "fault":
        this.#log.warning("injecting fault", { what: message.what });
        if (message.what === "exit") Deno.exit(EXIT_FAULT_INJECTED);
        for (;;) {
          // An endless loop: the process stops answering the supervisor's heartbeat.
        }
    }
  }

  #toThread(slot: ThreadSlot, message: ToThread): void {
    slot.worker.postMessage(message);
  }

  #report(message: FromChild): void {
    try {
      Deno.stdout.writeSync(encodeLine(message));
    } catch {
      // The supervisor is gone; stdin's end-of-file will tell.
    }
  }

  /** Handles one line from the supervisor. */
  order(line: string): void {
    let message: ToChild;
    try {
      message = parseToChild(line);
    } catch (error: unknown) {
      const reason = error instanceof ControlError ? error.message : String(error);
      this.#warnings.warn("bad control message dropped", { reason });
      return;
    }
    this.obey(message);
  }

  /** Carries out an order from the supervisor (or SIGTERM's own shutdown). */
  obey(message: ToChild): void {
    if (message.kind === "ping") {
      return this.#report({
        kind: "pong",
        rss: Deno.memoryUsage().rss,
        serving: this.#threads.filter((slot) => slot.listening && !slot.done).length,
        metrics: this.#metrics.snapshot(),
      });
    }
    if (message.kind === "reload") {
      // Threads started from now on get it in their config; running ones by broadcast.
      this.#config = { ...this.#config, logLevel: message.logLevel };
      setLogLevel(message.logLevel);
      this.#log.info("log level changed", { log_level: message.logLevel });
      return;
    }
    if (message.kind === "tls") {
      // Threads started from now on read the files themselves, as at start.
      for (const slot of this.#threads) this.#toThread(slot, message);
      return;
    }
    if (this.#ending === "shutdown") return;
    this.#ending = message.kind;
    // A thread held back by CHATD_FAULT_LATE_THREAD gets the order once it listens.
    this.#lateStart?.();
    this.#lateStart = undefined;
    this.#log.info(message.kind === "drain" ? "process draining" : "process shutting down", {
      open: this.#counters.open,
      handled: this.#counters.handled,
    });
    for (const slot of this.#threads) this.#toThread(slot, message);
  }

  #maybeExit(): void {
    if (!this.#threads.every((slot) => slot.done)) return;
    this.#log.info("process exiting", { handled: this.#counters.handled });
    for (const slot of this.#threads) slot.worker.terminate();
    Deno.exit(0);
  }

  /** The supervisor is gone: clean up after it and exit. */
  orphaned(): never {
    this.#log.warning("supervisor gone, exiting", { runtime_dir: this.#config.runtimeDir });
    removeRuntimeDir(this.#config.runtimeDir); // only its sockets; kept if anything else is there
    Deno.exit(1);
  }
}
