/**
 * How the supervisor re-executes itself to start a child process.
 *
 * Under `deno run`, `Deno.execPath()` is the deno binary, so the child command is
 * `deno run <flags> main.ts __child ...`. In a binary made by `deno compile`,
 * `Deno.execPath()` is the binary itself, with the flags compiled in, so the command is
 * `chatd __child ...`.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { type Config, configToArgs } from "./config.ts";

/**
 * The Deno flags a child needs under `deno run`. The one list of chatd's permissions: the
 * supervisor needs these and `--allow-run` ({@linkcode SERVER_DENO_FLAGS}), which the
 * `start` task in deno.json and `compile.sh` repeat (shell and JSON cannot import it);
 * `tests/permissions_test.ts` checks that they do.
 */
export const CHILD_DENO_FLAGS: readonly string[] = [
  "--unstable-net",
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
];

/**
 * V8 flags of a child under `deno run`. After a burst (a reconnect storm, a busy minute) V8's
 * memory reducer gives back the heap the garbage grew, but only once it has looked: by default
 * 8 s and 30 s after the triggers it waits for, and then only when the allocation rate has been
 * low for a while. With 1 s each, a child's RSS comes down 5–7 s after a storm of 5 000 joins
 * instead of 10–40 s (README "Performance"). The reducer runs only when little is allocated, so
 * a busy child is not slowed by it.
 */
export const CHILD_V8_FLAGS =
  "--memory-reducer-delay-ms=1000,--gc-memory-reducer-start-delay-ms=1000";

/** The Deno flags the supervisor needs: a child's, and `--allow-run` to start children. */
export const SERVER_DENO_FLAGS: readonly string[] = [...CHILD_DENO_FLAGS, "--allow-run"];

/** Where this program runs from. */
export interface Runtime {
  /** `Deno.execPath()`. */
  execPath: string;
  /** `Deno.build.standalone`: true inside a binary made by `deno compile`. */
  standalone: boolean;
  /** `Deno.mainModule`. */
  mainModule: string;
  /** The deno.json to use under `deno run`, when there is one. */
  configFile?: string;
  /** Under `deno run`: write children's CPU profiles here (CHATD_CPU_PROF, for profiling). */
  cpuProfileDir?: string;
}

/** A command for `Deno.Command`. */
export interface ChildCommand {
  command: string;
  args: string[];
}

/**
 * Builds the command line that starts child `pId`.
 *
 * @example
 * ```ts
 * childCommand({ execPath: "/usr/bin/chatd", standalone: true, mainModule: "" }, config, 0, 1);
 * // { command: "/usr/bin/chatd", args: ["__child", "--p-id", "0", "--instance", "1", ...] }
 * ```
 */
export function childCommand(
  runtime: Runtime,
  config: Config,
  pId: number,
  instance: number,
): ChildCommand {
  const childArgs = [
    "__child",
    "--p-id",
    String(pId),
    "--instance",
    String(instance),
    ...configToArgs(config),
  ];
  if (runtime.standalone) return { command: runtime.execPath, args: childArgs };
  const configFlags = runtime.configFile ? ["--config", runtime.configFile] : [];
  const profileFlags = runtime.cpuProfileDir
    ? [`--cpu-prof-dir=${runtime.cpuProfileDir}`, "--cpu-prof-md"]
    : [];
  return {
    command: runtime.execPath,
    args: [
      "run",
      "--quiet",
      ...configFlags,
      ...profileFlags,
      `--v8-flags=${CHILD_V8_FLAGS}`,
      ...CHILD_DENO_FLAGS,
      runtime.mainModule,
      ...childArgs,
    ],
  };
}

/** The runtime this process is running in. */
export function currentRuntime(): Runtime {
  const standalone = Deno.build.standalone;
  let configFile: string | undefined;
  if (!standalone) {
    const url = new URL("../deno.json", import.meta.url);
    if (url.protocol === "file:") configFile = fileURLToPath(url);
  }
  const cpuProfileDir = Deno.env.get("CHATD_CPU_PROF") || undefined;
  return {
    execPath: Deno.execPath(),
    standalone,
    mainModule: Deno.mainModule,
    configFile,
    cpuProfileDir,
  };
}
