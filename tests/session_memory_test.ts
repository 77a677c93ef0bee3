import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { outputWithin } from "./test_util.ts";

const SCRIPT = fileURLToPath(new URL("./_session_memory.ts", import.meta.url));
/**
 * chatd's own heap per idle joined TCP client (session, output queue, transport, splitter,
 * rate limit, the suspended read loop; Deno's socket left out). 2 125–2 142 bytes before
 * issue 12's cuts (a greeting and three closures per client, among others), 1 476–1 483
 * after; the bound leaves room for a field or two, not for a closure or a string per client.
 */
const MAX_BYTES_PER_SESSION = 1750;

Deno.test("an idle joined TCP client costs chatd at most 1750 bytes of heap", async () => {
  const command = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--v8-flags=--expose-gc", SCRIPT, "2000"],
    stdout: "piped",
    stderr: "piped",
  });
  const output = await outputWithin(command, 60_000);
  const text = new TextDecoder().decode(output.stdout);
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  const match = /^BYTES_PER_SESSION (\d+)$/m.exec(text);
  assert.ok(match, `no figure in ${JSON.stringify(text)}`);
  const bytes = Number(match[1]);
  assert.ok(bytes <= MAX_BYTES_PER_SESSION, `${bytes} bytes per idle joined session`);
});
