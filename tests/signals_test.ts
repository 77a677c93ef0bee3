import assert from "node:assert/strict";
import { sigusr1Blocked } from "../src/inspector_guard.ts";
import { outputWithin, TestServer, waitUntil } from "./test_util.ts";

const SIGUSR1_BIT = 1n << 9n;

function statusField(pid: number, field: string): bigint {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const match = new RegExp(`^${field}:\\s*([0-9a-f]+)$`, "m").exec(status);
  return match ? BigInt(`0x${match[1]}`) : 0n;
}

/** The socket inodes of TCP listeners on 127.0.0.1:9229 (or any address, port 9229). */
function inspectorListenerInodes(): Set<string> {
  const inodes = new Set<string>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = Deno.readTextFileSync(file);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      // local_address is HEXIP:HEXPORT; state 0A is LISTEN; field 9 is the inode.
      if (fields[1]?.endsWith(":2405") && fields[3] === "0A") inodes.add(fields[9]!);
    }
  }
  return inodes;
}

/** True when process `pid` holds a listener on port 9229. */
function listensOn9229(pid: number): boolean {
  const inodes = inspectorListenerInodes();
  for (const entry of Deno.readDirSync(`/proc/${pid}/fd`)) {
    try {
      const target = Deno.readLinkSync(`/proc/${pid}/fd/${entry.name}`);
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode !== undefined && inodes.has(inode)) return true;
    } catch {
      // Closed meanwhile.
    }
  }
  return false;
}

async function connectRefused(port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
    return false;
  } catch (error: unknown) {
    if (error instanceof Deno.errors.ConnectionRefused) return true;
    throw error;
  }
}

Deno.test("sigusr1Blocked reads bit 9 of SigBlk, in every thread", () => {
  assert.equal(sigusr1Blocked("Name:\tdeno\nSigBlk:\t0000000000000200\n"), true);
  assert.equal(sigusr1Blocked("SigBlk:\t0000000000000000\n"), false);
  assert.equal(sigusr1Blocked("SigBlk:\tfffffffffffffdff\n"), false);
  assert.equal(sigusr1Blocked("no such field"), false);
  // The main thread blocks everything while it spawns; a tokio thread does not: unblocked.
  assert.equal(
    sigusr1Blocked("Name:\tdeno\nSigBlk:\tfffffffffffbfeff\nName:\ttokio\nSigBlk:\t0\n"),
    false,
  );
  assert.equal(sigusr1Blocked("SigBlk:\tfffffffffffbfeff\nSigBlk:\t0000000000000200\n"), true);
});

Deno.test("SIGUSR1 to every chatd process opens no inspector on 9229; the server still serves", async () => {
  await using server = await TestServer.start(["--processes", "2", "--threads", "2"]);
  const pids = [server.process.pid, ...[...server.childPids().values()].flat()];
  assert.equal(pids.length, 3);
  const freeBefore = await connectRefused(9229);
  // Deno installs its SIGUSR1 handler 500 ms after a process starts: wait until every process
  // has one (SigCgt), so that the signal below meets the handler that would open the inspector.
  await waitUntil(
    () => pids.every((pid) => (statusField(pid, "SigCgt") & SIGUSR1_BIT) !== 0n),
    10_000,
    "Deno's SIGUSR1 handler installed in every process",
  );

  for (const pid of pids) Deno.kill(pid, "SIGUSR1");

  // Blocked, the signal stays pending in each process, never handled.
  for (const pid of pids) {
    const pending = statusField(pid, "ShdPnd") | statusField(pid, "SigPnd");
    assert.notEqual(pending & SIGUSR1_BIT, 0n, `SIGUSR1 not pending in ${pid}`);
    assert.equal(listensOn9229(pid), false, `process ${pid} listens on 9229`);
  }
  if (freeBefore) assert.equal(await connectRefused(9229), true, "something listens on 9229");
  await using client = await server.connect();
  await client.hello();
  await client.send("PING after SIGUSR1");
  assert.equal(await client.readLine(), "PONG after SIGUSR1");
});

Deno.test("under deno run with SIGUSR1 not blocked, chatd refuses to serve (exit 2)", async () => {
  // What serverCommand runs, without its `env --block-signal=USR1` in front.
  const output = await outputWithin(
    new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        "--allow-all",
        new URL("../main.ts", import.meta.url).pathname,
        "--port",
        "0",
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }),
    15_000,
  );
  assert.equal(output.code, 2);
  assert.equal(new TextDecoder().decode(output.stdout), "");
  assert.match(
    new TextDecoder().decode(output.stderr),
    /^chatd: Refusing to serve with SIGUSR1 unblocked/,
  );
});
