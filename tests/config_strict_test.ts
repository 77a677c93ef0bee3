import assert from "node:assert/strict";
import {
  CLIENT_HELP_TEXT,
  type Config,
  configFileArgs,
  DEFAULTS,
  HELP_TEXT,
  LIMITS,
  parseInvocation,
  UsageError,
} from "../src/config.ts";
import { outputWithin, ROOT, serverCommand, withTimeout } from "./test_util.ts";

const MAIN = `${ROOT}main.ts`;
const decoder = new TextDecoder();

function usageError(args: string[], env = {}): string {
  try {
    parseInvocation(args, env);
  } catch (error: unknown) {
    assert.ok(error instanceof UsageError, `not a UsageError: ${error}`);
    return error.message;
  }
  assert.fail(`accepted: ${args.join(" ")}`);
}

function serve(args: string[], readFile?: (path: string) => string): Config {
  const invocation = parseInvocation(args, { readFile });
  assert.equal(invocation.kind, "serve");
  return (invocation as { config: Config }).config;
}

Deno.test("numbers are strict: no leading zeros, no 1.0 for a whole number, no exponents", async (t) => {
  const cases: [string[], string][] = [
    [["--port", "08"], "Invalid --port 08: not a number (no leading zeros)"],
    [["--port", "1.0"], "Invalid --port 1.0: not a whole number"],
    [["--port", "1e3"], "Invalid --port 1e3: not a number"],
    [["--rate", "-1"], "Invalid --rate -1: must be between 0 and 1000000"],
    [["--grace", "-0.5"], "Invalid --grace -0.5: must be between 0 and 3600"],
    [["--burst", "007"], "Invalid --burst 007: not a number (no leading zeros)"],
    [["--watchdog", "1e1"], "Invalid --watchdog 1e1: not a number"],
    [["--threads", "2.0"], "Invalid --threads 2.0: not a whole number"],
  ];
  for (const [args, message] of cases) {
    await t.step(args.join(" "), () => assert.equal(usageError(args), message));
  }
  await t.step("plain numbers still parse", () => {
    const config = serve(["--port", "0", "--grace", "0.5", "--rate", "0", "--watchdog", "10"]);
    assert.deepEqual([config.port, config.grace, config.rate, config.watchdog], [0, 0.5, 0, 10]);
  });
});

Deno.test("chatd --port 08 prints a plain message and exits 2", async () => {
  const output = await outputWithin(serverCommand(["--port", "08"]), 15_000);
  assert.equal(output.code, 2);
  assert.equal(
    decoder.decode(output.stderr),
    "chatd: Invalid --port 08: not a number (no leading zeros)\n" +
      "Try 'chatd --help' for the options.\n",
  );
});

Deno.test("deno run main.ts --help without any permission prints the help", async () => {
  for (const flag of ["--help", "-h"]) {
    const output = await withTimeout(
      new Deno.Command(Deno.execPath(), {
        args: ["run", "--quiet", "--no-prompt", MAIN, flag],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output(),
      15_000,
      "help",
    );
    assert.equal(decoder.decode(output.stderr), "");
    assert.equal(output.code, 0);
    assert.equal(decoder.decode(output.stdout), HELP_TEXT);
  }
});

Deno.test("chatd client --help prints the client's help, not the server's", () => {
  for (const flag of ["--help", "-h"]) {
    assert.deepEqual(parseInvocation(["client", flag]), { kind: "help", text: CLIENT_HELP_TEXT });
  }
  assert.ok(CLIENT_HELP_TEXT.startsWith("chatd client: "));
  assert.ok(!CLIENT_HELP_TEXT.includes("--processes"));
});

Deno.test("--help fits 80 columns and shows every flag, numeric ones with range and default", () => {
  for (const text of [HELP_TEXT, CLIENT_HELP_TEXT]) {
    for (const line of text.split("\n")) assert.ok(line.length <= 80, `too long: ${line}`);
  }
  const flags = [
    ...Object.keys(LIMITS),
    "host",
    "log-level",
    "log-format",
    "runtime-dir",
    "config",
    "no-web",
    "web-origin",
    "tls-cert",
    "tls-key",
    "help",
    "version",
  ];
  for (const flag of flags) assert.match(HELP_TEXT, new RegExp(`\\n  (-., )?--${flag} `));
  const defaults: Record<string, number> = {
    port: DEFAULTS.port,
    "max-send-queue": DEFAULTS.maxSendQueue,
    "join-timeout": DEFAULTS.joinTimeout,
    watchdog: DEFAULTS.watchdog,
  };
  for (const [flag, [min, max]] of Object.entries(LIMITS)) {
    const at = HELP_TEXT.indexOf(`--${flag} `);
    const next = HELP_TEXT.indexOf("\n  --", at + 1);
    const entry = HELP_TEXT.slice(at, next).replace(/\s+/g, " ");
    assert.ok(entry.includes(`(${min}-${max}, default `), `--${flag} lacks its range: ${entry}`);
    if (flag in defaults) assert.ok(entry.includes(`default ${defaults[flag]})`), entry);
  }
});

Deno.test("the README's Options table lists every flag of --help", () => {
  const readme = Deno.readTextFileSync(`${ROOT}README.md`);
  const table = readme.slice(readme.indexOf("## Options"), readme.indexOf("## Limits"));
  for (const match of HELP_TEXT.matchAll(/\n {2}(?:-., )?(--[a-z-]+)/g)) {
    const flag = match[1]!;
    if (flag === "--help" || flag === "--version") continue;
    assert.ok(table.includes(`| \`${flag}`), `README Options table lacks ${flag}`);
  }
});

Deno.test("--log-level warn is warning; --log-format is text or json", () => {
  assert.equal(serve(["--log-level", "warn"]).logLevel, "warning");
  assert.equal(serve(["--log-format", "json"]).logFormat, "json");
  assert.equal(serve([]).logFormat, "text");
  assert.equal(usageError(["--log-format", "xml"]), "Invalid --log-format xml: use text or json");
});

Deno.test("--config reads key = value lines; the command line wins; bad lines are refused", async (t) => {
  const file =
    '# chatd\n\nport = 4000\nlog-level = debug\nrate=5\nruntime-dir = "/srv/chatd run"\n';
  const read = (path: string) => {
    assert.equal(path, "/etc/chatd.conf");
    return file;
  };
  await t.step("the file's settings", () => {
    assert.deepEqual(configFileArgs("/etc/chatd.conf", read), [
      "--port=4000",
      "--log-level=debug",
      "--rate=5",
      "--runtime-dir=/srv/chatd run",
    ]);
    const config = serve(["--config", "/etc/chatd.conf"], read);
    assert.deepEqual(
      [config.port, config.logLevel, config.rate, config.runtimeDir, config.configFile],
      [4000, "debug", 5, "/srv/chatd run", "/etc/chatd.conf"],
    );
  });
  await t.step("a flag on the command line wins over the file", () => {
    const config = serve(["--port", "5000", "--config", "/etc/chatd.conf"], read);
    assert.equal(config.port, 5000);
    assert.equal(config.logLevel, "debug");
  });
  const bad: [string, string][] = [
    ["prot = 1\n", "/c:1: unknown setting 'prot'"],
    ["\nconfig = /other\n", "/c:2: unknown setting 'config'"],
    ["p-id = 1\n", "/c:1: unknown setting 'p-id'"],
    ["just words\n", '/c:1: expected "key = value", got: just words'],
    ["port = 08\n", "Invalid --port 08: not a number (no leading zeros)"],
  ];
  for (const [text, message] of bad) {
    await t.step(JSON.stringify(text), () => {
      assert.equal(usageError(["--config", "/c"], { readFile: () => text }), message);
    });
  }
  await t.step("a file that cannot be read", () => {
    const message = usageError(["--config", "/nonexistent/chatd.conf"]);
    assert.match(message, /^Cannot read --config \/nonexistent\/chatd\.conf: /);
  });
});
