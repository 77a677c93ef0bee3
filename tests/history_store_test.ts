import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { HistoryStore } from "../src/history_store.ts";
import { join, type LineClient, serverCommand, TestServer, withTimeout } from "./test_util.ts";

const SERVER = ["--processes", "2", "--threads", "1", "--history", "4", "--log-level", "debug"];

/** `JOIN name`, then the lobby's history as `sender text`. */
async function joinReading(client: LineClient, name: string): Promise<string[]> {
  await client.send(`JOIN ${name}`);
  assert.equal(await client.readLine(), `OK JOIN ${name}`);
  return await readHistory(client, "*");
}

async function readHistory(client: LineClient, room: string): Promise<string[]> {
  const said: string[] = [];
  for (
    let line = await client.readLine();
    line !== `HISTORY ${room} END`;
    line = await client.readLine()
  ) {
    const [verb, where, _time, ...rest] = line.split(" ");
    assert.equal(`${verb} ${where}`, `HISTORY ${room}`);
    said.push(rest.join(" "));
  }
  return said;
}

async function withDataDir(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "chatd-data-" });
  try {
    await run(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Says `lines` in the lobby and in #keep as `name`, and waits until the store has `total` lines. */
async function say(server: TestServer, client: LineClient, lines: string[], total: number) {
  const from = server.logs.length;
  await client.send(lines.flatMap((text) => [`CHAT * ${text}`, `CHAT #keep ${text}`]).join("\n"));
  await server.waitForLog({ msg: "history written", total }, { from });
}

Deno.test("--data-dir: history survives a restart, the last N lines per room", async () => {
  await withDataDir(async (dir) => {
    {
      await using server = await TestServer.start([...SERVER, "--data-dir", dir]);
      await using ann = await server.connect();
      await ann.hello();
      assert.deepEqual(await joinReading(ann, "ann"), []);
      await ann.send("JOIN #Keep");
      assert.deepEqual(await ann.readLines(3), [
        "OK JOIN #Keep",
        "HISTORY #Keep END",
        "USERS #Keep 1 ann",
      ]);
      await say(server, ann, ["one", "two", "three", "four", "five"], 10);
    }
    await using server = await TestServer.start([...SERVER, "--data-dir", dir]);
    await using ben = await server.connect();
    await ben.hello();
    const expected = ["ann two", "ann three", "ann four", "ann five"];
    assert.deepEqual(await joinReading(ben, "ben"), expected);
    await ben.send("JOIN #KEEP");
    assert.equal(
      await ben.readLine(),
      "OK JOIN #KEEP",
      "the room is new: spelled as ben spells it",
    );
    assert.deepEqual(await readHistory(ben, "#KEEP"), expected);
    // Old lines beyond N are deleted, not only hidden.
    const db = new DatabaseSync(`${dir}/history.db`, { readOnly: true });
    try {
      const rows = db.prepare("SELECT room, COUNT(*) AS n FROM lines GROUP BY room ORDER BY room")
        .all();
      assert.deepEqual(rows.map((row) => `${row.room}=${row.n}`), ["#keep=4", "*=4"]);
    } finally {
      db.close();
    }
  });
});

Deno.test("--data-dir: after kill -9 of the whole server, at most the last batch is missing and the database opens", async () => {
  await withDataDir(async (dir) => {
    const args = [...SERVER, "--history", "20", "--data-dir", dir];
    {
      await using server = await TestServer.start(args);
      const ann = await server.connect();
      try {
        await ann.hello();
        await join(ann, "ann");
        await readHistory(ann, "*");
        await ann.send("JOIN #keep");
        await ann.readLines(3);
        await say(server, ann, ["a1", "a2", "a3"], 6);
        // These may still be in memory when the server dies.
        await ann.send(["b1", "b2", "b3"].map((text) => `CHAT * ${text}`).join("\n"));
        const pids = [server.process.pid, ...[...server.childPids().values()].flat()];
        for (const pid of pids) Deno.kill(pid, "SIGKILL");
        await withTimeout(server.status, 10_000, "killed server");
      } finally {
        ann.close();
      }
    }
    await using server = await TestServer.start(args);
    await using ben = await server.connect();
    await ben.hello();
    const lobby = await joinReading(ben, "ben");
    const all = ["ann a1", "ann a2", "ann a3", "ann b1", "ann b2", "ann b3"];
    assert.deepEqual(
      lobby,
      all.slice(0, lobby.length),
      "a prefix: only the last batch may be lost",
    );
    assert.ok(lobby.length >= 3, "what was written before the kill is there");
  });
});

Deno.test("--data-dir: a corrupt or unwritable database is a clear start-up error, exit code 2", async (t) => {
  const start = async (dir: string) => {
    const output = await withTimeout(
      serverCommand(["--port", "0", "--data-dir", dir]).output(),
      15_000,
      "chatd",
    );
    return { code: output.code, stderr: new TextDecoder().decode(output.stderr) };
  };
  await t.step("a file that is not a database", async () => {
    await withDataDir(async (dir) => {
      await Deno.writeTextFile(
        `${dir}/history.db`,
        "this is not an SQLite database, not at all. ".repeat(100),
      );
      const result = await start(dir);
      assert.equal(result.code, 2);
      assert.match(
        result.stderr,
        new RegExp(`^chatd: Cannot open history database ${dir}/history.db: .*not a database`),
      );
    });
  });
  await t.step("a data directory that cannot be made", async () => {
    await withDataDir(async (dir) => {
      await Deno.writeTextFile(`${dir}/file`, "");
      const result = await start(`${dir}/file/data`);
      assert.equal(result.code, 2);
      assert.match(
        result.stderr,
        new RegExp(`^chatd: Cannot open history database ${dir}/file/data/history.db: `),
      );
    });
  });
  await t.step("a damaged database", async () => {
    await withDataDir(async (dir) => {
      const store = HistoryStore.open(dir, { lines: 1000 });
      for (let i = 0; i < 2000; i++) {
        store.add("*", { time: i, sender: "al", text: `line ${i} `.repeat(20) });
      }
      store.close();
      // Overwrite pages in the middle of the file: the header is intact, the b-tree is not.
      const file = await Deno.open(`${dir}/history.db`, { write: true });
      try {
        await file.seek(8192, Deno.SeekMode.Start);
        await file.write(new Uint8Array(16384).fill(0x5a));
      } finally {
        file.close();
      }
      const result = await start(dir);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /^chatd: Cannot open history database .*: /);
    });
  });
});
