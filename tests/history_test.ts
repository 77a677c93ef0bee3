import assert from "node:assert/strict";
import { connectTo, type LineClient, TestServer } from "./test_util.ts";

const TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** Reads `HISTORY <room> ...` lines up to and without `HISTORY <room> END`. */
async function readHistory(client: LineClient, room: string): Promise<string[]> {
  const lines: string[] = [];
  for (
    let line = await client.readLine();
    line !== `HISTORY ${room} END`;
    line = await client.readLine()
  ) {
    assert.ok(line.startsWith(`HISTORY ${room} `), line);
    lines.push(line);
  }
  return lines;
}

/** Reads lines up to and with `line`, skipping the notices before it. */
async function skipTo(client: LineClient, line: string): Promise<void> {
  for (let got = await client.readLine(); got !== line; got = await client.readLine()) {
    assert.match(got, /^(JOINED|LEFT) /);
  }
}

/** Checks each line's shape and returns `sender text` of each, in order. */
function said(lines: string[], room: string): string[] {
  let last = "";
  return lines.map((line) => {
    const [verb, where, time, ...rest] = line.split(" ");
    assert.equal(`${verb} ${where}`, `HISTORY ${room}`);
    assert.match(time!, TIME);
    assert.ok(time! >= last, "times do not go back");
    last = time!;
    return rest.join(" ");
  });
}

/** One user per process: `JOIN name` answered `OK JOIN`, then the lobby's history. */
async function joinWithHistory(server: TestServer, pId: number, name: string) {
  const client = await connectTo(server, (where) => where.pId === pId);
  await client.send(`JOIN ${name}`);
  assert.equal(await client.readLine(), `OK JOIN ${name}`);
  return { client, lobby: await readHistory(client, "*") };
}

Deno.test("history: the last N lines of the lobby and of a room, the same for three readers on three processes", async (t) => {
  await using server = await TestServer.start([
    "--processes",
    "3",
    "--threads",
    "2",
    "--history",
    "5",
    "--rate",
    "0",
  ]);
  const clients: LineClient[] = [];
  try {
    const senders: LineClient[] = [];
    for (const pId of [0, 1, 2]) {
      const { client, lobby } = await joinWithHistory(server, pId, `s${pId}`);
      clients.push(client);
      senders.push(client);
      assert.deepEqual(lobby, [], "nothing said yet");
      await client.send("JOIN #h");
      assert.equal(await client.readLine(), "OK JOIN #h");
      assert.deepEqual(await readHistory(client, "#h"), []);
      assert.equal(
        (await client.readLine()).split(" ").slice(0, 3).join(" "),
        `USERS #h ${pId + 1}`,
      );
      for (const earlier of senders.slice(0, -1)) await skipTo(earlier, `JOINED #h s${pId}`);
    }
    // Three senders on three processes speak at once: 4 lines each in the lobby and in #h.
    await Promise.all(senders.map((sender, i) =>
      sender.send(
        [1, 2, 3, 4].map((n) => `CHAT * lobby ${i}.${n}\nCHAT #h room ${i}.${n}`).join("\n"),
      )
    ));
    // Every line reached every other sender, so the supervisor has had them all.
    for (const sender of senders) {
      const lines = await sender.readLines(2 * 4 * 2);
      assert.equal(lines.filter((line) => line.startsWith("ALL ")).length, 8);
      assert.equal(lines.filter((line) => line.startsWith("ROOM ")).length, 8);
    }
    const readers: { client: LineClient; lobby: string[] }[] = [];
    for (const pId of [0, 1, 2]) {
      const reader = await joinWithHistory(server, pId, `r${pId}`);
      clients.push(reader.client);
      readers.push(reader);
    }
    await t.step("the lobby's history, after JOIN <name>: identical for the three readers", () => {
      const [first, ...others] = readers.map((reader) => reader.lobby);
      for (const other of others) assert.deepEqual(other, first);
      const lines = said(first!, "*");
      assert.equal(lines.length, 5, "--history 5");
      for (const line of lines) assert.match(line, /^s(\d) lobby \1\.[1-4]$/);
      for (const i of [0, 1, 2]) {
        const own = lines.filter((line) => line.startsWith(`s${i} `));
        assert.deepEqual(own, [...own].sort(), `s${i}'s lines in the order sent`);
      }
    });
    await t.step(
      "a room's history, after JOIN #room: identical for the three readers",
      async () => {
        const histories: string[][] = [];
        for (const { client } of readers) {
          await client.send("JOIN #H");
          await skipTo(client, "OK JOIN #h");
          histories.push(await readHistory(client, "#h"));
          assert.match(await client.readLine(), /^USERS #h \d+ /);
        }
        const [first, ...others] = histories;
        for (const other of others) assert.deepEqual(other, first);
        const lines = said(first!, "#h");
        assert.equal(lines.length, 5);
        for (const line of lines) assert.match(line, /^s(\d) room \1\.[1-4]$/);
        // The lobby's lines are not in the room's history, and the other way round.
        assert.ok(!first!.some((line) => line.includes("lobby")));
      },
    );
    await t.step(
      "a room that emptied keeps its history; direct messages are not kept",
      async () => {
        for (const client of clients) {
          await client.send("PART #h");
        }
        for (const client of clients) await skipTo(client, "OK PART #h");
        await senders[0]!.send("CHAT s1 secret");
        await senders[0]!.send("JOIN #h");
        assert.equal(await senders[0]!.readLine(), "OK JOIN #h");
        const lines = said(await readHistory(senders[0]!, "#h"), "#h");
        assert.equal(lines.length, 5);
        assert.ok(!lines.some((line) => line.includes("secret")));
      },
    );
  } finally {
    for (const client of clients) client.close();
  }
});

Deno.test("--history 0: no HISTORY lines at all", async () => {
  await using server = await TestServer.start([
    "--processes",
    "1",
    "--threads",
    "1",
    "--history",
    "0",
  ]);
  await using client = await server.connect();
  await client.hello();
  await client.send("JOIN ann\nCHAT * hi\nJOIN #a\nPING x");
  assert.deepEqual(await client.readLines(4), [
    "OK JOIN ann",
    "OK JOIN #a",
    "USERS #a 1 ann",
    "PONG x",
  ]);
});
