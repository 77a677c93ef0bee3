/**
 * The benchmark suite: each scenario against a fresh server, driven by separate loadgen
 * processes; prints a table and writes bench/results/<date>-<commit>.json.
 *
 *   deno task bench                      every scenario (several minutes)
 *   deno task bench --quick              a small version of every scenario (under a minute)
 *   deno task bench --scenario direct    one scenario (repeat the flag, or use commas, for more)
 *
 * Other flags: `--loadgens N` (loadgen processes, default 1: on two cores more only compete
 * with the server), `--processes N --threads T` (server shape outside `scaling`, default 2×2),
 * `--retries N` (runs again a run that other processes disturbed; default 1, 0 with
 * `--quick`), `--server-v8-flags FLAGS` (DENO_V8_FLAGS for the server only), `--out FILE`.
 *
 * @module
 */
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { serverCommand } from "../tests/test_util.ts";
import { machineInfo, waitForQuiet } from "./_proc.ts";
import { formatTable, type RunFailure, type SuiteReport } from "./_report.ts";
import { type RunOptions, type RunResult, runScenario } from "./_run.ts";
import { type Scenario, SCENARIO_NAMES, scenarios } from "./scenarios.ts";

const HELP = `deno task bench [--quick] [--scenario NAME]... [--loadgens N] [--retries N]
                [--processes N --threads T] [--server-v8-flags FLAGS] [--out FILE]
Scenarios: ${SCENARIO_NAMES.join(", ")} (default: all)`;

const decoder = new TextDecoder();
const encoder = new TextEncoder();
/** Before each run, wait up to this long for other processes to leave the CPU alone. */
const QUIET_WAIT_MS = { full: 30_000, quick: 2000 };
/** A run during which other processes used more cores than this is disturbed. */
const DISTURBED_CORES = 0.25;

/** Options of {@linkcode runQuietly}. */
interface QuietRunOptions extends RunOptions {
  /** Runs again this many times when other processes took CPU during the measured phase. */
  retries: number;
  quick: boolean;
}

/**
 * Runs a scenario once the machine is quiet; when other processes still took more than
 * {@linkcode DISTURBED_CORES} during the measured phase, runs it again, up to `retries`
 * times, and keeps the least disturbed run.
 */
async function runQuietly(scenario: Scenario, options: QuietRunOptions): Promise<RunResult> {
  const label = `${scenario.name} ${scenario.processes}x${scenario.threads}`;
  let best: RunResult | undefined;
  for (let attempt = 1; attempt <= options.retries + 1; attempt++) {
    const busy = await waitForQuiet(options.quick ? QUIET_WAIT_MS.quick : QUIET_WAIT_MS.full);
    if (busy !== undefined) await log(`machine still busy (${busy.toFixed(2)} cores)`);
    await log(`running ${label}${attempt > 1 ? ` again (attempt ${attempt})` : ""} ...`);
    const result = { ...await runScenario(scenario, options), attempts: attempt };
    if (best === undefined || result.otherCores < best.otherCores) best = result;
    if (result.otherCores <= DISTURBED_CORES) break;
  }
  return best!;
}

function log(line: string): Promise<number> {
  return Deno.stderr.write(encoder.encode(line + "\n"));
}

async function output(command: string, args: string[]): Promise<string> {
  const { stdout } = await new Deno.Command(command, { args, stderr: "null" }).output();
  return decoder.decode(stdout).trim();
}

/** True when `chatd --help` lists `--rate`: then flood control is turned off for the runs. */
async function hasRateFlag(): Promise<boolean> {
  const { stdout } = await serverCommand(["--help"]).output();
  return /^\s*--rate\b/m.test(decoder.decode(stdout));
}

function positive(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1) {
    throw new RangeError(`Invalid --${name} ${value}: use a whole number of at least 1`);
  }
  return number;
}

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: "boolean", default: false },
      scenario: { type: "string", multiple: true },
      loadgens: { type: "string" },
      retries: { type: "string" },
      processes: { type: "string" },
      threads: { type: "string" },
      out: { type: "string" },
      "server-v8-flags": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const quick = values.quick!;
  const names = values.scenario?.flatMap((name) => name.split(",")) ?? SCENARIO_NAMES;
  const runs = scenarios(names, {
    quick,
    processes: positive("processes", values.processes, 2),
    threads: positive("threads", values.threads, 2),
  });
  const loadgens = positive("loadgens", values.loadgens, 1);
  const retries = values.retries === undefined ? (quick ? 0 : 1) : Number(values.retries);
  if (!Number.isInteger(retries) || retries < 0) {
    throw new RangeError(`Invalid --retries ${values.retries}: use a whole number`);
  }
  const serverArgs = await hasRateFlag() ? ["--rate", "0"] : [];
  const serverV8Flags = values["server-v8-flags"];

  const root = new URL("..", import.meta.url).pathname;
  const commit = await output("git", ["-C", root, "rev-parse", "--short", "HEAD"]) || "unknown";
  const dirty =
    (await output("git", ["-C", root, "status", "--porcelain", "src", "main.ts"])) !== "";
  const date = new Date().toISOString().slice(0, 10);
  const machine = machineInfo();
  console.log(
    `chatd ${commit}${dirty ? " (uncommitted changes in src/)" : ""}, Deno ${machine.deno}, ` +
      `${machine.cores} cores (${machine.cpuModel}), ${machine.memoryMiB} MiB; ` +
      `${loadgens} loadgen process${loadgens === 1 ? "" : "es"}; server flags ` +
      `--log-level warning${serverArgs.length > 0 ? " " + serverArgs.join(" ") : ""}` +
      (serverV8Flags ? `, DENO_V8_FLAGS=${serverV8Flags}` : ""),
  );

  const started = performance.now();
  const results: RunResult[] = [];
  const failures: RunFailure[] = [];
  for (const scenario of runs) {
    const config = `${scenario.processes}x${scenario.threads}`;
    try {
      results.push(
        await runQuietly(scenario, { loadgens, serverArgs, serverV8Flags, retries, quick }),
      );
    } catch (error: unknown) {
      // One broken run should not cost the others: report it and go on.
      const message = error instanceof Error ? error.message : String(error);
      failures.push({ scenario: scenario.name, config, error: message });
      await log(`${scenario.name} ${config} failed: ${message}`);
    }
  }
  const durationMs = performance.now() - started;

  console.log(formatTable(results));
  for (const failure of failures) {
    console.log(`FAILED ${failure.scenario} ${failure.config}: ${failure.error.split("\n")[0]}`);
  }
  const suffix = values.out !== undefined
    ? ""
    : quick
    ? "-quick"
    : values.scenario
    ? `-${names.join("-")}`
    : "";
  const out = values.out ?? `${root}bench/results/${date}-${commit}${suffix}.json`;
  const report: SuiteReport = {
    date,
    commit,
    dirty,
    command: ["deno task bench", ...args].join(" "),
    quick,
    machine,
    loadgens,
    durationMs,
    results,
    failures,
  };
  await Deno.mkdir(dirname(out), { recursive: true });
  await Deno.writeTextFile(out, JSON.stringify(report, null, 2) + "\n");
  console.log(`\n${runs.length} runs in ${(durationMs / 1000).toFixed(0)} s; results in ${out}`);
  return failures.length > 0 ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
