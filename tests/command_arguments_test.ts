import assert from "node:assert/strict";
import { dispatch, type Session } from "../src/commands.ts";
import { echoed, MAX_ECHO_LENGTH, Reply } from "../src/protocol.ts";
import { join, TestServer } from "./test_util.ts";

/** A session that records replies and refuses anything else a handler might ask. */
function recorder(name?: string): Session & { replies: string[] } {
  const replies: string[] = [];
  return {
    name,
    replies,
    reply: (line) => void replies.push(line),
    join: (joined) => Promise.resolve(void replies.push(`OK JOIN ${joined}\n`)),
    direct: () => false,
    room: () => assert.fail("room() called"),
    users: () => [],
    leave: () => assert.fail("leave() called"),
    fault: () => false,
    enterRoom: () => assert.fail("enterRoom() called"),
    partRoom: () => assert.fail("partRoom() called"),
    roomChat: () => assert.fail("roomChat() called"),
    roomWho: () => assert.fail("roomWho() called"),
    roomList: () => assert.fail("roomList() called"),
  };
}

const BAD_TEXT = "ERR BAD_TEXT control characters are not allowed\n";
const EVIL = [
  "\x1b[31m",
  "a\x00b",
  "ding\x07",
  "cr\rx",
  "csi\u009b31m",
  "del\x7f",
  "\x1b]0;title\x07",
];

Deno.test("every command but JOIN refuses control characters in its argument with BAD_TEXT", async (t) => {
  for (const evil of EVIL) {
    await t.step(JSON.stringify(evil), () => {
      for (const line of [`PING ${evil}`, `CHAT ${evil} hi`, `WHO ${evil}`, `HELP ${evil}`]) {
        const session = recorder("alice");
        dispatch(session, line);
        assert.deepEqual(session.replies, [BAD_TEXT], line);
      }
      const session = recorder();
      dispatch(session, `JOIN ${evil}`);
      assert.equal(session.replies[0]?.startsWith("ERR BAD_NAME "), true);
    });
  }
});

Deno.test("no reply echoes more than 128 characters of what the client sent", () => {
  const long = "x".repeat(5000);
  const pong = recorder();
  dispatch(pong, `PING ${long}`);
  assert.deepEqual(pong.replies, [`PONG ${"x".repeat(MAX_ECHO_LENGTH)}\n`]);
  const chat = recorder("alice");
  dispatch(chat, `CHAT ${long} hi`);
  assert.deepEqual(chat.replies, [`ERR NO_SUCH_USER ${"x".repeat(MAX_ECHO_LENGTH)}\n`]);
  const verb = recorder();
  dispatch(verb, long);
  assert.deepEqual(verb.replies, [`ERR BAD_COMMAND ${"X".repeat(32)}\n`]);
  // A short token is echoed as sent, TAB included.
  const tab = recorder();
  dispatch(tab, "PING a\tb 😀");
  assert.deepEqual(tab.replies, ["PONG a\tb 😀\n"]);
});

Deno.test("echoed cuts at a code point, never inside a surrogate pair, and hides controls", () => {
  const emoji = "😀".repeat(200);
  assert.equal(echoed(emoji), "😀".repeat(MAX_ECHO_LENGTH));
  assert.equal(echoed("\x1b[31m"), "?[31m");
  assert.equal(Reply.pong("\x07"), "PONG ?\n");
  assert.equal(Reply.error("NO_SUCH_USER", "\x1b]0;t\x07"), "ERR NO_SUCH_USER ?]0;t?\n");
});

Deno.test("over TCP: PING ESC[31m and CHAT ESC]0;title BEL echo no escape; long names are cut", async () => {
  await using server = await TestServer.start(["--processes", "1", "--threads", "1"]);
  await using client = await server.connect();
  await client.hello();
  await client.send("PING \x1b[31m");
  assert.equal(await client.readLine(), BAD_TEXT.trimEnd());
  await join(client, "alice");
  await client.send("CHAT \x1b]0;title\x07 hi");
  assert.equal(await client.readLine(), BAD_TEXT.trimEnd());
  await client.send(`CHAT ${"n".repeat(3000)} hi`);
  assert.equal(await client.readLine(), `ERR NO_SUCH_USER ${"n".repeat(128)}`);
  await client.send(`PING ${"t".repeat(3000)}`);
  assert.equal(await client.readLine(), `PONG ${"t".repeat(128)}`);
});
