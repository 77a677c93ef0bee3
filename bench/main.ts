/**
 * The benchmark suite: each scenario against a fresh server, driven by separate loadgen
 * processes; prints a table and writes bench/results/<date>-<commit>.json.
 *
 *   deno task bench                      every scenario (several minutes)
 *   deno task bench --quick              a small version of every scenario (under a minute)
 *   deno task bench --scenario direct    one scenario (repeat the flag, or use commas, for more)
 *   deno task bench --scenario cluster   the same workloads on one node and across two nodes
 *                                        joined through a nats-server it starts (skipped
 *                                        without nats-server)
 *   deno task bench --peers              every scenario against chatd, the reference server
 *                                        (bench/reference_server.ts) and ngircd, side by side
 *
 * Each traffic scenario runs twice on one server, cold (its first traffic) and warm. With
 * `--peers` (or `--target NAME`, repeatable) the same scenarios run against the reference
 * server and ngircd (when installed; skipped with the reason otherwise); `scaling` runs
 * against chatd only.
 *
 * Other flags: `--loadgens N` (loadgen processes, default 1: on two cores more only compete
 * with the server), `--processes N --threads T` (server shape outside `scaling`, default chatd's `auto`:
 * 2×1 on two cores),
 * `--retries N` (runs again a run that other processes disturbed; default 1, 0 with
 * `--quick`), `--server-v8-flags FLAGS` (DENO_V8_FLAGS for the server only), `--out FILE`.
 *
 * @module
 */
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { autoShape } from "../src/capacity.ts";
import { serverCommand } from "../tests/test_util.ts";
import { machineInfo, waitForQuiet } from "./_proc.ts";
import {
  formatComparison,
  formatScaling,
  formatTable,
  type RunFailure,
  type Skipped,
  type SuiteReport,
} from "./_report.ts";
import { type RunOptions, type RunResult, runScenario } from "./_run.ts";
import { findNgircd, TARGET_NAMES, type TargetName } from "./_targets.ts";
import { isClustered, type Scenario, SCENARIO_NAMES, scenarios } from "./scenarios.ts";
import { natsMissing } from "../tests/_nats.ts";

const HELP = `deno task bench [--quick] [--peers] [--scenario NAME]... [--target NAME]...
                [--loadgens N] [--retries N] [--processes N --threads T]
                [--server-v8-flags FLAGS] [--out FILE]
Scenarios: ${SCENARIO_NAMES.join(", ")} (default: all)
Targets: ${TARGET_NAMES.join(", ")} (default: chatd; --peers: all)`;

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
async function runQuietly(scenario: Scenario, options: QuietRunOptions): Promise<RunResult[]> {
  const label = `${scenario.name} ${options.target}` +
    (options.target === "chatd" ? ` ${scenario.processes}x${scenario.threads}` : "");
  let best: { results: RunResult[]; otherCores: number } | undefined;
  for (let attempt = 1; attempt <= options.retries + 1; attempt++) {
    const busy = await waitForQuiet(options.quick ? QUIET_WAIT_MS.quick : QUIET_WAIT_MS.full);
    if (busy !== undefined) await log(`machine still busy (${busy.toFixed(2)} cores)`);
    await log(`running ${label}${attempt > 1 ? ` again (attempt ${attempt})` : ""} ...`);
    const results = (await runScenario(scenario, options)).map((result) => ({
      ...result,
      attempts: attempt,
    }));
    const otherCores = Math.max(...results.map((result) => result.otherCores));
    if (best === undefined || otherCores < best.otherCores) best = { results, otherCores };
    if (otherCores <= DISTURBED_CORES) break;
  }
  return best!.results;
}

/**
 * The targets to run: `--target` as given, else all with `--peers`, else chatd; ngircd only
 * when installed.
 *
 * @throws {RangeError} for an unknown target.
 */
function chooseTargets(
  named: string[] | undefined,
  peers: boolean,
): { targets: TargetName[]; skipped: Skipped[] } {
  const wanted = named?.flatMap((name) => name.split(",")) ??
    (peers ? [...TARGET_NAMES] : ["chatd"]);
  const targets: TargetName[] = [];
  const skipped: Skipped[] = [];
  for (const name of wanted) {
    if (!(TARGET_NAMES as readonly string[]).includes(name)) {
      throw new RangeError(`Unknown target ${name}: use ${TARGET_NAMES.join(", ")}`);
    }
    if (name === "ngircd" && findNgircd() === undefined) {
      skipped.push({
        target: name,
        reason: "ngircd is not on the PATH nor in /usr/sbin (apt-get install ngircd)",
      });
    } else targets.push(name as TargetName);
  }
  return { targets, skipped };
}

/** An error's message, and its causes' (the server's start-up failure names only its log). */
function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const first = error.message.split("\n")[0]!;
  const rest = error.message.split("\n").slice(1).join("\n");
  const cause = error.cause === undefined ? "" : ` (${describe(error.cause)})`;
  return `${first}${cause}${rest === "" ? "" : "\n" + rest}`;
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
      peers: { type: "boolean", default: false },
      scenario: { type: "string", multiple: true },
      target: { type: "string", multiple: true },
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
  const { targets, skipped } = chooseTargets(values.target, values.peers!);
  // chatd's own default shape (`auto`), unless told otherwise: the figures are its defaults'.
  const shape = autoShape(navigator.hardwareConcurrency ?? 1);
  const wantedRuns = scenarios(names, {
    quick,
    processes: positive("processes", values.processes, shape.processes),
    threads: positive("threads", values.threads, shape.threads),
    peers: targets.length > 1,
  });
  // The cluster scenarios need nats-server; without it they are skipped with the reason.
  const noNats = wantedRuns.some(isClustered) ? natsMissing() : undefined;
  const runs = noNats === undefined
    ? wantedRuns
    : wantedRuns.filter((scenario) => !isClustered(scenario));
  if (noNats !== undefined) {
    skipped.push({ target: "chatd", reason: `cluster scenarios, ${noNats}` });
  }
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
  for (const skip of skipped) console.log(`SKIPPED ${skip.target}: ${skip.reason}`);

  const started = performance.now();
  const results: RunResult[] = [];
  const failures: RunFailure[] = [];
  for (const scenario of runs) {
    // The scaling table is chatd's own shapes, the cluster chatd's nodes; the peers have one.
    const on = scenario.name.startsWith("scaling/") || scenario.name.startsWith("cluster/")
      ? targets.filter((target) => target === "chatd")
      : targets;
    for (const target of on) {
      const config = target === "chatd" ? `${scenario.processes}x${scenario.threads}` : "1x1";
      try {
        results.push(
          ...await runQuietly(scenario, {
            target,
            loadgens,
            serverArgs,
            serverV8Flags,
            retries,
            quick,
          }),
        );
      } catch (error: unknown) {
        // One broken run should not cost the others: report it and go on.
        const message = describe(error);
        failures.push({ scenario: scenario.name, target, config, error: message });
        await log(`${scenario.name} ${target} ${config} failed: ${message}`);
      }
    }
  }
  const durationMs = performance.now() - started;

  console.log(formatTable(results));
  const comparison = formatComparison(results);
  if (comparison !== "") console.log("\n" + comparison);
  const scaling = formatScaling(results);
  if (scaling !== "") console.log("\n" + scaling);
  for (const failure of failures) {
    console.log(
      `FAILED ${failure.scenario} ${failure.target} ${failure.config}: ` +
        failure.error.split("\n")[0],
    );
  }
  const suffix = values.out !== undefined
    ? ""
    : quick
    ? "-quick"
    : values.peers
    ? "-peers"
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
    targets,
    skipped,
    durationMs,
    results,
    failures,
  };
  await Deno.mkdir(dirname(out), { recursive: true });
  await Deno.writeTextFile(out, JSON.stringify(report, null, 2) + "\n");
  console.log(`\n${results.length} runs in ${(durationMs / 1000).toFixed(0)} s; results in ${out}`);
  return failures.length > 0 ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
