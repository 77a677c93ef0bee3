/**
 * One accept loop for any transport, with the thread's drain and stop policy.
 *
 * - Serving: every connection accepted goes to `onAccept`.
 * - Draining (recycling): Linux resets the connections still queued on a `SO_REUSEPORT`
 *   listener when it closes, so it keeps accepting until arrivals pause for
 *   {@linkcode DRAIN_IDLE_MS} (or {@linkcode DRAIN_MAX_MS} has passed), then closes. An
 *   accept that completed as it closed is still handed over.
 * - Stopped (shutdown): closes at once; the pending accept ends the loop.
 * - An accept that fails while serving (EMFILE: out of descriptors) is reported and retried
 *   after {@linkcode ACCEPT_RETRY_MS}: the loop neither spins nor ends. The connection stays
 *   in the kernel's queue meanwhile; the process's client cap (capacity.ts) keeps a margin
 *   of descriptors so that this is rare.
 *
 * @module
 */
import { type Clock, SYSTEM_CLOCK } from "./_clock.ts";
import type { Acceptor, Transport } from "./transport.ts";

/** How long a draining listener waits for one more connection before it closes. */
export const DRAIN_IDLE_MS = 50;
/** The longest a listener drains under steady arrivals. */
export const DRAIN_MAX_MS = 2000;
/** The pause after a failed accept before the next. */
export const ACCEPT_RETRY_MS = 100;

/** Options of {@linkcode Listener}. */
export interface ListenerOptions {
  /** Takes every accepted connection. */
  onAccept(transport: Transport): void;
  /** Called once when the loop has ended (the acceptor is closed by then). */
  onStopped?(): void;
  /** An accept failed while serving (EMFILE, say); it is retried after a pause. */
  onAcceptFailed?(error: unknown): void;
  /** Default {@linkcode SYSTEM_CLOCK}. */
  clock?: Clock;
}

/** Accepts connections until drained or stopped. */
export class Listener {
  readonly #acceptor: Acceptor;
  readonly #options: ListenerOptions;
  readonly #clock: Clock;
  #phase: "serving" | "draining" | "stopped" = "serving";
  #running = true;
  /**
   * Called to get the loop to look at the phase again. A new promise for each accept: a
   * promise that never settles, raced against every accept, would keep every accepted
   * connection (through the race's resolved promises) for as long as the listener lives.
   */
  #wake: (() => void) | undefined;
  /** Resolves when the loop has ended. */
  readonly stopped: Promise<void>;

  /** Starts accepting from `acceptor` at once. */
  constructor(acceptor: Acceptor, options: ListenerOptions) {
    this.#acceptor = acceptor;
    this.#options = options;
    this.#clock = options.clock ?? SYSTEM_CLOCK;
    this.stopped = this.#loop();
  }

  /** True until the loop has ended. */
  get running(): boolean {
    return this.#running;
  }

  /** Keeps accepting until arrivals pause, then closes (see the module doc). */
  drain(): void {
    if (this.#phase !== "serving") return;
    this.#phase = "draining";
    this.#wake?.();
  }

  /** Closes now. */
  stop(): void {
    this.#phase = "stopped";
    this.#acceptor.close();
    this.#wake?.();
  }

  async #loop(): Promise<void> {
    let accepting: Promise<Transport> | undefined;
    let drainStarted: number | undefined;
    for (;;) {
      // One accept stays pending across wake-ups: Deno allows one at a time per listener.
      accepting ??= this.#acceptor.accept();
      let transport: Transport | "wake" | undefined;
      try {
        if (this.#phase === "stopped") {
          // Accepted as the acceptor closed: handed over all the same (to be told goodbye).
          transport = await accepting.catch(() => undefined);
          if (transport !== undefined) this.#options.onAccept(transport);
          break;
        }
        if (this.#phase === "draining") {
          drainStarted ??= this.#clock.now();
          const left = DRAIN_MAX_MS - (this.#clock.now() - drainStarted);
          transport = await this.#raceTimeout(
            accepting,
            Math.max(0, Math.min(DRAIN_IDLE_MS, left)),
          );
          if (transport === undefined) {
            this.#acceptor.close();
            // An accept that completed in the meantime is served, not dropped.
            transport = await accepting.catch(() => undefined);
            if (transport !== undefined) this.#options.onAccept(transport);
            break;
          }
        } else {
          const wakeup = new Promise<"wake">((resolve) => this.#wake = () => resolve("wake"));
          transport = await Promise.race([accepting, wakeup]);
          this.#wake = undefined;
          if (transport === "wake") continue;
        }
      } catch (error: unknown) {
        // The acceptor was closed (stop, or a drain that ended): the loop ends.
        if (this.#phase !== "serving" || error instanceof Deno.errors.BadResource) break;
        accepting = undefined;
        this.#options.onAcceptFailed?.(error);
        await this.#pause(ACCEPT_RETRY_MS);
        continue;
      }
      accepting = undefined;
      this.#options.onAccept(transport);
    }
    this.#acceptor.close();
    this.#running = false;
    this.#options.onStopped?.();
  }

  /** Waits `ms`, or less if the phase changes. */
  async #pause(ms: number): Promise<void> {
    const wakeup = new Promise<undefined>((resolve) => this.#wake = () => resolve(undefined));
    await this.#raceTimeout(wakeup, ms);
    this.#wake = undefined;
  }

  #raceTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
    let handle: unknown;
    const timeout = new Promise<undefined>((resolve) => {
      handle = this.#clock.setTimeout(() => resolve(undefined), ms);
    });
    return Promise.race([promise, timeout]).finally(() => this.#clock.clearTimeout(handle));
  }
}
