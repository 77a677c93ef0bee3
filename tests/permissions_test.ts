import assert from "node:assert/strict";
import { SERVER_DENO_FLAGS } from "../src/child_command.ts";
import { ROOT } from "./test_util.ts";

/** The `--unstable-*` and `--allow-*` flags in `text`, sorted. */
function flagsIn(text: string): string[] {
  return [...text.matchAll(/--(?:allow|unstable)-[a-z]+/g)].map((match) => match[0]).sort();
}

Deno.test("deno.json's start task and compile.sh grant exactly the server's flags", () => {
  const expected = [...SERVER_DENO_FLAGS].sort();
  const config = JSON.parse(Deno.readTextFileSync(`${ROOT}/deno.json`));
  assert.deepEqual(flagsIn(config.tasks.start), expected, "deno.json tasks.start");
  const compile = Deno.readTextFileSync(`${ROOT}/compile.sh`)
    .split("\n").filter((line) => !line.trimStart().startsWith("#")).join("\n");
  assert.deepEqual(flagsIn(compile), expected, "compile.sh");
});
