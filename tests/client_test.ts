import assert from "node:assert/strict";
import { formatServerLine, parseUserLine, showable } from "../src/_client_format.ts";
import { CHILD_DENO_FLAGS } from "../src/child_command.ts";
import { ErrorCode } from "../src/protocol.ts";
import { joinAs, type LineClient, ROOT, TestServer, withTimeout } from "./test_util.ts";
import { TmuxPane, type TmuxPaneOptions } from "./_tmux.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const decoder = new TextDecoder();

Deno.test("formatServerLine shows room and direct messages as a person reads them", () => {
  assert.equal(formatServerLine("ALL alice hi there"), "alice: hi there");
  assert.equal(formatServerLine("FROM alice psst"), "[alice → you] psst");
  assert.equal(formatServerLine("ALL alice  two  spaces "), "alice:  two  spaces ");
});

Deno.test("formatServerLine shows arrivals, departures and the user list as notices", () => {
  assert.equal(formatServerLine("JOINED bob"), "* bob joined");
  assert.equal(formatServerLine("LEFT bob"), "* bob left");
  assert.equal(formatServerLine("USERS 2 alice bob"), "* users (2): alice, bob");
  assert.equal(formatServerLine("USERS 0"), "* users (0): nobody");
});

Deno.test("formatServerLine puts every error code in plain language", () => {
  const cases: [string, string][] = [
    ["ERR NO_SUCH_USER bob", "! no such user: bob"],
    ["ERR NAME_TAKEN bob", "! the name bob is taken"],
    [
      "ERR BAD_NAME may contain only A-Z a-z 0-9 _ -",
      "! that name cannot be used: may contain only A-Z a-z 0-9 _ -",
    ],
    ["ERR BAD_COMMAND FROB", "! the server did not understand FROB"],
    ["ERR ALREADY_JOINED alice", "! you have already joined as alice"],
    ["ERR NOT_JOINED", "! you have not joined yet"],
    ["ERR SERVER_FULL", "! the server is full"],
    ["ERR LINE_TOO_LONG", "! that line is too long"],
    ["ERR BAD_ENCODING", "! that line is not valid UTF-8"],
    [
      "ERR BAD_TEXT control characters are not allowed",
      "! message refused: control characters are not allowed",
    ],
    ["ERR SOMETHING_NEW with detail", "! error SOMETHING_NEW: with detail"],
    ["ERR toString", "! error toString"],
  ];
  for (const [line, shown] of cases) assert.equal(formatServerLine(line), shown, line);
  for (const code of Object.values(ErrorCode)) {
    const shown = formatServerLine(`ERR ${code} detail`);
    assert.doesNotMatch(shown ?? "", /^! error /, `no plain-language message for ${code}`);
  }
});

Deno.test("formatServerLine shows the greeting, OK JOIN, HELP, PONG and BYE", () => {
  assert.equal(
    formatServerLine("HELLO chatd 0.1.0 p=1 t=0 — JOIN <name> to start, HELP for commands"),
    "* connected to chatd 0.1.0",
  );
  assert.equal(
    formatServerLine("OK JOIN alice"),
    "* you joined as alice; /help lists the commands",
  );
  assert.equal(
    formatServerLine("HELP WHO                  list the users"),
    "WHO                  list the users",
  );
  assert.equal(formatServerLine("HELP END"), undefined);
  assert.equal(formatServerLine("PONG 42"), "* pong 42");
  assert.equal(formatServerLine("PONG"), "* pong");
  assert.equal(formatServerLine("BYE"), "* bye");
  assert.equal(formatServerLine("BYE shutting down"), "* the server says goodbye: shutting down");
  assert.equal(formatServerLine(""), undefined);
  assert.equal(formatServerLine("SOMETHING unexpected"), "SOMETHING unexpected");
});

Deno.test("formatServerLine escapes control characters instead of printing them", () => {
  assert.equal(
    formatServerLine("ALL mallory \x1b[2J\x1b]0;pwned\x07"),
    "mallory: \\x1b[2J\\x1b]0;pwned\\x07",
  );
  assert.equal(
    formatServerLine("FROM mallory a\rb\x9bc\x7f"),
    "[mallory → you] a\\x0db\\x9bc\\x7f",
  );
  assert.equal(formatServerLine("ALL mallory \u202eevil\u2028x"), "mallory: \\u202eevil\\u2028x");
  assert.equal(formatServerLine("JOINED \x1b[31mred"), "* \\x1b[31mred joined");
  assert.equal(formatServerLine("WEIRD \x00"), "WEIRD \\x00");
  assert.equal(showable("tab\there, é ü 日本 🙂"), "tab here, é ü 日本 🙂");
});

Deno.test("parseUserLine reads room lines, /msg, /who, /help, /quit and exit", () => {
  assert.deepEqual(parseUserLine("hello all"), { kind: "room", text: "hello all" });
  assert.deepEqual(parseUserLine("//shrug"), { kind: "room", text: "/shrug" });
  assert.deepEqual(parseUserLine("/msg bob hi  there"), {
    kind: "direct",
    to: "bob",
    text: "hi  there",
  });
  assert.deepEqual(parseUserLine("/msg bob"), {
    kind: "mistake",
    message: "usage: /msg <name> <text>",
  });
  assert.deepEqual(parseUserLine("/who"), { kind: "who" });
  assert.deepEqual(parseUserLine("/help"), { kind: "help" });
  assert.deepEqual(parseUserLine("/quit"), { kind: "quit" });
  assert.deepEqual(parseUserLine("exit"), { kind: "quit" });
  assert.deepEqual(parseUserLine("   "), { kind: "nothing" });
  assert.deepEqual(parseUserLine("/frob"), {
    kind: "mistake",
    message: "unknown command /frob; /help lists the commands",
  });
});

Deno.test("formatServerLine shows rooms: messages, notices, users, the room list, and history dimmed with its time", () => {
  assert.equal(formatServerLine("ROOM #tea alice hi  there"), "[#tea] alice: hi  there");
  assert.equal(formatServerLine("JOINED #tea bob"), "* bob joined #tea");
  assert.equal(formatServerLine("LEFT #tea bob"), "* bob left #tea");
  assert.equal(formatServerLine("USERS #tea 2 alice bob"), "* users in #tea (2): alice, bob");
  assert.equal(formatServerLine("USERS #tea 0"), "* users in #tea (0): nobody");
  assert.equal(formatServerLine("ROOMS 2 #a=1 #tea=12"), "* rooms (2): #a (1), #tea (12)");
  assert.equal(formatServerLine("ROOMS 0"), "* rooms (0): none");
  assert.equal(formatServerLine("OK JOIN #tea"), "* you are in #tea; typed lines go there");
  assert.equal(formatServerLine("OK PART #tea"), "* you left #tea");
  assert.equal(
    formatServerLine("HISTORY #tea 2026-11-30T19:05:09.007Z bob said  this"),
    "\x1b[2m[#tea] [2026-11-30 19:05] bob: said  this\x1b[22m",
  );
  assert.equal(
    formatServerLine("HISTORY * 2026-11-30T19:05:09.007Z bob \x1b[2Jhi"),
    "\x1b[2m[2026-11-30 19:05] bob: \\x1b[2Jhi\x1b[22m",
    "only the dimming is a control sequence",
  );
  assert.equal(formatServerLine("HISTORY #tea END"), undefined);
  assert.equal(formatServerLine("HISTORY * END"), undefined);
});

Deno.test("parseUserLine reads /join, /part, /rooms and /who #room", () => {
  assert.deepEqual(parseUserLine("/join #tea"), { kind: "join", room: "#tea" });
  assert.deepEqual(parseUserLine("/join tea"), { kind: "mistake", message: "usage: /join #room" });
  assert.deepEqual(parseUserLine("/part"), { kind: "part" });
  assert.deepEqual(parseUserLine("/part #tea"), { kind: "part", room: "#tea" });
  assert.deepEqual(parseUserLine("/part a b"), {
    kind: "mistake",
    message: "usage: /part [#room]",
  });
  assert.deepEqual(parseUserLine("/rooms"), { kind: "rooms" });
  assert.deepEqual(parseUserLine("/who #tea"), { kind: "who", room: "#tea" });
});

/** The pane the client runs in: 120 × 30, with the `--allow-run` that `chatd client` needs. */
const PANE: TmuxPaneOptions = {
  columns: 120,
  rows: 30,
  label: "client-test",
  denoFlags: ["--allow-run"],
};

Deno.test("in a terminal, the client joins, chats with bob and quits", async (t) => {
  await using server = await TestServer.start();
  await using carol = await joinAs(server, "carol");
  await using tmux = await TmuxPane.start(["--port", String(server.port)], PANE);
  let bob: LineClient | undefined;
  try {
    await t.step("it asks for a name, and again when the name is taken", async () => {
      await tmux.waitForScreen(/^\* connected to chatd \S+\nEnter your name:$/m);
      await tmux.enter("carol");
      await tmux.waitForScreen(/^! the name carol is taken\nEnter your name:$/m);
      await tmux.enter("alice");
      await tmux.waitForScreen(/^\* you joined as alice; \/help lists the commands\n>$/m);
    });

    await t.step("bob's arrival and his room and direct messages show readably", async () => {
      bob = await joinAs(server, "bob");
      await tmux.waitForScreen(/^\* bob joined$/m);
      await bob.send("CHAT * hello from bob");
      await tmux.waitForScreen(/^bob: hello from bob$/m);
      await bob.send("CHAT alice psst");
      await tmux.waitForScreen(/^\[bob → you\] psst\n>$/m);
    });

    await t.step(
      "a typed line reaches bob as a room message and /msg as a direct one",
      async () => {
        await tmux.enter("hi bob");
        assert.equal(await bob!.readLine(), "ALL alice hi bob");
        await tmux.enter("/msg bob x");
        assert.equal(await bob!.readLine(), "FROM alice x");
        assert.equal(await carol.readLine(), "JOINED alice");
        assert.equal(await carol.readLine(), "JOINED bob");
        assert.equal(await carol.readLine(), "ALL bob hello from bob");
        assert.equal(await carol.readLine(), "ALL alice hi bob");
      },
    );

    await t.step("/who lists the users and /help the commands", async () => {
      await tmux.enter("/who");
      await tmux.waitForScreen(/^\* users \(3\): alice, bob, carol$/m);
      await tmux.enter("/help");
      await tmux.waitForScreen(/^ {2}\/msg <name> <text> +send <text> to <name> only$/m);
      await tmux.enter("/msg nobody hi");
      await tmux.waitForScreen(/^! no such user: nobody\n>$/m);
    });

    await t.step("an incoming line leaves the half-typed input intact below it", async () => {
      await tmux.type("half typ");
      await tmux.waitForScreen(/^> half typ$/m);
      await bob!.send("CHAT * while you type");
      const screen = await tmux.waitForScreen(/^bob: while you type$/m);
      assert.match(screen, /^bob: while you type\n> half typ$/m);
      assert.equal(screen.split("\n").at(-1), "> half typ");
      await tmux.enter("ed");
      assert.equal(await bob!.readLine(), "ALL alice half typed");
    });

    await t.step("/quit leaves the room and exits 0", async () => {
      await tmux.enter("/quit");
      assert.equal(await bob!.readLine(), "LEFT alice");
      await tmux.waitForScreen(/^\* bye\nEXIT=0$/m);
    });
  } finally {
    bob?.close();
  }
});

Deno.test("in a terminal, the client enters a room, shows its history and messages, and parts", async () => {
  await using server = await TestServer.start(["--history", "5"]);
  await using bob = await server.connect();
  await bob.hello();
  await bob.send("JOIN bob\nJOIN #tea\nCHAT #tea earlier words");
  assert.deepEqual(await bob.readLines(5), [
    "OK JOIN bob",
    "HISTORY * END",
    "OK JOIN #tea",
    "HISTORY #tea END",
    "USERS #tea 1 bob",
  ]);
  await using tmux = await TmuxPane.start(["--port", String(server.port), "--name", "alice"], PANE);
  await tmux.waitForScreen(/^\* you joined as alice; .*\n>$/m);
  assert.equal(await bob.readLine(), "JOINED alice");
  await tmux.enter("/join #tea");
  await tmux.waitForScreen(
    /^\* you are in #tea; typed lines go there\n\[#tea\] \[\d{4}-\d\d-\d\d \d\d:\d\d\] bob: earlier words\n\* users in #tea \(2\): alice, bob\n#tea>$/m,
  );
  assert.equal(await bob.readLine(), "JOINED #tea alice");
  await tmux.enter("hi tea");
  assert.equal(await bob.readLine(), "ROOM #tea alice hi tea");
  await bob.send("CHAT #tea back at you");
  await tmux.waitForScreen(/^\[#tea\] bob: back at you\n#tea>$/m);
  await tmux.enter("/rooms");
  await tmux.waitForScreen(/^\* rooms \(1\): #tea \(2\)$/m);
  await tmux.enter("/who #tea");
  await tmux.waitForScreen(/^\* users in #tea \(2\): alice, bob$/m);
  await tmux.enter("/part");
  await tmux.waitForScreen(/^\* you left #tea\n>$/m);
  assert.equal(await bob.readLine(), "LEFT #tea alice");
  await tmux.enter("lobby again");
  assert.equal(await bob.readLine(), "ALL alice lobby again");
});

Deno.test("with a bad --name the client asks again, and exits 1 when the server shuts down", async () => {
  await using server = await TestServer.start();
  await using tmux = await TmuxPane.start(["--port", String(server.port), "--name", "a*b"], PANE);
  await tmux.waitForScreen(/^! that name cannot be used: may contain only .*\nEnter your name:$/m);
  await tmux.enter("dave");
  await tmux.waitForScreen(/^\* you joined as dave;.*\n>$/m);
  server.signal("SIGTERM");
  await tmux.waitForScreen(/^chatd client: The server is shutting down\nEXIT=1$/m);
});

/**
 * `chatd client ...args` as a subprocess, its output collected from the start. `await using`
 * kills it if it is still running, whatever the test's outcome.
 */
class ClientProcess implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #output: Promise<Deno.CommandOutput>;
  readonly #stdinPiped: boolean;

  constructor(args: string[], stdin: "piped" | "null" = "piped") {
    this.#stdinPiped = stdin === "piped";
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", ...CHILD_DENO_FLAGS, "--allow-run", MAIN, "client", ...args],
      cwd: ROOT,
      stdin,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#output = this.#child.output();
  }

  /** The client's stdin. */
  get stdin(): WritableStream<Uint8Array> {
    return this.#child.stdin;
  }

  /** Waits for the client to exit; its code and output. */
  async finish(): Promise<{ code: number; stdout: string; stderr: string }> {
    const output = await withTimeout(this.#output, 15_000, "client exit");
    return {
      code: output.code,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr),
    };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await this.#output.catch(() => {});
    if (this.#stdinPiped) await this.#child.stdin.close().catch(() => {});
  }
}

Deno.test("the client exits 1 with a clear message when nothing listens on the port", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  await using child = new ClientProcess(["--port", String(port)], "null");
  const output = await child.finish();
  assert.equal(output.code, 1);
  assert.equal(
    output.stderr,
    `chatd client: Cannot connect to 127.0.0.1:${port}: connection refused; is the server running?\n`,
  );
});

Deno.test("from a pipe, the client joins, sends each line and leaves at the end", async () => {
  await using server = await TestServer.start();
  await using bob = await joinAs(server, "bob");
  await using child = new ClientProcess(["--port", String(server.port)]);
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode("alice\nhello from a pipe\n/msg bob psst\n"));
  await writer.close();
  assert.equal(await bob.readLine(), "JOINED alice");
  assert.equal(await bob.readLine(), "ALL alice hello from a pipe");
  assert.equal(await bob.readLine(), "FROM alice psst");
  assert.equal(await bob.readLine(), "LEFT alice");
  const result = await child.finish();
  assert.equal(result.code, 0, result.stderr);
  assert.equal(
    result.stdout,
    "* connected to chatd 0.1.0\n* you joined as alice; /help lists the commands\n* bye\n",
  );
});

/** A pretend server on a free port that greets, accepts any JOIN, then runs `after`. */
async function withFakeServer(
  after: (conn: Deno.TcpConn) => Promise<void>,
  body: (port: number) => Promise<void>,
): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serve = async () => {
    using conn = await listener.accept();
    const encoder = new TextEncoder();
    await conn.write(encoder.encode("HELLO chatd 0.1.0 p=0 t=0 — fake\n"));
    const buffer = new Uint8Array(1024);
    let received = "";
    while (!received.includes("\n")) {
      const n = await conn.read(buffer);
      if (n === null) return;
      received += decoder.decode(buffer.subarray(0, n));
    }
    const name = received.slice(0, received.indexOf("\n")).replace(/^JOIN /, "");
    await conn.write(encoder.encode(`OK JOIN ${name}\n`));
    await after(conn);
  };
  const serving = serve();
  try {
    await body(listener.addr.port);
    await withTimeout(serving, 10_000, "fake server");
  } finally {
    listener.close();
    await serving.catch(() => {}); // Its failure, if any, was reported above.
  }
}

Deno.test("the client exits 1 when the server closes the connection while it runs", async () => {
  await withFakeServer(async () => {}, async (port) => {
    await using child = new ClientProcess(["--port", String(port), "--name", "alice"]);
    const result = await child.finish();
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^chatd client: The server closed the connection\n$/);
  });
});

Deno.test("/quit gives up waiting for BYE after 2 s and still exits 0", async () => {
  await withFakeServer(
    async (conn) => {
      // Read LEAV, then say nothing and keep the connection open until the client is gone.
      const buffer = new Uint8Array(1024);
      while (await conn.read(buffer) !== null);
    },
    async (port) => {
      await using child = new ClientProcess(["--port", String(port), "--name", "alice"]);
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode("/quit\n"));
      writer.releaseLock();
      const started = performance.now();
      const result = await child.finish();
      const waited = performance.now() - started;
      assert.equal(result.code, 0);
      assert.match(result.stderr, /no BYE from the server; leaving anyway/);
      assert.ok(waited >= 1900 && waited < 10_000, `waited ${waited} ms`);
    },
  );
});

Deno.test("formatServerLine: CLUSTER_UNAVAILABLE for a lobby or room line says where it did reach", () => {
  assert.equal(
    formatServerLine("ERR CLUSTER_UNAVAILABLE *"),
    "! the other servers cannot be reached now: your line in the lobby reached only this " +
      "server's users",
  );
  assert.equal(
    formatServerLine("ERR CLUSTER_UNAVAILABLE bob"),
    "! the other servers cannot be reached now (bob); try again",
  );
});
