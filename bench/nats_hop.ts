/**
 * The NATS hop alone, as two chatd supervisors use it: two connections (the client chatd
 * uses) to one nats-server with JetStream started for the run, core publish on one, a
 * subscription on the other, payloads the size of a direct-message datagram. Measures the
 * one-way rate with `--window` messages in flight and the round trip with one in flight;
 * the difference to the cluster scenarios of `deno task bench` is chatd's own share.
 *
 *   deno run --unstable-net -A bench/nats_hop.ts [--messages N] [--bytes B] [--window W]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Histogram } from "./_histogram.ts";
import { natsMissing, NatsServer } from "../tests/_nats.ts";
import { cpuMs } from "./_proc.ts";
import { withTimeout } from "../tests/test_util.ts";

const TIMEOUT_MS = 120_000;

/** Sends `messages` from `a` to `b` with `window` in flight; µs per message and msgs/s. */
async function oneWay(
  a: NatsConnection,
  b: NatsConnection,
  options: { messages: number; bytes: number; window: number },
): Promise<{ perSec: number; latency: Histogram }> {
  const { messages, bytes, window } = options;
  const payload = new Uint8Array(bytes);
  const view = new DataView(payload.buffer);
  const latency = new Histogram();
  const done = Promise.withResolvers<void>();
  let received = 0, sent = 0;
  const send = () => {
    view.setFloat64(0, performance.now());
    a.publish("hop.b", payload);
    sent++;
  };
  const sub = b.subscribe("hop.b", {
    callback: (_error, message) => {
      const at = new DataView(message.data.buffer, message.data.byteOffset).getFloat64(0);
      latency.record((performance.now() - at) * 1000);
      received++;
      // The window is refilled from the receiving side, as a closed loop of the bench does.
      if (sent < messages) send();
      if (received === messages) done.resolve();
    },
  });
  await b.flush();
  const start = performance.now();
  for (let i = 0; i < Math.min(window, messages); i++) send();
  await withTimeout(done.promise, TIMEOUT_MS, "one-way messages");
  const perSec = messages * 1000 / (performance.now() - start);
  sub.unsubscribe();
  return { perSec, latency };
}

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      messages: { type: "string", default: "200000" },
      bytes: { type: "string", default: "80" },
      window: { type: "string", default: "800" },
    },
  });
  const missing = natsMissing();
  if (missing) {
    console.log(`SKIPPED: ${missing}`);
    return 0;
  }
  const messages = Number(values.messages), bytes = Number(values.bytes);
  await using nats = await NatsServer.start();
  const a = await connect({ servers: nats.url });
  const b = await connect({ servers: nats.url });
  try {
    const cpu = () => ({ nats: cpuMs(nats.pid), self: cpuMs(Deno.pid) });
    for (const window of [Number(values.window), 1]) {
      const count = window === 1 ? Math.min(messages, 20_000) : messages;
      const before = cpu();
      const { perSec, latency } = await oneWay(a, b, { messages: count, bytes, window });
      const after = cpu();
      const summary = latency.summary();
      const us = (ms: number) => (ms * 1000 / count).toFixed(2);
      console.log(
        `window ${window}: ${count} messages of ${bytes} B, ${Math.round(perSec)}/s; ` +
          `latency p50 ${Math.round(summary.p50)} µs, p99 ${Math.round(summary.p99)} µs; ` +
          `CPU per message: nats-server ${us(after.nats - before.nats)} µs, ` +
          `both clients (this process) ${us(after.self - before.self)} µs`,
      );
    }
  } finally {
    await a.close();
    await b.close();
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
