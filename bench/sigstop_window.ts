/**
 * Measures the SIGSTOP window: how long new connections hang while a child is stopped.
 * Starts chatd with the given flags (default shape unless told), stops child p_id 0 with
 * SIGSTOP, then opens a connection every 50 ms for 12 s; each waits up to 15 s for its
 * greeting. Prints, for the connections that did not get a greeting at once (> 200 ms), how
 * long they waited and how they ended.
 *
 *   deno run --unstable-net -A bench/sigstop_window.ts [chatd flags...]
 *
 * @module
 */
import { LineClient, TestServer } from "../tests/test_util.ts";

await using server = await TestServer.start(["--processes", "2", "--threads", "1", ...Deno.args]);
const [pid] = server.childPids().get(0)!;
const stoppedAt = performance.now();
Deno.kill(pid!, "SIGSTOP");
const results: { at: number; waited: number; outcome: string }[] = [];
const pending: Promise<void>[] = [];
while (performance.now() - stoppedAt < 12_000) {
  const at = performance.now() - stoppedAt;
  pending.push((async () => {
    const started = performance.now();
    let outcome: string;
    try {
      const client = await LineClient.connect(server.port);
      try {
        const line = await client.readLine(15_000);
        outcome = line.startsWith("HELLO ") ? "greeted" : line;
      } finally {
        client.close();
      }
    } catch (error: unknown) {
      outcome = String(error).slice(0, 60);
    }
    results.push({ at, waited: performance.now() - started, outcome });
  })());
  await new Promise((resolve) => setTimeout(resolve, 50));
}
await Promise.all(pending);
const slow = results.filter((result) => result.waited > 200 || result.outcome !== "greeted");
const worst = Math.max(...slow.map((result) => result.waited), 0);
const lastHung = Math.max(...slow.map((result) => result.at), 0);
console.log(
  `${results.length} connections, ${slow.length} hung or failed; the longest wait ${
    (worst / 1000).toFixed(2)
  } s; the last one that hung arrived ${(lastHung / 1000).toFixed(2)} s after SIGSTOP`,
);
const outcomes = new Map<string, number>();
for (const result of slow) outcomes.set(result.outcome, (outcomes.get(result.outcome) ?? 0) + 1);
console.log(Object.fromEntries(outcomes));
