/**
 * A thread's set of listeners, one per port it serves, and the SIGHUP reload of its TLS
 * certificate: new TLS listeners with the new certificate, then the old ones drain and
 * close while the plain ones serve on.
 *
 * A listener that stops while another still runs leaves the set quietly (replaced by a
 * reload, or the first of several to finish draining); when the last one stops, the set
 * says so once through `onStopped`.
 *
 * @module
 */
import type { Clock } from "./_clock.ts";
import type { Config } from "./config.ts";
import { Listener } from "./listener.ts";
import type { Logger } from "./log.ts";
import { listenTcp, readKeyPair, type TlsKeyPair } from "./tcp_transport.ts";
import type { Acceptor, Transport } from "./transport.ts";
import { listenWeb } from "./web_acceptor.ts";

/** An acceptor, and whether it speaks TLS. */
export interface MadeAcceptor {
  acceptor: Acceptor;
  tls: boolean;
}

/** What {@linkcode ThreadListenersOptions.acceptors} is asked for. */
export interface AcceptorRequest {
  /** The certificate of a reload; default: the files' own. */
  tls?: TlsKeyPair;
  /** Just the acceptors that speak TLS (a reload). */
  onlyTls?: boolean;
}

/** Options of {@linkcode ThreadListeners}. */
export interface ThreadListenersOptions {
  /** Makes the acceptors; it throws when a port cannot be bound or a certificate is bad. */
  acceptors(request: AcceptorRequest): MadeAcceptor[];
  /** Takes every accepted connection. */
  onAccept(transport: Transport): void;
  /** An accept failed (EMFILE, say); the listener retries it after a pause. */
  onAcceptFailed(error: unknown): void;
  /** Called when the last running listener has stopped. */
  onStopped(): void;
  /** The thread's logger. */
  log: Logger;
  /** The thread's endpoint id, for the log. */
  ep: string;
  /** Default {@linkcode SYSTEM_CLOCK}. */
  clock?: Clock;
}

/** The listeners of one thread. */
export class ThreadListeners {
  readonly #options: ThreadListenersOptions;
  #listeners: Listener[] = [];
  /** The listeners that speak TLS (some of {@linkcode #listeners}): a reload replaces them. */
  #tls = new Set<Listener>();

  constructor(options: ThreadListenersOptions) {
    this.#options = options;
  }

  /**
   * Starts listening on every port.
   *
   * @throws what `acceptors` throws; nothing is listening then.
   */
  listen(): void {
    this.#serve(this.#options.acceptors({}));
  }

  /** True while one listener still accepts. */
  get running(): boolean {
    return this.#listeners.some((listener) => listener.running);
  }

  /** How many listeners the set holds, running or not yet removed. */
  get size(): number {
    return this.#listeners.length;
  }

  /** Keeps accepting until arrivals pause, then closes (listener.ts). */
  drain(): void {
    for (const listener of this.#listeners) listener.drain();
  }

  /** Closes every listener now. */
  stop(): void {
    for (const listener of this.#listeners) listener.stop();
  }

  /**
   * SIGHUP's new certificate: new TLS listeners with it, then the old ones drain (accepting
   * until arrivals pause, as when recycling) and close. Connected clients stay. When the new
   * listeners cannot be made, the old ones stay and the error is logged.
   *
   * @returns whether the new listeners were made.
   */
  reloadTls(tls: TlsKeyPair): boolean {
    const { log, ep } = this.#options;
    let acceptors: MadeAcceptor[];
    try {
      acceptors = this.#options.acceptors({ tls, onlyTls: true });
    } catch (error: unknown) {
      log.error("TLS certificate not reloaded, the old one stays", { ep, error });
      return false;
    }
    const old = [...this.#tls];
    this.#serve(acceptors);
    for (const listener of old) listener.drain();
    Promise.all(old.map((listener) => listener.stopped)).then(() => {
      log.info("TLS certificate reloaded", { ep, replaced: old.length });
    });
    return true;
  }

  #serve(acceptors: MadeAcceptor[]): void {
    const options = this.#options;
    for (const { acceptor, tls } of acceptors) {
      const listener: Listener = new Listener(acceptor, {
        clock: options.clock,
        onAccept: options.onAccept,
        onAcceptFailed: options.onAcceptFailed,
        onStopped: () => {
          if (this.running) {
            // A listener replaced by a reload: the others serve on.
            this.#listeners = this.#listeners.filter((each) => each !== listener);
            this.#tls.delete(listener);
            return;
          }
          options.log.info("thread stopped accepting", { ep: options.ep });
          options.onStopped();
        },
      });
      this.#listeners.push(listener);
      if (tls) this.#tls.add(listener);
    }
  }
}

/**
 * The thread's acceptors: the line port (TLS with a certificate, unless `--tls-port` adds a
 * TLS line port beside it), and the web port (https with a certificate) unless `--no-web`.
 * Binding with `reusePort`, every thread of every process shares every port.
 *
 * @param tls the certificate to use; default: read from `--tls-cert` and `--tls-key`.
 * @param onlyTls just the acceptors that speak TLS (a certificate reload).
 * @throws when a port cannot be bound or the certificate is not usable; nothing stays open.
 */
export function defaultAcceptors(
  config: Config,
  tls?: TlsKeyPair,
  onlyTls = false,
): MadeAcceptor[] {
  if (config.tlsCert === "") {
    if (onlyTls) return [];
  } else tls ??= readKeyPair(config.tlsCert, config.tlsKey);
  const common = { hostname: config.host, reusePort: true, maxLineBytes: config.maxLineBytes };
  const made: MadeAcceptor[] = [];
  const add = (secure: boolean, make: () => Acceptor) => {
    if (!onlyTls || secure) made.push({ acceptor: make(), tls: secure });
  };
  try {
    const lineTls = config.tlsPort === -1 ? tls : undefined;
    add(lineTls !== undefined, () => listenTcp({ ...common, port: config.port, tls: lineTls }));
    if (config.tlsPort !== -1) add(true, () => listenTcp({ ...common, port: config.tlsPort, tls }));
    if (config.web) {
      add(tls !== undefined, () =>
        listenWeb({
          ...common,
          port: config.webPort,
          tls,
          allowedOrigins: config.webOrigins,
        }));
    }
  } catch (error: unknown) {
    for (const { acceptor } of made) acceptor.close();
    throw error;
  }
  return made;
}
