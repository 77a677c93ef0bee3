/**
 * Latency of a direct message across processes: A (on process 0) sends `CHAT B <n>`, B (on
 * process 1) reads `FROM A <n>`; one message in flight at a time, so each sample is one trip
 * through both threads, one datagram and two TCP hops on loopback.
 *
 *   deno run --unstable-net -A bench/latency.ts [--count 1000] [--processes 2] [--threads 2]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { connectTo, TestServer } from "../tests/test_util.ts";

const { values } = parseArgs({
  options: {
    count: { type: "string", default: "1000" },
    processes: { type: "string", default: "2" },
    threads: { type: "string", default: "2" },
  },
});
const count = Number(values.count);

await using server = await TestServer.start([
  "--processes",
  values.processes!,
  "--threads",
  values.threads!,
  "--log-level",
  "warning",
]);
await using a = await connectTo(server, (where) => where.pId === 0);
await using b = await connectTo(server, (where) => where.pId === 1);
await a.send("JOIN A");
await a.readLine();
await b.send("JOIN B");
await b.readLine();
await a.readLine(); // JOINED B

const samples: number[] = [];
for (let i = 0; i < count + 100; i++) {
  const start = performance.now();
  await a.send(`CHAT B ${i}`);
  const line = await b.readLine();
  const elapsed = performance.now() - start;
  if (line !== `FROM A ${i}`) throw new Error(`unexpected ${line}`);
  if (i >= 100) samples.push(elapsed); // the first 100 warm up the JIT
}
samples.sort((x, y) => x - y);
const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))]!;
console.log(
  `cross-process CHAT latency over ${count} messages (${values.processes}x${values.threads}): ` +
    `median ${(at(0.5) * 1000).toFixed(0)} µs, p90 ${(at(0.9) * 1000).toFixed(0)} µs, ` +
    `p99 ${(at(0.99) * 1000).toFixed(0)} µs, max ${(at(1) * 1000).toFixed(0)} µs`,
);
