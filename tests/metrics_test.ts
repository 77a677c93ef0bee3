import assert from "node:assert/strict";
import parsePrometheusText from "parse-prometheus-text-format";
import { formatMetrics, noCounts } from "../src/metrics.ts";
import { THREAD_METRICS } from "../src/counters.ts";
import {
  type LineClient,
  outputWithin,
  serverCommand,
  TestServer,
  waitUntil,
} from "./test_util.ts";

/** One sample: its family name, its labels, its value. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * A strict parser of the Prometheus text format (0.0.4) as chatd writes it: HELP and TYPE
 * before each family's samples, known types, valid metric and label names, quoted label
 * values with only the allowed escapes, numeric values, no series twice, counters named
 * `_total`. Throws on the first line that breaks a rule.
 */
function parseExposition(text: string): Map<string, Sample> {
  assert.ok(text.endsWith("\n"), "ends with a newline");
  const types = new Map<string, string>();
  const helped = new Set<string>();
  const series = new Map<string, Sample>();
  const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
  for (const [index, line] of text.slice(0, -1).split("\n").entries()) {
    const where = `line ${index + 1}: ${line}`;
    let match = /^# HELP (\S+) (.*)$/.exec(line);
    if (match) {
      assert.match(match[1]!, NAME, where);
      assert.ok(!helped.has(match[1]!), `HELP twice: ${where}`);
      helped.add(match[1]!);
      continue;
    }
    match = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (match) {
      assert.ok(helped.has(match[1]!), `TYPE before HELP: ${where}`);
      assert.ok(!types.has(match[1]!), `TYPE twice: ${where}`);
      types.set(match[1]!, match[2]!);
      continue;
    }
    assert.ok(!line.startsWith("#"), `unknown comment: ${where}`);
    match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match, `not a sample: ${where}`);
    const [, name, labelText, valueText] = match as unknown as [string, string, string, string];
    const type = types.get(name);
    assert.ok(type, `sample before its TYPE: ${where}`);
    if (type === "counter") assert.ok(name.endsWith("_total"), `counter not _total: ${where}`);
    const labels: Record<string, string> = {};
    let rest = labelText ?? "";
    while (rest !== "") {
      const label = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/.exec(rest);
      assert.ok(label, `bad labels: ${where}`);
      assert.ok(!(label[1]! in labels), `label twice: ${where}`);
      labels[label[1]!] = label[2]!;
      rest = rest.slice(label[0].length);
    }
    assert.match(valueText, /^(?:[+-]?(?:\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|NaN|[+-]Inf)$/, where);
    const key = `${name}{${Object.entries(labels).sort().map(([k, v]) => `${k}=${v}`)}}`;
    assert.ok(!series.has(key), `series twice: ${where}`);
    series.set(key, { name, labels, value: Number(valueText) });
  }
  return series;
}

/** The value of one series, 0 if absent. */
function value(series: Map<string, Sample>, name: string, labels: Record<string, string>): number {
  const key = `${name}{${Object.entries(labels).sort().map(([k, v]) => `${k}=${v}`)}}`;
  return series.get(key)?.value ?? 0;
}

async function scrape(url: string): Promise<Map<string, Sample>> {
  const response = await fetch(url);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const text = await response.text();
  const series = parseExposition(text);
  // A second, independent parser of the format (an npm package) reads the whole text too and
  // finds the same samples.
  const families: { metrics: unknown[] }[] = parsePrometheusText(text);
  assert.equal(families.reduce((sum, family) => sum + family.metrics.length, 0), series.size);
  return series;
}

async function status(url: string): Promise<number> {
  const response = await fetch(url);
  await response.body?.cancel();
  return response.status;
}

/** Reads lines until `last`, returning them all (the greeting included when asked). */
async function readUntil(client: LineClient, last: string): Promise<string[]> {
  const lines: string[] = [];
  for (;;) {
    const line = await client.readLine();
    lines.push(line);
    if (line === last) return lines;
  }
}

Deno.test("the strict parser refuses what is not the text format", () => {
  const good = '# HELP a_total A.\n# TYPE a_total counter\na_total{p_id="0"} 1\n';
  parseExposition(good);
  for (
    const bad of [
      "a_total 1\n", // no TYPE
      "# HELP a_total A.\n# TYPE a_total counter\na_total{p_id=0} 1\n", // unquoted
      "# HELP a_total A.\n# TYPE a_total counter\na_total 1\na_total 2\n", // twice
      "# HELP a A.\n# TYPE a counter\na 1\n", // counter without _total
      "# HELP a_total A.\n# TYPE a_total counter\na_total x\n", // not a number
      good.slice(0, -1), // no final newline
    ]
  ) {
    assert.throws(() => parseExposition(bad), Error, JSON.stringify(bad));
  }
});

Deno.test("formatMetrics writes every family with p_id and t_id labels, valid text", () => {
  const rows = THREAD_METRICS.map((_, i) => i + 1);
  const text = formatMetrics({
    threads: 2,
    children: [{ pId: 0, rss: 1000, serving: 2, rows: [...rows, ...rows.map((n) => n * 10)] }],
    supervisor: new Map([[0, { ...noCounts(), recycles: 3 }]]),
  });
  const series = parseExposition(text);
  assert.equal(value(series, "chatd_connections_accepted_total", { p_id: "0", t_id: "0" }), 1);
  assert.equal(value(series, "chatd_connections_accepted_total", { p_id: "0", t_id: "1" }), 10);
  assert.equal(
    value(series, "chatd_connections_refused_total", {
      p_id: "0",
      t_id: "1",
      reason: "server_full",
    }),
    20,
  );
  assert.equal(value(series, "chatd_recycles_total", { p_id: "0" }), 3);
  assert.equal(value(series, "chatd_process_resident_memory_bytes", { p_id: "0" }), 1000);
});

Deno.test("/metrics counts known traffic exactly; /healthz is 503 while a child is down", async () => {
  await using server = await TestServer.start([
    "--processes",
    "1",
    "--threads",
    "1",
    "--metrics-port",
    "0",
    "--rate",
    "0",
  ]);
  const [, base] = await server.waitForStdout(/^chatd metrics on (http:\/\/.+):\d+\/metrics$/)
    .then((match) => [match[0], match[0].slice("chatd metrics on ".length, -"/metrics".length)]);
  const metrics = `${base}/metrics`;
  // Healthy once the first heartbeat answer says every thread serves.
  await waitUntil(async () => (await status(`${base}/healthz`)) === 200, 5000, "200");
  assert.equal(await status(`${base}/nothing`), 404);
  const where = { p_id: "0", t_id: "0" };
  const before = await scrape(metrics);

  await using a = await server.connect();
  await using b = await server.connect();
  const linesA = [await a.readLine()];
  const linesB = [await b.readLine()];
  await a.send("JOIN ann");
  linesA.push(...await readUntil(a, "OK JOIN ann"));
  await b.send("JOIN bob");
  linesB.push(...await readUntil(b, "OK JOIN bob"));
  await a.send("CHAT bob hi"); // to bob: 1 delivery
  await a.send("CHAT * all"); // to the room: bob, 1 delivery
  await a.send("WHO");
  await a.send("NOPE");
  await a.send("PING endA");
  linesA.push(...await readUntil(a, "PONG endA"));
  await b.send("PING endB");
  linesB.push(...await readUntil(b, "PONG endB")); // JOINED? no: ann joined first
  const bytes = [...linesA, ...linesB]
    .reduce((sum, line) => sum + new TextEncoder().encode(line).length + 1, 0);
  const deliveries =
    linesA.concat(linesB).filter((line) => /^(FROM|ALL|JOINED|LEFT) /.test(line)).length;
  assert.equal(deliveries, 3, JSON.stringify({ linesA, linesB })); // JOINED bob, FROM, ALL

  const delta = (after: Map<string, Sample>, name: string, labels: Record<string, string>) =>
    value(after, name, labels) - value(before, name, labels);
  let after = before;
  await waitUntil(
    async () => {
      after = await scrape(metrics);
      // The counts come with the child's next heartbeat answer; the gauges are set at the
      // thread's own heartbeat, which may come a little later.
      return delta(after, "chatd_messages_received_total", { ...where, kind: "PING" }) === 2 &&
        value(after, "chatd_users_joined", where) === 2;
    },
    5000,
    "the traffic in /metrics (at the next heartbeats)",
  );
  assert.equal(delta(after, "chatd_connections_accepted_total", where), 2);
  assert.equal(value(after, "chatd_connections_open", where), 2);
  assert.equal(value(after, "chatd_users_joined", where), 2);
  const received = (kind: string) =>
    delta(after, "chatd_messages_received_total", { ...where, kind });
  assert.deepEqual(
    ["JOIN", "CHAT", "WHO", "PING", "LEAV", "HELP", "other"].map(received),
    [2, 2, 1, 2, 0, 0, 1],
  );
  assert.equal(delta(after, "chatd_deliveries_total", where), 3);
  assert.equal(delta(after, "chatd_bytes_out_total", where), bytes);
  assert.ok(value(after, "chatd_process_resident_memory_bytes", { p_id: "0" }) > 10_000_000);
  // A thread's isolate holds a few MiB of heap at least; its reserve is no less than its use.
  const heapUsed = value(after, "chatd_thread_heap_used_bytes", where);
  assert.ok(heapUsed > 1_000_000, String(heapUsed));
  assert.ok(value(after, "chatd_thread_heap_total_bytes", where) >= heapUsed);
  assert.equal(value(after, "chatd_threads_serving", { p_id: "0" }), 1);

  // A child killed: /healthz says 503 until its replacement serves, and the restart counts.
  const [pid] = server.childPids().get(0)!;
  Deno.kill(pid!, "SIGKILL");
  await waitUntil(async () => (await status(`${base}/healthz`)) === 503, 5000, "503");
  await waitUntil(async () => (await status(`${base}/healthz`)) === 200, 15_000, "200 again");
  const restarted = await scrape(metrics);
  assert.equal(
    value(restarted, "chatd_child_restarts_total", { p_id: "0", cause: "signal" }),
    1,
  );
  assert.equal(value(restarted, "chatd_watchdog_kills_total", { p_id: "0" }), 0);
});

Deno.test("a --metrics-port in use stops the start: exit 1, no child started", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (taken.addr as Deno.NetAddr).port;
  const output = await outputWithin(
    serverCommand(["--port", "0", "--metrics-port", String(port)]),
    15_000,
  );
  assert.equal(output.code, 1);
  const stderr = new TextDecoder().decode(output.stderr);
  assert.ok(
    stderr.includes(`chatd: Cannot bind 127.0.0.1:${port} for --metrics-port: address in use\n`),
    stderr,
  );
  assert.ok(!stderr.includes("child started"), stderr);
  assert.equal(new TextDecoder().decode(output.stdout), "");
});
