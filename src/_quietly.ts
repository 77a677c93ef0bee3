/**
 * Closing what may already be closed.
 *
 * @module
 */

/** Closes `closer`, ignoring the error of one that is already closed (or was never open). */
export function closeQuietly(closer: { close(): void }): void {
  try {
    closer.close();
  } catch {
    // Already closed.
  }
}
