import assert from "node:assert/strict";
import { type Config, parseInvocation } from "../src/config.ts";
import { ROOT, withTimeout } from "./test_util.ts";

const UNIT = `${ROOT}deploy/chatd.service`;

function which(command: string): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    try {
      if (Deno.statSync(`${dir}/${command}`).isFile) return `${dir}/${command}`;
    } catch {
      // Not there.
    }
  }
  return undefined;
}

const analyze = which("systemd-analyze");
const decoder = new TextDecoder();

async function run(args: string[]): Promise<{ code: number; out: string }> {
  const output = await withTimeout(
    new Deno.Command(analyze!, { args, stdin: "null", stdout: "piped", stderr: "piped" })
      .output(),
    30_000,
    `systemd-analyze ${args[0]}`,
  );
  return {
    code: output.code,
    out: decoder.decode(output.stdout) + decoder.decode(output.stderr),
  };
}

Deno.test({
  // systemd-analyze comes with Debian's systemd package (.ci/run installs it).
  name: "systemd-analyze verify accepts deploy/chatd.service without a warning" +
    (analyze ? "" : " (ignored: systemd-analyze is not installed)"),
  ignore: analyze === undefined,
  fn: async () => {
    // verify exits 0 even for unknown keys or bad values: its warnings name the file.
    const { code, out } = await run(["verify", UNIT]);
    assert.equal(code, 0, out);
    assert.equal(out.split("\n").filter((line) => line.includes("chatd.service")).join("\n"), "");
  },
});

Deno.test({
  name: "deploy/chatd.service is hardened: systemd-analyze security rates it at most 2.0" +
    (analyze ? "" : " (ignored: systemd-analyze is not installed)"),
  ignore: analyze === undefined,
  fn: async () => {
    const { out } = await run(["security", "--offline=yes", "--no-pager", UNIT]);
    const score = /Overall exposure level for chatd\.service: ([\d.]+)/.exec(out);
    assert.ok(score, out.slice(-500));
    assert.ok(Number(score[1]) <= 2, `exposure ${score[1]}`);
  },
});

Deno.test("deploy/chatd.service runs the binary with SIGUSR1 blocked, a private runtime dir, the example config", () => {
  const unit = Deno.readTextFileSync(UNIT);
  const setting = (key: string) =>
    unit.split("\n").filter((line) => line.startsWith(`${key}=`)).map((line) =>
      line.slice(key.length + 1)
    );
  assert.deepEqual(setting("ExecStart"), [
    "/usr/bin/env --block-signal=USR1 /usr/local/bin/chatd --config /etc/chatd/chatd.conf " +
    "--runtime-dir ${RUNTIME_DIRECTORY}",
  ]);
  assert.deepEqual(setting("DynamicUser"), ["yes"]);
  assert.deepEqual(setting("RuntimeDirectoryMode"), ["0700"]);
  assert.deepEqual(setting("ExecReload"), ["/bin/kill -HUP $MAINPID"]);
  assert.deepEqual(setting("Restart"), ["on-failure"]);
  assert.equal(setting("LimitNOFILE").length, 1);
  assert.match(unit, /^# .*net\.ipv4\.tcp_migrate_req=1/m);
});

Deno.test("deploy/chatd.conf is a config chatd accepts", () => {
  const invocation = parseInvocation(["--config", `${ROOT}deploy/chatd.conf`]);
  assert.equal(invocation.kind, "serve");
  const config = (invocation as { config: Config }).config;
  assert.deepEqual([config.host, config.port, config.logFormat], ["0.0.0.0", 4321, "json"]);
});
