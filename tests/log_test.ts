import assert from "node:assert/strict";
import {
  logFormatFromArgs,
  type Logger,
  logLevel,
  parseLogLevel,
  RateLimitedWarnings,
  setLogLevel,
  setupLogging,
} from "../src/log.ts";
import { TestServer, withTimeout } from "./test_util.ts";

Deno.test("parseLogLevel takes warn for warning and refuses unknown names", () => {
  assert.equal(parseLogLevel("warn"), "warning");
  assert.equal(parseLogLevel("warning"), "warning");
  assert.equal(parseLogLevel("debug"), "debug");
  assert.equal(parseLogLevel("loud"), undefined);
});

Deno.test("logFormatFromArgs reads --log-format=X and --log-format X", () => {
  assert.equal(logFormatFromArgs(["__child", "--log-format=json"]), "json");
  assert.equal(logFormatFromArgs(["--log-format", "text"]), "text");
  assert.equal(logFormatFromArgs(["--log-level=debug"]), undefined);
});

/** A logger that records its warnings. */
function recordingLogger(): { log: Logger; lines: [string, Record<string, unknown>][] } {
  const lines: [string, Record<string, unknown>][] = [];
  const log = {
    warning: (message: string, properties: Record<string, unknown>) => {
      lines.push([message, properties]);
    },
  } as unknown as Logger;
  return { log, lines };
}

Deno.test("RateLimitedWarnings: one line per kind per interval, then one with the count", () => {
  const { log, lines } = recordingLogger();
  let now = 0;
  const timers: { callback: () => void; ms: number }[] = [];
  using warnings = new RateLimitedWarnings(log, {
    intervalMs: 1000,
    now: () => now,
    setTimer: (callback, ms) => timers.push({ callback, ms }),
    clearTimer: () => {},
  });

  for (let i = 0; i < 15_000; i++) warnings.warn("junk dropped", { i });
  warnings.warn("other kind", {});
  assert.equal(lines.length, 2);
  assert.deepEqual(lines, [["junk dropped", { i: 0 }], ["other kind", {}]]);
  assert.equal(timers.length, 1);
  assert.equal(timers[0]!.ms, 1000);

  now = 1000;
  timers[0]!.callback();
  assert.deepEqual(lines[2], ["junk dropped", { suppressed: 14_999, interval_s: 1 }]);

  // The flood goes on: still one line per interval.
  now = 1500;
  warnings.warn("junk dropped", { i: -1 });
  assert.equal(lines.length, 3);
  now = 2000;
  timers[1]!.callback();
  assert.deepEqual(lines[3], ["junk dropped", { suppressed: 1, interval_s: 1 }]);

  // Quiet for an interval: the next one is logged at once, with its own properties.
  now = 3500;
  warnings.warn("junk dropped", { i: 7 });
  assert.deepEqual(lines[4], ["junk dropped", { i: 7 }]);
  assert.equal(timers.length, 2);
});

Deno.test("setLogLevel in a process reaches the threads (Web Workers) of that process", async () => {
  using _logging = setupLogging("info", {}, { format: "text" });
  const worker = new Worker(new URL("./_log_worker.ts", import.meta.url), { type: "module" });
  try {
    const replies: string[] = [];
    let wake: () => void = () => {};
    worker.onmessage = (event: MessageEvent<string>) => {
      replies.push(event.data);
      wake();
    };
    const ask = async (message: string) => {
      const answered = new Promise<void>((resolve) => wake = resolve);
      worker.postMessage(message);
      await withTimeout(answered, 5000, `worker answer to ${message}`);
      return replies.at(-1);
    };
    assert.equal(await ask("setup"), "info");

    setLogLevel("debug");

    assert.equal(logLevel(), "debug");
    // The broadcast is asynchronous: ask until the worker has it (each answer is awaited).
    const deadline = performance.now() + 5000;
    while ((await ask("level")) !== "debug") {
      assert.ok(performance.now() < deadline, "the worker never took the new level");
    }
  } finally {
    worker.terminate();
  }
});

Deno.test("--log-format json: every log line of every process and thread is one JSON object", async () => {
  const server = await TestServer.start([
    "--processes",
    "2",
    "--threads",
    "2",
    "--log-format",
    "json",
  ]);
  await using client = await server.connect();
  await client.hello();
  server.signal("SIGTERM");
  assert.equal((await withTimeout(server.status, 10_000, "exit")).code, 0);
  const records = server.logs.map((line) => JSON.parse(line) as Record<string, unknown>);
  const messages = records.map((record) => record.message);
  assert.ok(messages.includes("supervisor started"));
  assert.equal(messages.filter((message) => message === "thread listening").length, 4);
  assert.ok(messages.includes("supervisor exiting"));
  const started = records.find((record) => record.message === "supervisor started")!;
  assert.equal(started.level, "INFO");
  assert.equal(started.logger, "chatd.supervisor");
  assert.equal(started.log_format, "json");
  assert.equal(typeof started.runtime_dir, "string");
});

Deno.test("start-up logs one info line before the ready line, the rest at debug", async () => {
  await using server = await TestServer.start(["--processes", "2", "--threads", "1"]);
  const infoBySupervisorOrProcess = server.parsedLogs().filter((fields) =>
    fields.level === "info" && fields.logger !== "chatd.thread"
  );
  assert.deepEqual(infoBySupervisorOrProcess.map((fields) => fields.msg), ["supervisor started"]);
});
