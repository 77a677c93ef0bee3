import assert from "node:assert/strict";
import { runSoak } from "./soak.ts";

Deno.test("churn through recycles, a SIGKILL and a SIGINT loses nothing and leaves nothing", async () => {
  const report = await runSoak({ seconds: 5, churners: 20, stayers: 4, clientsPerProcess: 25 });
  const { problems, ...figures } = report;
  console.log(JSON.stringify(figures));
  assert.deepEqual(problems, []);
  assert.ok(report.recycles >= 2, `only ${report.recycles} recycles`);
  assert.ok(report.killedPid > 0, "no child was killed");
  assert.ok(report.delivered > 0);
});
