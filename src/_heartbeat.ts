/**
 * The watchdog's heartbeat, for the supervisor (over its children) and each child (over its
 * threads): ping every peer that has answered, act on one that has left a ping unanswered
 * for longer than `--watchdog`.
 *
 * @module
 */

/** How often peers are pinged, at most (more often when `--watchdog` is short). */
export const HEARTBEAT_MS = 500;

/** A peer's heartbeat state: set it to undefined when its `pong` arrives. */
export interface Beating {
  /** When the oldest unanswered ping was sent; undefined when all are answered. */
  pingSentAt: number | undefined;
}

/** Options of {@linkcode startHeartbeat}. */
export interface HeartbeatOptions<T extends Beating> {
  /** Seconds a peer may leave a ping unanswered. */
  watchdogSeconds: number;
  /** The peers, read again at every beat. */
  peers: () => Iterable<T>;
  /** Sends a ping to `peer`. */
  ping: (peer: T) => void;
  /** `peer` has not answered for too long. */
  hung: (peer: T) => void;
  /** Peers left out (already dealt with, or finished). */
  skip?: (peer: T) => boolean;
}

/** Starts beating; returns the function that stops it. */
export function startHeartbeat<T extends Beating>(options: HeartbeatOptions<T>): () => void {
  const limitMs = options.watchdogSeconds * 1000;
  const beat = () => {
    const now = performance.now();
    for (const peer of [...options.peers()]) {
      if (options.skip?.(peer)) continue;
      if (peer.pingSentAt === undefined) {
        peer.pingSentAt = now;
        options.ping(peer);
      } else if (now - peer.pingSentAt > limitMs) {
        options.hung(peer);
      }
    }
  };
  const timer = setInterval(beat, Math.min(HEARTBEAT_MS, limitMs / 2));
  return () => clearInterval(timer);
}
