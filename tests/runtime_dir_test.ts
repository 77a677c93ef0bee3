import assert from "node:assert/strict";
import { makeRuntimeDir, removeRuntimeDir, RuntimeDirError } from "../src/runtime_dir.ts";
import {
  outputWithin,
  processGone,
  serverCommand,
  TestServer,
  waitUntil,
  withTimeout,
} from "./test_util.ts";

const isRoot = Deno.uid() === 0;

/** A private (0700) scratch directory holding a file chatd must never remove. */
function scratch(): { dir: string; precious: string } & Disposable {
  const dir = Deno.makeTempDirSync({ prefix: "chatd-test-" });
  const precious = `${dir}/precious.txt`;
  Deno.writeTextFileSync(precious, "keep me\n");
  return {
    dir,
    precious,
    [Symbol.dispose]: () => Deno.removeSync(dir, { recursive: true }),
  };
}

Deno.test("makeRuntimeDir makes a fresh 0700 subdirectory inside --runtime-dir", () => {
  using s = scratch();
  const dir = makeRuntimeDir(s.dir);
  assert.equal(dir.startsWith(`${s.dir}/chatd-`), true);
  assert.equal(Deno.lstatSync(dir).mode! & 0o777, 0o700);
  assert.notEqual(makeRuntimeDir(s.dir), dir);
});

Deno.test("makeRuntimeDir refuses an unsafe --runtime-dir", async (t) => {
  await t.step("group-writable", () => {
    using s = scratch();
    Deno.chmodSync(s.dir, 0o770);
    assert.throws(() => makeRuntimeDir(s.dir), RuntimeDirError, "group or other access");
  });
  await t.step("readable by others", () => {
    using s = scratch();
    Deno.chmodSync(s.dir, 0o704);
    assert.throws(() => makeRuntimeDir(s.dir), RuntimeDirError, "mode 0704");
  });
  await t.step("owned by another uid", () => {
    using s = scratch();
    const owner = Deno.lstatSync(s.dir).uid!;
    assert.throws(() => makeRuntimeDir(s.dir, { euid: owner + 1 }), RuntimeDirError, "belongs to");
  });
  await t.step("a symbolic link", () => {
    using s = scratch();
    Deno.mkdirSync(`${s.dir}/real`, { mode: 0o700 });
    Deno.symlinkSync(`${s.dir}/real`, `${s.dir}/link`);
    assert.throws(() => makeRuntimeDir(`${s.dir}/link`), RuntimeDirError, "symbolic link");
  });
});

Deno.test("removeRuntimeDir removes only socket files, never follows a symlink, keeps other files", () => {
  using s = scratch();
  const dir = makeRuntimeDir(s.dir);
  const socket = Deno.listenDatagram({ transport: "unixpacket", path: `${dir}/0-0-0-0.sock` });
  socket.close();
  Deno.writeTextFileSync(`${dir}/notes.sock`, "a plain file named like a socket");
  Deno.symlinkSync(s.precious, `${dir}/link.sock`);

  const removal = removeRuntimeDir(dir);

  assert.equal(removal.removed, 1);
  assert.deepEqual(removal.kept.sort(), ["link.sock", "notes.sock"]);
  assert.equal(removal.dirRemoved, false);
  assert.equal(Deno.readTextFileSync(s.precious), "keep me\n");
  assert.equal(Deno.readTextFileSync(`${dir}/notes.sock`), "a plain file named like a socket");

  Deno.removeSync(`${dir}/notes.sock`);
  Deno.removeSync(`${dir}/link.sock`);
  assert.equal(removeRuntimeDir(dir).dirRemoved, true);
  assert.throws(() => Deno.lstatSync(dir), Deno.errors.NotFound);
});

Deno.test("--runtime-dir with a precious file survives shutdown; chatd's own subdirectory is gone", async () => {
  using s = scratch();
  const server = await TestServer.start([
    "--processes",
    "2",
    "--threads",
    "2",
    "--runtime-dir",
    s.dir,
  ]);
  const runtimeDir = server.runtimeDir();
  assert.equal(runtimeDir.startsWith(`${s.dir}/chatd-`), true, runtimeDir);

  server.signal("SIGTERM");

  assert.equal((await withTimeout(server.status, 10_000, "exit")).code, 0);
  assert.equal(Deno.readTextFileSync(s.precious), "keep me\n");
  assert.deepEqual([...Deno.readDirSync(s.dir)].map((entry) => entry.name), ["precious.txt"]);
});

Deno.test("--runtime-dir with a precious file survives an orphaned child (supervisor SIGKILLed)", async () => {
  using s = scratch();
  await using server = await TestServer.start([
    "--processes",
    "2",
    "--threads",
    "1",
    "--runtime-dir",
    s.dir,
  ]);
  const pids = [...server.childPids().values()].flat();
  const runtimeDir = server.runtimeDir();

  server.signal("SIGKILL");

  await waitUntil(() => pids.every(processGone), 5000, "children gone");
  assert.equal(Deno.readTextFileSync(s.precious), "keep me\n");
  assert.throws(() => Deno.lstatSync(runtimeDir), Deno.errors.NotFound);
  assert.deepEqual([...Deno.readDirSync(s.dir)].map((entry) => entry.name), ["precious.txt"]);
});

async function refused(dir: string): Promise<{ code: number; stderr: string }> {
  const args = ["--port", "0", "--web-port", "0", "--runtime-dir", dir];
  const output = await outputWithin(serverCommand(args), 15_000);
  return { code: output.code, stderr: new TextDecoder().decode(output.stderr) };
}

Deno.test("a group-writable --runtime-dir is refused with exit 2 and nothing in it is touched", async () => {
  using s = scratch();
  Deno.chmodSync(s.dir, 0o775);
  const { code, stderr } = await refused(s.dir);
  assert.equal(code, 2);
  assert.match(
    stderr,
    /^chatd: Refusing --runtime-dir .*: allows group or other access \(mode 0775/m,
  );
  assert.deepEqual([...Deno.readDirSync(s.dir)].map((entry) => entry.name), ["precious.txt"]);
});

Deno.test({
  name: "a --runtime-dir owned by another user (nobody) is refused with exit 2",
  ignore: !isRoot,
  fn: async () => {
    using s = scratch();
    Deno.chownSync(s.dir, 65534, 65534);
    const { code, stderr } = await refused(s.dir);
    assert.equal(code, 2);
    assert.match(stderr, /^chatd: Refusing --runtime-dir .*: belongs to uid 65534/m);
    assert.deepEqual([...Deno.readDirSync(s.dir)].map((entry) => entry.name), ["precious.txt"]);
  },
});
