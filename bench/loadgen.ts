/**
 * A load generator process: talks to chatd over TCP as many clients, as its workload (the one
 * argument, JSON) says, takes orders on stdin and reports on stdout, one JSON object a line
 * (see `_messages.ts`). The runner (`main.ts`) starts one or more of these per scenario.
 *
 *   deno run --unstable-net -A bench/loadgen.ts '<workload json>'
 *
 * @module
 */
import { ConnStorm } from "./_conns.ts";
import { type Order, parseOrder, parseWorkload, type Report } from "./_messages.ts";
import { Traffic } from "./_traffic.ts";

/** How long the connection storm may take, notices included. */
const STORM_TIMEOUT_MS = 300_000;

const encoder = new TextEncoder();

function report(message: Report): void {
  const data = encoder.encode(JSON.stringify(message) + "\n");
  let written = 0;
  while (written < data.length) written += Deno.stdout.writeSync(data.subarray(written));
}

async function* orders(): AsyncGenerator<Order> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of Deno.stdin.readable) {
    pending += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = pending.indexOf("\n")) !== -1) {
      yield parseOrder(pending.slice(0, newline));
      pending = pending.slice(newline + 1);
    }
  }
}

async function runTraffic(traffic: Traffic, input: AsyncGenerator<Order>): Promise<void> {
  const { clients, connects } = await traffic.setup();
  report({ kind: "ready", clients, connects });
  for await (const order of input) {
    switch (order.kind) {
      case "warmup":
        traffic.startSending();
        break;
      case "measure":
        traffic.startMeasuring();
        break;
      case "stop":
        report({ kind: "stopped", sent: traffic.stop() });
        break;
      case "drain":
        report(await traffic.drain(order.sent, order.timeoutMs));
        traffic.close();
        return;
    }
  }
}

async function runConns(storm: ConnStorm, input: AsyncGenerator<Order>): Promise<void> {
  const connects = await storm.warmup();
  report({ kind: "ready", clients: 0, connects });
  for await (const order of input) {
    switch (order.kind) {
      case "measure":
        report({ kind: "joined", ...await storm.storm(STORM_TIMEOUT_MS) });
        break;
      case "stop":
        report({ kind: "stopped", sent: {} });
        break;
      case "drain":
        report(storm.result());
        storm.close();
        return;
      case "warmup":
        break; // The warm-up ran before `ready`.
    }
  }
}

async function main(): Promise<number> {
  const workload = parseWorkload(Deno.args[0] ?? "");
  const input = orders();
  if (workload.kind === "traffic") await runTraffic(new Traffic(workload), input);
  else await runConns(new ConnStorm(workload), input);
  return 0;
}

if (import.meta.main) Deno.exit(await main());
