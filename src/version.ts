/**
 * The version chatd reports (`--version`, the `HELLO` line). A module of its own so that
 * the protocol, loaded by every thread, does not load the command-line parser.
 *
 * @module
 */

/** chatd's version. */
export const VERSION = "0.1.0";
