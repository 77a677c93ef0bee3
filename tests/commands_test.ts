import assert from "node:assert/strict";
import { COMMANDS, dispatch, hasControlCharacter, type Session } from "../src/commands.ts";

/** A session that records what the handlers asked of it. */
class FakeSession implements Session {
  name: string | undefined;
  readonly replies: string[] = [];
  readonly joins: string[] = [];
  readonly directs: [string, string][] = [];
  readonly rooms: string[] = [];
  leaves = 0;
  /** Room calls, as `VERB #room [text]`. */
  readonly roomCalls: string[] = [];
  /** Users `direct` can deliver to, compared case-insensitively as the replica does. */
  readonly known: string[];

  constructor(options: { name?: string; known?: string[] } = {}) {
    this.name = options.name;
    this.known = options.known ?? [];
  }

  reply(line: string): void {
    this.replies.push(line);
  }

  join(name: string): Promise<void> {
    this.joins.push(name);
    this.reply(`OK JOIN ${name}\n`);
    return Promise.resolve();
  }

  direct(to: string, text: string): boolean {
    if (!this.known.some((name) => name.toLowerCase() === to.toLowerCase())) return false;
    this.directs.push([to, text]);
    return true;
  }

  room(text: string): void {
    this.rooms.push(text);
  }

  users(): readonly string[] {
    return this.known;
  }

  leave(): void {
    this.leaves++;
  }

  enterRoom(room: string): void {
    this.roomCalls.push(`JOIN ${room}`);
  }

  partRoom(room: string): void {
    this.roomCalls.push(`PART ${room}`);
  }

  roomChat(room: string, text: string): void {
    this.roomCalls.push(`CHAT ${room} ${text}`);
  }

  roomWho(room: string): void {
    this.roomCalls.push(`WHO ${room}`);
  }

  roomList(): void {
    this.roomCalls.push("ROOMS");
  }

  /** Fault injection is off, as it is unless a test server asks for it. */
  fault(_what: string): boolean {
    return false;
  }

  /** Everything the session saw besides replies; empty when the handler only replied. */
  get effects(): unknown[] {
    return [
      ...this.joins,
      ...this.directs,
      ...this.rooms,
      ...this.roomCalls,
      ...(this.leaves ? ["leave"] : []),
    ];
  }
}

/** Dispatches `line` on `session`, waiting for a handler that returns a promise. */
async function run(session: FakeSession, line: string): Promise<FakeSession> {
  await dispatch(session, line);
  return session;
}

/** The replies to `line` on a fresh session, joined as `name` when given. */
async function replies(line: string, name?: string): Promise<string[]> {
  const session = await run(new FakeSession({ name, known: ["alice", "Bob"] }), line);
  return session.replies;
}

const USAGE = "ERR BAD_COMMAND usage: CHAT <name> <text>\n";
const BAD_TEXT = "ERR BAD_TEXT control characters are not allowed\n";

Deno.test("the command table has the six documented verbs, and of them only CHAT needs a name", () => {
  for (const verb of ["PING", "HELP", "JOIN", "WHO", "LEAV", "CHAT"]) {
    assert.equal(COMMANDS[verb]?.needsJoin, verb === "CHAT", verb);
  }
});

Deno.test("PING answers PONG with its token", async () => {
  assert.deepEqual(await replies("PING"), ["PONG\n"]);
  assert.deepEqual(await replies("PING 12345"), ["PONG 12345\n"]);
  assert.deepEqual(await replies("PING 12345 abc"), ["PONG 12345 abc\n"]);
  assert.deepEqual(await replies("PING 12345", "alice"), ["PONG 12345\n"]);
});

Deno.test("HELP lists the commands one a line, ending with HELP END", async () => {
  assert.deepEqual(await replies("HELP"), [
    "HELP JOIN <name>          claim a name: 1-32 of A-Z a-z 0-9 _ -\n" +
    "HELP CHAT <name> <text>   send <text> to <name>\n" +
    "HELP CHAT * <text>        send <text> to everyone in the room\n" +
    "HELP WHO                  list the users\n" +
    "HELP JOIN #room           enter a room (created if new)\n" +
    "HELP PART #room           leave a room\n" +
    "HELP CHAT #room <text>    send <text> to everyone in #room\n" +
    "HELP WHO #room            list the users in #room\n" +
    "HELP ROOMS                list the rooms with their member counts\n" +
    "HELP PING [token]         check the connection\n" +
    "HELP LEAV                 leave and close the connection\n" +
    "HELP HELP                 this list\n" +
    "HELP END\n",
  ]);
});

Deno.test("WHO lists the users with their count", async () => {
  assert.deepEqual(await replies("WHO"), ["USERS 2 alice Bob\n"]);
  assert.deepEqual((await run(new FakeSession(), "WHO")).replies, ["USERS 0\n"]);
});

Deno.test("LEAV leaves, before or after JOIN, and replies nothing itself", async () => {
  for (const name of [undefined, "alice"]) {
    const session = await run(new FakeSession({ name }), "LEAV");
    assert.equal(session.leaves, 1);
    assert.deepEqual(session.replies, []);
  }
});

Deno.test("JOIN asks for a valid name and waits for the answer", async () => {
  const session = new FakeSession();
  const pending = dispatch(session, "JOIN alice_2-B");
  assert.ok(pending instanceof Promise);
  await pending;
  assert.deepEqual(session.joins, ["alice_2-B"]);
  assert.deepEqual(session.replies, ["OK JOIN alice_2-B\n"]);
});

Deno.test("JOIN accepts names of 1 and 32 characters", async () => {
  for (const name of ["a", "Z", "7", "_", "-", "x".repeat(32)]) {
    const session = await run(new FakeSession(), `JOIN ${name}`);
    assert.deepEqual(session.joins, [name]);
  }
});

Deno.test("JOIN rejects a bad name with ERR BAD_NAME and the reason", async (t) => {
  const length = "ERR BAD_NAME must be 1 to 32 characters\n";
  const characters = "ERR BAD_NAME may contain only A-Z a-z 0-9 _ -\n";
  const cases: [string, string, string][] = [
    ["no name", "JOIN", length],
    ["an empty name", "JOIN ", length],
    ["a name of 33 characters", `JOIN ${"x".repeat(33)}`, length],
    ["the room's name", "JOIN *", characters],
    ["a name with a space", "JOIN alice bob", characters],
    ["a name after two spaces", "JOIN  alice", characters],
    ["a name with a trailing space", "JOIN alice ", characters],
    ["a name with a tab", "JOIN al\tice", characters],
    ["a name with a dot", "JOIN alice.b", characters],
    ["a non-ASCII letter", "JOIN josé", characters],
    ["a non-Latin name", "JOIN 名前", characters],
    ["an emoji", "JOIN 😀", characters],
    ["a control character", "JOIN a\x1bb", characters],
  ];
  for (const [what, line, reply] of cases) {
    await t.step(what, async () => {
      const session = await run(new FakeSession(), line);
      assert.deepEqual(session.replies, [reply]);
      assert.deepEqual(session.joins, []);
    });
  }
});

Deno.test("JOIN after JOIN is refused with ERR ALREADY_JOINED and the joined name", async () => {
  const session = await run(new FakeSession({ name: "alice" }), "JOIN bob");
  assert.deepEqual(session.replies, ["ERR ALREADY_JOINED alice\n"]);
  assert.deepEqual(session.joins, []);
  // Even with a bad name, being joined is what is reported.
  assert.deepEqual(await replies("JOIN *", "alice"), ["ERR ALREADY_JOINED alice\n"]);
});

Deno.test("CHAT before JOIN is refused with ERR NOT_JOINED", async (t) => {
  for (const line of ["CHAT bob hi", "CHAT * hi", "CHAT", "chat bob hi"]) {
    await t.step(line, async () => {
      const session = await run(new FakeSession({ known: ["bob"] }), line);
      assert.deepEqual(session.replies, ["ERR NOT_JOINED\n"]);
      assert.deepEqual(session.effects, []);
    });
  }
});

Deno.test("CHAT delivers the text after the name to that user", async () => {
  const session = await run(
    new FakeSession({ name: "alice", known: ["Bob"] }),
    "CHAT Bob hi there",
  );
  assert.deepEqual(session.directs, [["Bob", "hi there"]]);
  assert.deepEqual(session.replies, []);
});

Deno.test("CHAT keeps the text exactly as sent, spaces and TAB included", async () => {
  const session = new FakeSession({ name: "alice", known: ["bob"] });
  await run(session, "CHAT bob  two  spaces ");
  await run(session, "CHAT bob a\tb\t");
  await run(session, "CHAT bob ünïcödé 😀 名前");
  assert.deepEqual(session.directs, [
    ["bob", " two  spaces "],
    ["bob", "a\tb\t"],
    ["bob", "ünïcödé 😀 名前"],
  ]);
  assert.deepEqual(session.replies, []);
});

Deno.test("CHAT * goes to the room", async () => {
  const session = await run(new FakeSession({ name: "alice", known: ["*"] }), "CHAT * hello all");
  assert.deepEqual(session.rooms, ["hello all"]);
  assert.deepEqual(session.directs, []);
  assert.deepEqual(session.replies, []);
});

Deno.test("CHAT to an unknown user replies ERR NO_SUCH_USER with the name as given", async () => {
  assert.deepEqual(await replies("CHAT carol hi", "alice"), ["ERR NO_SUCH_USER carol\n"]);
  assert.deepEqual(await replies("CHAT Carol hi", "alice"), ["ERR NO_SUCH_USER Carol\n"]);
});

Deno.test("CHAT without a name or text replies exactly the usage", async (t) => {
  for (const line of ["CHAT", "CHAT ", "CHAT bob", "CHAT bob ", "CHAT  hi", "CHAT *", "CHAT * "]) {
    await t.step(JSON.stringify(line), async () => {
      const session = await run(new FakeSession({ name: "alice", known: ["bob"] }), line);
      assert.deepEqual(session.replies, [USAGE]);
      assert.deepEqual(session.effects, []);
    });
  }
});

Deno.test("CHAT with a control character in the text replies ERR BAD_TEXT", async (t) => {
  const cases: [string, string][] = [
    ["ESC", "\x1b[31mred"],
    ["NUL", "a\x00b"],
    ["BEL", "ding\x07"],
    ["BS", "a\x08b"],
    ["CR", "a\rb"],
    ["LF", "a\nb"],
    ["US", "a\x1fb"],
    ["DEL", "a\x7fb"],
    ["C1 CSI U+009B", "\u009b31m"],
    ["C1 U+0080", "a\u0080"],
    ["C1 U+009F", "a\u009f"],
  ];
  for (const [what, text] of cases) {
    await t.step(what, async () => {
      for (const to of ["bob", "*"]) {
        const session = await run(
          new FakeSession({ name: "alice", known: ["bob"] }),
          `CHAT ${to} ${text}`,
        );
        assert.deepEqual(session.replies, [BAD_TEXT]);
        assert.deepEqual(session.effects, []);
      }
    });
  }
});

Deno.test("hasControlCharacter allows TAB and printable characters only", () => {
  assert.equal(hasControlCharacter("a\tb"), false);
  assert.equal(hasControlCharacter(" ~ é \u00a0 \u2028 😀"), false);
  for (let code = 0; code < 0xa0; code++) {
    const control = code !== 9 && (code < 0x20 || code >= 0x7f);
    assert.equal(
      hasControlCharacter(`x${String.fromCharCode(code)}y`),
      control,
      `U+${code.toString(16)}`,
    );
  }
});

Deno.test("verbs are case-insensitive", async (t) => {
  const cases: [string, string | undefined, string[]][] = [
    ["ping x", undefined, ["PONG x\n"]],
    ["Ping x", undefined, ["PONG x\n"]],
    ["pInG x", undefined, ["PONG x\n"]],
    ["who", undefined, ["USERS 2 alice Bob\n"]],
    ["jOiN carol", undefined, ["OK JOIN carol\n"]],
    ["chat * hi", "alice", []],
    ["Chat nobody hi", "alice", ["ERR NO_SUCH_USER nobody\n"]],
  ];
  for (const [line, name, expected] of cases) {
    await t.step(line, async () => assert.deepEqual(await replies(line, name), expected));
  }
  await t.step(
    "help",
    async () => assert.equal((await replies("help"))[0], (await replies("HELP"))[0]),
  );
  await t.step("leav", async () => assert.equal((await run(new FakeSession(), "leav")).leaves, 1));
});

Deno.test("an unknown verb replies ERR BAD_COMMAND with the verb upper-cased", async (t) => {
  const cases: [string, string][] = [
    ["FROB x", "ERR BAD_COMMAND FROB\n"],
    ["frob", "ERR BAD_COMMAND FROB\n"],
    ["LEAVE", "ERR BAD_COMMAND LEAVE\n"],
    ["QUIT", "ERR BAD_COMMAND QUIT\n"],
    ["PRIVMSG bob :hi", "ERR BAD_COMMAND PRIVMSG\n"],
    ["CONSTRUCTOR", "ERR BAD_COMMAND CONSTRUCTOR\n"],
    ["__proto__ x", "ERR BAD_COMMAND __PROTO__\n"],
    [" PING", "ERR BAD_COMMAND\n"],
    [`${"v".repeat(40)} x`, `ERR BAD_COMMAND ${"V".repeat(32)}\n`],
  ];
  for (const [line, reply] of cases) {
    await t.step(JSON.stringify(line), async () => {
      for (const name of [undefined, "alice"]) {
        const session = await run(new FakeSession({ name, known: ["bob"] }), line);
        assert.deepEqual(session.replies, [reply]);
        assert.deepEqual(session.effects, []);
      }
    });
  }
});

Deno.test("an empty line is ignored", () => {
  const session = new FakeSession({ known: ["bob"] });
  assert.equal(dispatch(session, ""), undefined);
  assert.deepEqual(session.replies, []);
  assert.deepEqual(session.effects, []);
});
