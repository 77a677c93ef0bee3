import assert from "node:assert/strict";
import { ROOT, TestServer, withTimeout } from "./test_util.ts";

// deno compile needs denort, which it downloads from Deno's release server unless DENORT_BIN
// names a local copy (or an earlier download is cached). Only when none of these works is the
// test ignored, with the reason; any other failure of compile.sh fails it. Nothing is compiled
// at module load: a run with --filter for another test does not pay for it.
const DENORT_URL =
  `https://dl.deno.land/release/v${Deno.version.deno}/denort-${Deno.build.target}.zip`;
const unavailable = await denortUnavailable();

/** Why denort cannot be had here, or undefined when it can. */
async function denortUnavailable(): Promise<string | undefined> {
  if (Deno.env.get("DENORT_BIN")) return undefined;
  const denoDir = Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`;
  const cached = `${denoDir}/dl/release/v${Deno.version.deno}/denort-${Deno.build.target}.zip`;
  try {
    Deno.statSync(cached);
    return undefined;
  } catch {
    // Not cached: it must be downloaded.
  }
  try {
    const response = await fetch(DENORT_URL, {
      method: "HEAD",
      signal: AbortSignal.timeout(10_000),
    });
    await response.body?.cancel();
    return undefined;
  } catch (error: unknown) {
    return `no DENORT_BIN, and ${DENORT_URL} cannot be downloaded: ${error}`;
  }
}

function plainStderr(stderr: Uint8Array): string {
  // deno prints ANSI colours.
  // deno-lint-ignore no-control-regex -- ANSI colour codes are what is being removed
  return new TextDecoder().decode(stderr).replace(/\x1b\[[0-9;]*m/g, "");
}

Deno.test({
  name: unavailable === undefined
    ? "compile.sh builds a chatd binary that starts, serves and shuts down"
    : `compile.sh builds a chatd binary (ignored: ${unavailable})`,
  ignore: unavailable !== undefined,
  async fn() {
    const outputDir = await Deno.makeTempDir({ prefix: "chatd-compile-" });
    try {
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
      assert.ok(compiled.success, `compile.sh failed:\n${plainStderr(compiled.stderr)}`);
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
