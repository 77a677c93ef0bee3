/**
 * The interactive terminal client, `chatd client`. Not written yet.
 *
 * @module
 */

/** Options of {@linkcode runClient}. */
export interface ClientOptions {
  host: string;
  port: number;
  name: string | undefined;
}

/** Runs the client; returns the exit code. */
export function runClient(_options: ClientOptions): Promise<number> {
  console.error("chatd client: not available yet");
  return Promise.resolve(1);
}
