import assert from "node:assert/strict";
import { formatComparison, formatScaling } from "../bench/_report.ts";
import type { RunResult } from "../bench/_run.ts";

const NO_CPU = { ms: 0, cores: 0, usPerDelivery: 0 };

function run(fields: Partial<RunResult> & Pick<RunResult, "scenario" | "target" | "round">) {
  const result: RunResult = {
    kind: "traffic",
    config: "1x1",
    serverArgs: [],
    loadgens: 1,
    params: {},
    measuredMs: 1000,
    messagesPerSec: 0,
    deliveries: 0,
    deliveriesPerSec: 0,
    lost: 0,
    reordered: 0,
    duplicates: 0,
    errors: 0,
    errorSamples: [],
    unexpected: 0,
    closed: 0,
    serverCpu: NO_CPU,
    loadgenCpu: NO_CPU,
    otherCores: 0,
    serverPids: [],
    ...fields,
  };
  return result;
}

/** The cells of the row whose label is `label`. */
function cells(table: string, label: string): string[] {
  const line = table.split("\n").find((line) => line.startsWith(label + " "));
  assert.ok(line, `no row ${label}`);
  return line.slice(label.length).trim().split(/\s+/);
}

Deno.test("the side-by-side table shows cold and warm, and ratios of the warm figures", () => {
  const results = [
    run({
      scenario: "direct",
      target: "chatd",
      round: "cold",
      deliveriesPerSec: 100,
      config: "2x2",
    }),
    run({
      scenario: "direct",
      target: "chatd",
      round: "warm",
      deliveriesPerSec: 300,
      config: "2x2",
    }),
    run({ scenario: "direct", target: "reference", round: "cold", deliveriesPerSec: 350 }),
    run({ scenario: "direct", target: "reference", round: "warm", deliveriesPerSec: 400 }),
    run({ scenario: "direct", target: "ngircd", round: "cold", deliveriesPerSec: 190 }),
    run({ scenario: "direct", target: "ngircd", round: "warm", deliveriesPerSec: 200, lost: 2 }),
    run({ scenario: "scaling/direct", target: "chatd", round: "cold", deliveriesPerSec: 10 }),
    run({ scenario: "scaling/direct", target: "chatd", round: "warm", deliveriesPerSec: 320 }),
    run({
      scenario: "rate",
      target: "chatd",
      round: "warm",
      latencyUs: { p50: 900, p99: 3000, p999: 0, max: 0, count: 1, mean: 0 },
    }),
  ];
  const table = formatComparison(results);
  // chatd/ngircd = 300 / 200; chatd 1×1 (the scaling run) / reference = 320 / 400; 2 lost.
  assert.deepEqual(cells(table, "direct deliv/s"), [
    "100",
    "300",
    "350",
    "400",
    "190",
    "200",
    "1.50",
    "0.80",
    "2",
  ]);
  assert.deepEqual(cells(table, "rate p99 µs"), ["-", "3000", "-", "-", "-", "-", "-", "-", "0"]);
  assert.equal(formatComparison(results.filter((r) => r.target === "chatd")), "");
});

Deno.test("the scaling table shows chatd's warm figures by shape, cold in brackets", () => {
  const table = formatScaling([
    run({ scenario: "scaling/direct", target: "chatd", round: "cold", deliveriesPerSec: 5 }),
    run({ scenario: "scaling/direct", target: "chatd", round: "warm", deliveriesPerSec: 7 }),
    run({
      scenario: "scaling/direct",
      target: "chatd",
      round: "warm",
      config: "2x2",
      deliveriesPerSec: 9,
    }),
  ]);
  assert.deepEqual(cells(table, "chatd deliv/s by p×t"), ["1x1", "2x2"]);
  assert.deepEqual(cells(table, "scaling/direct"), ["7", "(5)", "9", "(-)"]);
});
