import assert from "node:assert/strict";
import {
  CHANNEL,
  classifyIrcLine,
  handleIrcLine,
  ircConnect,
  type IrcPeer,
  joinNick,
  privmsgTextStart,
} from "../bench/_irc.ts";
import { findNgircd, ngircdConfig, startTarget } from "../bench/_targets.ts";
import type { TcpClient, TextSink } from "../bench/_tcp_client.ts";

/** A client that records what it was told to send and which lines it was handed. */
class FakePeer implements IrcPeer {
  joined = false;
  sent: string[] = [];
  answered: string[] = [];
  send(text: string): void {
    this.sent.push(text);
  }
  answer(line: string): void {
    this.answered.push(line);
  }
}

Deno.test("privmsgTextStart finds the text of a PRIVMSG in place, and nothing else", () => {
  const text = "x\n:s3!~s3@127.0.0.1 PRIVMSG r3 :s3:12:99.5 :not a colon\r\n";
  const start = 2, end = text.indexOf("\r");
  const body = privmsgTextStart(text, start, end);
  assert.equal(text.slice(body, end), "s3:12:99.5 :not a colon");
  assert.equal(privmsgTextStart(":a!b@c NOTICE r3 :hi", 0, 20), -1);
  assert.equal(privmsgTextStart("PRIVMSG r3 :hi", 0, 14), -1);
  // The text must start before the end of this line, not in the next one.
  const two = ":a!b@c PRIVMSG r3\n:x PRIVMSG y :z";
  assert.equal(privmsgTextStart(two, 0, two.indexOf("\n")), -1);
});

Deno.test("joinNick reads the nick of a JOIN line, and nothing else", () => {
  const line = ":c0_12!~c0_12@127.0.0.1 JOIN :#bench";
  assert.equal(joinNick(line, 0, line.length), "c0_12");
  assert.equal(joinNick(":c0_12!~c@h PART :#bench", 0, 24), undefined);
  assert.equal(joinNick(":srv 366 a #bench :End", 0, 22), undefined);
});

Deno.test("classifyIrcLine tells pings, numerics, errors and notices apart", () => {
  assert.deepEqual(classifyIrcLine("PING :srv.local"), { kind: "ping", token: "srv.local" });
  assert.deepEqual(classifyIrcLine(":srv 001 a :Welcome"), {
    kind: "numeric",
    code: "001",
    error: false,
  });
  assert.deepEqual(classifyIrcLine(":srv 433 * a :Nickname already in use"), {
    kind: "numeric",
    code: "433",
    error: true,
  });
  assert.deepEqual(classifyIrcLine(":u1!~u@h QUIT :bye"), { kind: "notice", command: "QUIT" });
  assert.deepEqual(classifyIrcLine(":u1!~u@h JOIN :#bench"), { kind: "join", nick: "u1" });
  assert.deepEqual(classifyIrcLine("ERROR :Closing connection"), {
    kind: "error",
    text: "Closing connection",
  });
  assert.deepEqual(classifyIrcLine("FROM a b"), { kind: "unknown" });
});

Deno.test("handleIrcLine answers PING and hands 001, 366 and early errors to the waiter", () => {
  const peer = new FakePeer();
  assert.equal(handleIrcLine(peer, "PING :tok"), "ok");
  assert.deepEqual(peer.sent, ["PONG :tok\r\n"]);
  assert.equal(handleIrcLine(peer, ":srv 002 a :Your host"), "ok");
  assert.equal(handleIrcLine(peer, ":srv 001 a :Welcome"), "ok");
  assert.equal(handleIrcLine(peer, ":srv 433 * a :in use"), "ok");
  assert.equal(handleIrcLine(peer, ":srv 366 a #bench :End"), "ok");
  assert.deepEqual(peer.answered, [
    ":srv 001 a :Welcome",
    ":srv 433 * a :in use",
    ":srv 366 a #bench :End",
  ]);
  peer.joined = true;
  assert.equal(handleIrcLine(peer, ":srv 401 a nobody :No such nick"), "error");
  assert.equal(handleIrcLine(peer, "ERROR :Closing"), "error");
  assert.equal(handleIrcLine(peer, "garbage"), "unexpected");
  assert.equal(peer.answered.length, 3);
});

Deno.test("the ngircd config turns its per-IP, channel and flood limits off", () => {
  const config = ngircdConfig(6000);
  for (
    const line of [
      "Ports = 6000",
      "Listen = 127.0.0.1",
      "MaxConnectionsIP = 0",
      "MaxJoins = 0",
      "MaxPenaltyTime = 0",
      "DNS = no",
      "Ident = no",
      "PAM = no",
    ]
  ) assert.ok(config.split("\n").includes(line), line);
});

Deno.test("findNgircd looks on the PATH, then in /usr/sbin", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/ngircd`, "");
    assert.equal(findNgircd(`/nonexistent:${dir}`), `${dir}/ngircd`);
    // Debian's package puts it in /usr/sbin, which is not on every PATH.
    let installed = false;
    try {
      installed = Deno.statSync("/usr/sbin/ngircd").isFile;
    } catch { /* not installed */ }
    if (installed) assert.equal(findNgircd("/nonexistent"), "/usr/sbin/ngircd");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A sink that hands the lines of each client to handleIrcLine, and records PRIVMSG texts. */
class Sink implements TextSink {
  readonly texts: string[] = [];
  #waiter: (() => void) | undefined;
  onText(client: TcpClient, text: string): void {
    for (const raw of text.split("\n")) {
      if (raw === "") continue;
      const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
      const body = privmsgTextStart(line, 0, line.length);
      if (body === -1) handleIrcLine(client, line);
      else {
        this.texts.push(`${client.name} got ${line.slice(body)}`);
        this.#waiter?.();
      }
    }
  }
  onClose(): void {}
  /** Waits until `count` texts came, or rejects after 5 s. */
  async waitForTexts(count: number): Promise<string[]> {
    const deadline = performance.now() + 5000;
    while (this.texts.length < count) {
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`only ${this.texts.length} of ${count} texts`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.texts;
  }
}

Deno.test({
  name: "the IRC mode registers, joins #bench and exchanges PRIVMSGs with ngircd",
  ignore: findNgircd() === undefined,
  async fn() {
    await using server = await startTarget("ngircd", { chatdArgs: [] });
    const sink = new Sink();
    const options = (index: number) => ({ host: server.host, port: server.port, index, sink });
    const a = await ircConnect(options(0), "u0", CHANNEL);
    const b = await ircConnect(options(1), "u1", CHANNEL);
    const c = await ircConnect(options(2), "r1");
    try {
      a.send(`PRIVMSG ${CHANNEL} :u0:0:1.5\r\n`);
      b.send("PRIVMSG r1 :u1:0:2.5\r\n");
      assert.deepEqual((await sink.waitForTexts(2)).sort(), ["r1 got u1:0:2.5", "u1 got u0:0:1.5"]);
      // A nick in use is refused at registration, with ngircd's reply.
      await assert.rejects(() => ircConnect(options(3), "u0"), /433/);
    } finally {
      for (const client of [a, b, c]) client.close();
    }
  },
});
