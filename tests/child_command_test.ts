import assert from "node:assert/strict";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  CHILD_DENO_FLAGS,
  CHILD_V8_FLAGS,
  childCommand,
  currentRuntime,
  type Runtime,
} from "../src/child_command.ts";
import { type Config, configToArgs, DEFAULTS, parseInvocation } from "../src/config.ts";

const CONFIG: Config = {
  ...DEFAULTS,
  port: 40123,
  processes: 3,
  threads: 4,
  runtimeDir: "/tmp/chatd-test",
};

/** What the child's own command line says after `__child --p-id P --instance I`. */
const CHILD_FLAGS = configToArgs(CONFIG);

const DENO_RUN: Runtime = {
  execPath: "/usr/local/bin/deno",
  standalone: false,
  mainModule: "file:///srv/chatd/main.ts",
  configFile: "/srv/chatd/deno.json",
};

const COMPILED: Runtime = {
  execPath: "/usr/local/bin/chatd",
  standalone: true,
  mainModule: "file:///tmp/deno-compile-chatd/main.ts",
};

Deno.test("a child needs exactly these Deno flags", () => {
  assert.deepEqual(CHILD_DENO_FLAGS, [
    "--unstable-net",
    "--allow-net",
    "--allow-read",
    "--allow-write",
    "--allow-env",
  ]);
});

Deno.test("under deno run, the child command is deno run with the config, flags and main module", () => {
  assert.deepEqual(childCommand(DENO_RUN, CONFIG, 2, 7), {
    command: "/usr/local/bin/deno",
    args: [
      "run",
      "--quiet",
      "--config",
      "/srv/chatd/deno.json",
      `--v8-flags=${CHILD_V8_FLAGS}`,
      "--unstable-net",
      "--allow-net",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "file:///srv/chatd/main.ts",
      "__child",
      "--p-id",
      "2",
      "--instance",
      "7",
      ...CHILD_FLAGS,
    ],
  });
});

Deno.test("under deno run without a deno.json, the child command has no --config", async (t) => {
  const expected = {
    command: "/usr/local/bin/deno",
    args: [
      "run",
      "--quiet",
      `--v8-flags=${CHILD_V8_FLAGS}`,
      "--unstable-net",
      "--allow-net",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "file:///srv/chatd/main.ts",
      "__child",
      "--p-id",
      "0",
      "--instance",
      "1",
      ...CHILD_FLAGS,
    ],
  };
  await t.step("configFile left out", () => {
    const { configFile: _, ...runtime } = DENO_RUN;
    assert.deepEqual(childCommand(runtime, CONFIG, 0, 1), expected);
  });
  await t.step("configFile empty", () => {
    assert.deepEqual(childCommand({ ...DENO_RUN, configFile: "" }, CONFIG, 0, 1), expected);
  });
});

Deno.test("inside a compiled binary, the child command is the binary itself with no Deno flags", () => {
  const command = childCommand(COMPILED, CONFIG, 1, 42);
  assert.deepEqual(command, {
    command: "/usr/local/bin/chatd",
    args: ["__child", "--p-id", "1", "--instance", "42", ...CHILD_FLAGS],
  });
  // A deno.json means nothing to a compiled binary.
  assert.deepEqual(
    childCommand({ ...COMPILED, configFile: "/srv/chatd/deno.json" }, CONFIG, 1, 42),
    command,
  );
});

Deno.test("the child's own part of the command line parses back to its config, p-id and instance", async (t) => {
  const config: Config = { ...CONFIG, grace: 2.5, logLevel: "debug", clientsPerProcess: 10 };
  for (const [what, runtime] of [["deno run", DENO_RUN], ["compiled", COMPILED]] as const) {
    await t.step(what, () => {
      const { args } = childCommand(runtime, config, 2, 99);
      const own = args.slice(args.indexOf("__child"));
      assert.deepEqual(own, [
        "__child",
        "--p-id",
        "2",
        "--instance",
        "99",
        ...configToArgs(config),
      ]);
      assert.deepEqual(parseInvocation(own), { kind: "child", config, pId: 2, instance: 99 });
    });
  }
});

Deno.test("currentRuntime describes this deno run process", () => {
  const runtime = currentRuntime();
  assert.equal(runtime.standalone, false);
  assert.equal(runtime.execPath, Deno.execPath());
  assert.equal(runtime.mainModule, Deno.mainModule);
  assert.equal(runtime.configFile, fileURLToPath(new URL("../deno.json", import.meta.url)));
  assert.ok(Deno.statSync(runtime.configFile!).isFile);
});

// `URL.pathname` stays percent-encoded ("/srv/my%20chat/deno.json"): taken from it, the
// deno.json path of a checkout whose path holds a space or a non-ASCII letter would not exist,
// and every child would be started with a --config that does not exist.
Deno.test("currentRuntime finds deno.json in a directory whose path holds a space", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chatd test é " });
  try {
    await Deno.mkdir(`${dir}/src`);
    await Deno.writeTextFile(`${dir}/deno.json`, "{}\n");
    // The module under test, unchanged, with a stand-in for the config module it imports.
    await Deno.copyFile(
      new URL("../src/child_command.ts", import.meta.url),
      `${dir}/src/child_command.ts`,
    );
    await Deno.writeTextFile(
      `${dir}/src/config.ts`,
      "export function configToArgs() { return []; }\n",
    );
    const copy: typeof import("../src/child_command.ts") = await import(
      pathToFileURL(`${dir}/src/child_command.ts`).href
    );
    const { configFile } = copy.currentRuntime();
    assert.equal(configFile, `${dir}/deno.json`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
