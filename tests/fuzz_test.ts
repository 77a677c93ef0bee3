import assert from "node:assert/strict";
import fc from "fast-check";
import { type LineClient, rssMiB, TestServer } from "./test_util.ts";

const SEED = 20261121;
const SECONDS = 12;
const CONNECTIONS = 8;
const encoder = new TextEncoder();

// Lines that are almost protocol: real verbs in odd cases with hostile or random arguments.
const verb = fc.constantFrom(
  "JOIN",
  "join",
  "CHAT",
  "Chat",
  "CHAT *",
  "CHAT nobody",
  "WHO",
  "LEAV",
  "PING",
  "HELP",
  "FAULT",
  "",
  "JOIN a",
);
const argument = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom("\x1b[2J\x1b[H", "\x00\x01\x02", "\u009b31m", "\u202e", "x".repeat(5000), "*"),
);
const ending = fc.constantFrom("\n", "\r\n", "\r", "", "\n\n");
const nearValid = fc.array(
  fc.tuple(verb, argument, ending).map(([v, a, e]) => `${v} ${a}${e}`),
  { maxLength: 20 },
).map((lines) => encoder.encode(lines.join("")));
const randomBytes = fc.uint8Array({ maxLength: 3000 });
const inputs = fc.sample(fc.oneof(nearValid, randomBytes), { numRuns: 4000, seed: SEED });

// V8 grows its heap lazily while garbage comes fast, so RSS alone would climb for a while even
// without a leak. With the old space capped, a leak of JavaScript objects crashes the process
// or shows as growth; garbage does not.
const HEAP_CAP = { DENO_V8_FLAGS: "--max-old-space-size=24,--max-semi-space-size=2" };

Deno.test(`fuzzing a live 2x2 server for ${SECONDS} s crashes nothing and leaves RSS flat`, async () => {
  await using server = await TestServer.start(
    ["--processes", "2", "--threads", "2", "--rate", "0"],
    { env: HEAP_CAP },
  );
  const children = [...server.childPids().values()].flat();
  // One pid per process, or the RSS checks below would check nothing.
  assert.equal(children.length, 2);
  let next = 0;
  let sentBytes = 0;
  let connections = 0;
  const fuzz = async (until: number) => {
    while (performance.now() < until) {
      let client: LineClient;
      try {
        client = await server.connect();
        connections++;
      } catch (error: unknown) {
        throw new Error(`the server refused a connection: ${error}`);
      }
      // Read everything the server says so that the fuzzer is never a slow consumer.
      const draining = (async () => {
        while ((await client.readLineOrEof(30_000).catch(() => null)) !== null);
      })();
      try {
        for (let i = 0; i < 50 && performance.now() < until; i++) {
          const input = inputs[next++ % inputs.length]!;
          await client.sendBytes(input);
          sentBytes += input.length;
        }
      } catch {
        // The server closed this connection (LEAV, a timeout): take a new one.
      }
      client.close();
      await draining;
    }
  };
  const phase = async (seconds: number) => {
    const until = performance.now() + seconds * 1000;
    await Promise.all(Array.from({ length: CONNECTIONS }, () => fuzz(until)));
    return children.map(rssMiB);
  };
  // Half the time to let the heap reach its size, then two equal phases to compare.
  await phase(SECONDS / 2);
  const rssBefore = await phase(SECONDS / 4);
  const rssAfter = await phase(SECONDS / 4);
  console.log(
    `fuzzed: ${connections} connections, ${(sentBytes / 1e6).toFixed(1)} MB; ` +
      `RSS ${rssBefore.map((r) => r.toFixed(0))} → ${rssAfter.map((r) => r.toFixed(0))} MiB`,
  );

  await using probe = await server.connect();
  await probe.hello();
  await probe.send("PING after fuzzing");
  assert.equal(await probe.readLine(), "PONG after fuzzing");
  const restarts = server.parsedLogs().filter((fields) =>
    ["child exited", "thread died", "client handler failed, client closed"].includes(fields.msg!)
  );
  assert.deepEqual(restarts, []);
  assert.deepEqual([...server.childPids().values()].flat(), children);
  assert.equal(rssAfter.length, 2);
  for (const [i, after] of rssAfter.entries()) {
    assert.ok(after - rssBefore[i]! < 15, `RSS grew from ${rssBefore[i]} to ${after} MiB`);
  }
});
