/**
 * No signal may open a debugger in chatd.
 *
 * Since Deno 2.9.2, `deno run` starts the V8 inspector on 127.0.0.1:9229 when the process
 * receives SIGUSR1, as Node.js does (denoland/deno#35738, `spawn_sigusr1_inspector_listener`
 * in `cli/worker.rs`). Any local user can then connect and run code inside chatd. There is no
 * flag to turn it off, and a `Deno.addSignalListener("SIGUSR1", ...)` does not stop it: Deno
 * runs both. A signal that is *blocked* is never delivered, though, and the signal mask is
 * inherited by every thread and by child processes. So under `deno run` the supervisor must
 * start with SIGUSR1 blocked (`env --block-signal=USR1 deno run ...`, as `deno task start`
 * does), and refuses to start otherwise; its children inherit the mask. A binary made by
 * `deno compile` runs on denort, which installs no such listener.
 *
 * @module
 */

/** SIGUSR1 on Linux. */
const SIGUSR1 = 10;

/** The command that starts chatd from source with SIGUSR1 blocked. */
export const BLOCK_SIGUSR1 = ["env", "--block-signal=USR1"] as const;

/**
 * True when every `SigBlk:` line of `text` — the `status` files of all a process's threads,
 * one after the other — has SIGUSR1 blocked (a hex bit mask, bit `n - 1` for signal `n`). A
 * signal sent to a process goes to any thread that does not block it, so one is enough.
 *
 * @example
 * ```ts
 * sigusr1Blocked("SigBlk:\t0000000000000200\n"); // true
 * ```
 */
export function sigusr1Blocked(text: string): boolean {
  const masks = [...text.matchAll(/^SigBlk:\s*([0-9a-fA-F]+)\s*$/gm)].map((match) => match[1]!);
  return masks.length > 0 &&
    masks.every((mask) => ((BigInt(`0x${mask}`) >> BigInt(SIGUSR1 - 1)) & 1n) === 1n);
}

/**
 * Why this process must not serve, or undefined when it may: under `deno run` SIGUSR1 has to
 * be blocked in every thread. Reads `/proc/PID/task/TID/status` through `sh` and `cat`, since
 * Deno asks for `--allow-all` to read `/proc` directly and chatd's supervisor has `--allow-run`
 * anyway. Every thread, not the process's `status` alone: that shows the main thread, which
 * blocks every signal for a moment while it spawns a process (that `cat`, say).
 */
export async function inspectorSignalProblem(
  standalone = Deno.build.standalone,
): Promise<string | undefined> {
  if (standalone) return undefined;
  let status: string;
  try {
    const output = await new Deno.Command("sh", {
      args: ["-c", 'cat /proc/"$1"/task/*/status', "sh", String(Deno.pid)],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    status = new TextDecoder().decode(output.stdout);
  } catch (error: unknown) {
    return `Cannot read this process's signal mask: ${String(error)}`;
  }
  if (sigusr1Blocked(status)) return undefined;
  return "Refusing to serve with SIGUSR1 unblocked: under `deno run`, SIGUSR1 opens the V8 " +
    "inspector on 127.0.0.1:9229 for any local user.\n" +
    "Start chatd as `env --block-signal=USR1 deno run ...` (deno task start does), or use the " +
    "binary built by ./compile.sh.";
}
