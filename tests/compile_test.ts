import assert from "node:assert/strict";
import { ROOT, TestServer, withTimeout } from "./test_util.ts";

// deno compile needs denort, which it downloads from Deno's release server unless DENORT_BIN
// names a local copy. Where neither works the test reports itself skipped, with the reason.
const outputDir = await Deno.makeTempDir({ prefix: "chatd-compile-" });
const binary = `${outputDir}/chatd`;
const compiled = await withTimeout(
  new Deno.Command("bash", {
    args: [`${ROOT}/compile.sh`],
    env: { OUTPUT: binary },
    stdout: "piped",
    stderr: "piped",
  }).output(),
  240_000,
  "compile.sh",
);
const reason = compiled.success ? "" : firstError(new TextDecoder().decode(compiled.stderr));

function firstError(stderr: string): string {
  // deno prints ANSI colours; keep the plain words of the first error and its cause.
  // deno-lint-ignore no-control-regex -- ANSI colour codes are what is being removed
  const plain = stderr.replace(/\x1b\[[0-9;]*m/g, "");
  const cause = /\d+: (.*(?:error|Error).*)$/m.exec(plain)?.[1];
  const error = /^error: (.*)$/m.exec(plain)?.[1] ?? plain.trim().split("\n")[0];
  return cause ? `${error}: ${cause}` : error ?? "compile failed";
}

Deno.test({
  name: compiled.success
    ? "compile.sh builds a chatd binary that starts, serves and shuts down"
    : `compile.sh builds a chatd binary (skipped: compiling is not possible here: ${reason})`,
  ignore: !compiled.success,
  async fn() {
    try {
      await using server = await TestServer.start(["--processes", "2", "--threads", "2"], {
        binary,
      });
      await using client = await server.connect();
      await client.hello();
      await client.send("JOIN compiled");
      assert.equal(await client.readLine(), "OK JOIN compiled");
      server.signal("SIGINT");
      assert.equal(await client.readLine(), "BYE shutting down");
      assert.equal((await withTimeout(server.status, 10_000, "binary exit")).code, 0);
    } finally {
      await Deno.remove(outputDir, { recursive: true });
    }
  },
});

if (!compiled.success) await Deno.remove(outputDir, { recursive: true });
