/**
 * Start-up time to the ready line, and the resident memory of every process once idle.
 *
 *   deno run --unstable-net -A bench/startup.ts [--runs 5] [--processes 2] [--threads 2]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { TestServer } from "../tests/test_util.ts";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "5" },
    processes: { type: "string", default: "2" },
    threads: { type: "string", default: "2" },
  },
});

/** VmRSS of a process, in KiB. */
export function rssKiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
}

const times: number[] = [];
for (let run = 0; run < Number(values.runs); run++) {
  const start = performance.now();
  await using server = await TestServer.start([
    "--processes",
    values.processes!,
    "--threads",
    values.threads!,
  ]);
  times.push(performance.now() - start);
  if (run === Number(values.runs) - 1) {
    await new Promise((resolve) => setTimeout(resolve, 1000)); // let start-up garbage settle
    const children = [...server.childPids().values()].flat();
    console.log(`supervisor RSS ${(rssKiB(server.process.pid) / 1024).toFixed(1)} MiB`);
    for (const pid of children) {
      console.log(`child ${pid} RSS ${(rssKiB(pid) / 1024).toFixed(1)} MiB`);
    }
  }
}
times.sort((a, b) => a - b);
console.log(
  `start-up to the ready line (${values.processes}x${values.threads}), ${times.length} runs: ` +
    `median ${times[Math.floor(times.length / 2)]!.toFixed(0)} ms, ` +
    `min ${times[0]!.toFixed(0)} ms, max ${times.at(-1)!.toFixed(0)} ms`,
);
