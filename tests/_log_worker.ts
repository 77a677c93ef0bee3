/**
 * A Web Worker for tests/log_test.ts: sets up logging as a chatd thread does and answers
 * each message with the log level in force in its realm.
 *
 * @module
 */
import { logLevel, setupLogging } from "../src/log.ts";

const scope = self as unknown as {
  onmessage: ((event: MessageEvent<string>) => void) | null;
  postMessage(message: string): void;
};
scope.onmessage = (event) => {
  if (event.data === "setup") setupLogging("info", { t_id: 0 });
  scope.postMessage(logLevel());
};
