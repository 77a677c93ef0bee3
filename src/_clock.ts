/**
 * Time, injectable: the core takes a {@linkcode Clock} so that its tests can run timeouts,
 * rate limits and drains without waiting.
 *
 * @module
 */

/** Reads the time and runs timers. */
export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Runs `callback` once after `ms`; returns a handle for {@linkcode Clock.clearTimeout}. */
  setTimeout(callback: () => void, ms: number): unknown;
  /** Cancels a timer; a handle that already ran, is undefined or unknown is ignored. */
  clearTimeout(handle: unknown): void;
}

/** The real clock: `performance.now` and the global timers. */
export const SYSTEM_CLOCK: Clock = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
