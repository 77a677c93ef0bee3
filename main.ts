/**
 * chatd's entry point: reads the command line and starts the role it asks for. The same
 * program is the supervisor (what the user starts), a child process (`__child`, started by
 * the supervisor) and the interactive client (`client`); threads are Web Workers started from
 * `src/thread.ts`.
 *
 * @module
 */
import { type Invocation, parseInvocation, UsageError } from "./src/config.ts";
import { runSupervisor } from "./src/supervisor.ts";
import { runWorkerProcess } from "./src/worker_process.ts";

/**
 * CHATD_FAULTS=1, read only when allowed: `deno run main.ts --help` without permissions must
 * print the help, not ask for (or fail on) environment access.
 */
function faultsWanted(): boolean {
  const env = Deno.permissions.querySync({ name: "env", variable: "CHATD_FAULTS" });
  return env.state === "granted" && Deno.env.get("CHATD_FAULTS") === "1";
}

async function main(args: string[]): Promise<number> {
  let invocation: Invocation;
  try {
    invocation = parseInvocation(args, { faults: faultsWanted() });
  } catch (error: unknown) {
    if (!(error instanceof UsageError)) throw error;
    const help = args[0] === "client" ? "chatd client --help" : "chatd --help";
    console.error(`chatd: ${error.message}\nTry '${help}' for the options.`);
    return 2;
  }
  switch (invocation.kind) {
    case "help":
    case "version":
      console.log(invocation.text.trimEnd());
      return 0;
    case "serve":
      return await runSupervisor(invocation.config, args);
    case "child":
      return await runWorkerProcess(invocation);
    case "client": {
      const { runClient } = await import("./src/client.ts");
      return await runClient(invocation);
    }
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
