/**
 * The web port over real sockets, against the real server: HTTP answers and headers, the
 * Origin check, WebSocket clients spread over processes and threads like TCP ones, the
 * send-queue limit for a WebSocket peer that never reads, and the close timeout for one
 * that never answers a close.
 */
import assert from "node:assert/strict";
import { CONTENT_SECURITY_POLICY } from "../src/_http.ts";
import { encodeFrame, Opcode } from "../src/_websocket.ts";
import { WS_CLOSE_TIMEOUT_MS } from "../src/ws_transport.ts";
import { HEAD_TIMEOUT_MS, MAX_HANDSHAKES } from "../src/web_acceptor.ts";
import { RawWebSocket } from "./_ws_client.ts";
import { join, serverCommand, TestServer, withTimeout } from "./test_util.ts";

const encoder = new TextEncoder();
const SMALL = ["--processes", "1", "--threads", "1"];

/** The raw answer to `request` (the server closes after it). */
async function rawHttp(port: number, request: string): Promise<string> {
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(encoder.encode(request));
  let text = "";
  const chunk = new Uint8Array(65536);
  for (;;) {
    const n = await withTimeout(conn.read(chunk), 10_000, "the HTTP answer");
    if (n === null) return text;
    text += new TextDecoder().decode(chunk.subarray(0, n));
  }
}

/** A WebSocket client past its HELLO, and where it landed. */
async function wsHello(port: number) {
  const ws = await RawWebSocket.connect(port);
  const hello = await ws.text();
  const match = / p=(\d+) t=(\d+) /.exec(hello);
  assert.ok(match, hello);
  return { ws, pId: Number(match[1]), tId: Number(match[2]) };
}

Deno.test("the web port answers GET / with the page and strict headers, and refuses the rest", async (t) => {
  await using server = await TestServer.start(SMALL);
  const base = `http://127.0.0.1:${server.webPort}`;
  await t.step("GET / is the page, with CSP, nosniff and no-cache", async () => {
    const response = await fetch(`${base}/`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "text/html; charset=utf-8");
    assert.equal(response.headers.get("content-security-policy"), CONTENT_SECURITY_POLICY);
    assert.equal(response.headers.get("x-content-type-options"), "nosniff");
    assert.equal(response.headers.get("cache-control"), "no-cache");
    assert.match(await response.text(), /<script type="module" src="\/app.js"><\/script>/);
  });
  await t.step("assets have their types", async () => {
    for (
      const [path, type] of [
        ["/app.js", "text/javascript; charset=utf-8"],
        ["/style.css", "text/css; charset=utf-8"],
        ["/favicon.svg", "image/svg+xml"],
      ]
    ) {
      const response = await fetch(`${base}${path}`);
      await response.body?.cancel();
      assert.equal(response.status, 200, path);
      assert.equal(response.headers.get("content-type"), type, path);
    }
  });
  await t.step("an unknown path is 404, with the same security headers", async () => {
    const response = await fetch(`${base}/etc/passwd`);
    assert.equal(response.status, 404);
    assert.equal(response.headers.get("content-security-policy"), CONTENT_SECURITY_POLICY);
    assert.equal(await response.text(), "404 Not Found: no such page: /etc/passwd\n");
  });
  await t.step("POST is 405 with Allow: GET", async () => {
    const response = await fetch(`${base}/`, { method: "POST", body: "x" });
    assert.equal(response.status, 405);
    assert.equal(response.headers.get("allow"), "GET");
    await response.body?.cancel();
  });
  await t.step("a bad request line is 400, and the connection is closed", async () => {
    const answer = await rawHttp(server.webPort!, "NOT HTTP\r\n\r\n");
    assert.match(answer, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.match(answer, /\r\nConnection: close\r\n/);
  });
  await t.step("GET /ws without an upgrade is 426", async () => {
    const answer = await rawHttp(server.webPort!, "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n");
    assert.match(answer, /^HTTP\/1\.1 426 Upgrade Required\r\n/);
  });
  await t.step("the line port still speaks lines", async () => {
    await using nc = await server.connect();
    await nc.hello();
    await nc.send("PING");
    assert.equal(await nc.readLine(), "PONG");
  });
});

Deno.test("a WebSocket from another origin is refused with 403 unless --web-origin allows it", async () => {
  await using server = await TestServer.start([
    ...SMALL,
    "--web-origin",
    "https://chat.example,http://other.example:8000",
  ]);
  const port = server.webPort!;
  await assert.rejects(
    RawWebSocket.connect(port, { origin: "http://evil.example" }),
    /not upgraded: HTTP\/1\.1 403 Forbidden/,
  );
  await using allowed = await RawWebSocket.connect(port, { origin: "https://chat.example" });
  assert.match(await allowed.text(), /^HELLO chatd /);
  await using own = await RawWebSocket.connect(port, { origin: `http://127.0.0.1:${port}` });
  assert.match(await own.text(), /^HELLO chatd /);
});

Deno.test("WebSocket clients are spread over every thread of every process and share the directory with nc", async () => {
  await using server = await TestServer.start(["--processes", "2", "--threads", "2"]);
  const seen = new Set<string>();
  const sockets: RawWebSocket[] = [];
  try {
    for (let i = 0; i < 60 && seen.size < 4; i++) {
      const { ws, pId, tId } = await wsHello(server.webPort!);
      sockets.push(ws);
      seen.add(`${pId}/${tId}`);
    }
    assert.equal(seen.size, 4, `landed on ${[...seen]}`);
    await using nc = await server.connect();
    await nc.hello();
    await join(nc, "carol");
    const ws = sockets[0]!;
    await ws.send("JOIN dora");
    assert.equal(await ws.text(), "OK JOIN dora");
    assert.equal(await nc.readLine(), "JOINED dora");
    await ws.send("WHO");
    assert.equal(await ws.text(), "USERS 2 carol dora");
    await ws.send("CHAT carol hi from the web");
    assert.equal(await nc.readLine(), "FROM dora hi from the web");
    await nc.send("CHAT dora hi back");
    assert.equal(await ws.text(), "FROM carol hi back");
  } finally {
    for (const ws of sockets) await ws[Symbol.asyncDispose]();
  }
});

Deno.test("the WebSocket framing: ping gets pong, two lines in one message or a binary frame close the socket", async (t) => {
  await using server = await TestServer.start(SMALL);
  await t.step("ping", async () => {
    const { ws } = await wsHello(server.webPort!);
    await using _ = ws;
    await ws.sendFrame(Opcode.PING, encoder.encode("are you there"));
    assert.deepEqual(await ws.next(), { kind: "pong", payload: encoder.encode("are you there") });
    await ws.send("PING x");
    assert.equal(await ws.text(), "PONG x");
  });
  await t.step("two lines in one message: 1007", async () => {
    const { ws } = await wsHello(server.webPort!);
    await using _ = ws;
    await ws.send("PING a\nPING b");
    assert.deepEqual(await ws.next(), {
      kind: "close",
      code: 1007,
      reason: "one line per message",
    });
  });
  await t.step("a binary frame: 1003", async () => {
    const { ws } = await wsHello(server.webPort!);
    await using _ = ws;
    await ws.sendFrame(Opcode.BINARY, encoder.encode("PING"));
    const frame = await ws.next();
    assert.equal(frame?.kind === "close" && frame.code, 1003);
  });
  await t.step(
    "the client's close is answered with the same code, then the server closes",
    async () => {
      const { ws } = await wsHello(server.webPort!);
      await using _ = ws;
      await ws.sendFrame(Opcode.CLOSE, new Uint8Array([0x0f, 0xa0])); // 4000
      assert.deepEqual(await ws.next(), { kind: "close", code: 4000, reason: "" });
      assert.equal(await ws.next(), null);
    },
  );
});

Deno.test("a WebSocket client that never reads is dropped at --max-send-queue while others keep chatting", async () => {
  // One thread: the sender's lines reach the victim's queue in the turn they are read (16 KiB
  // at most), and each turn's output is written before the next. The queue can only pass
  // its 64 KiB limit when the victim's writes stay unfinished: when the kernel, not the
  // transport, holds them back.
  await using server = await TestServer.start([
    ...SMALL,
    "--rate",
    "0",
    "--max-send-queue",
    "65536",
  ]);
  const { ws: victim } = await wsHello(server.webPort!);
  await using _victim = victim;
  const { ws: bystander } = await wsHello(server.webPort!);
  await using _bystander = bystander;
  await victim.send("JOIN victim");
  assert.equal(await victim.text(), "OK JOIN victim");
  await bystander.send("JOIN bystander");
  assert.equal(await bystander.text(), "OK JOIN bystander");
  await using sender = await server.connect();
  await sender.hello();
  await join(sender, "sender");
  // From here the victim reads nothing. Up to 20 MB go to it; the sender reads its lines.
  const senderSaw = new Set<string>();
  const reading = (async () => {
    while (!senderSaw.has("PONG done") || !senderSaw.has("LEFT victim")) {
      const line = await sender.readLineOrEof(20_000);
      if (line === null) throw new Error("the sender was disconnected");
      senderSaw.add(line);
    }
  })();
  reading.catch(() => {}); // Awaited below; a failure before that is the test's own.
  const text = "v".repeat(4000);
  const chunk = encoder.encode(
    Array.from({ length: 50 }, () => `CHAT victim ${text}\n`).join(""),
  );
  for (let i = 0; i < 100 && !senderSaw.has("LEFT victim"); i++) {
    await sender.sendBytes(chunk);
    if (i % 20 === 0) {
      await sender.send(`CHAT bystander still here ${i}`);
      let line: string;
      do line = await bystander.text(); while (/^(JOINED|LEFT) /.test(line));
      assert.equal(line, `FROM sender still here ${i}`);
    }
  }
  await sender.send("PING done");
  await withTimeout(reading, 30_000, "the sender's PONG done and LEFT victim");
  const dropped = await server.waitForLog({ msg: "slow consumer dropped", name: "victim" });
  assert.ok(Number(dropped.queued) > 65536, `queued=${dropped.queued}`);
  // The bystander still chats.
  await sender.send("CHAT bystander after");
  let line: string;
  do line = await bystander.text(); while (/^(JOINED|LEFT) /.test(line));
  assert.equal(line, "FROM sender after");
});

Deno.test("a WebSocket peer that never answers the close frame is freed within the close timeout", async () => {
  await using server = await TestServer.start([...SMALL, "--join-timeout", "0.2"]);
  const { ws } = await wsHello(server.webPort!);
  await using _ = ws;
  // No JOIN: the server times the client out, says why, and sends its close frame.
  assert.equal(await ws.text(), "ERR TIMEOUT no JOIN in time");
  const close = await ws.next();
  assert.deepEqual(close, { kind: "close", code: 1000, reason: "" });
  const sent = performance.now();
  // The peer stays silent (no close frame back); the server closes the TCP connection.
  assert.equal(await ws.next(WS_CLOSE_TIMEOUT_MS + 5_000), null);
  const waited = performance.now() - sent;
  assert.ok(
    waited > WS_CLOSE_TIMEOUT_MS - 500 && waited < WS_CLOSE_TIMEOUT_MS + 3_000,
    `closed after ${waited.toFixed(0)} ms`,
  );
});

Deno.test("a WebSocket peer that answers the close frame is closed at once", async (t) => {
  await using server = await TestServer.start([...SMALL, "--join-timeout", "0.5"]);
  /** Answers the server's close frame and times the TCP close. */
  async function answerClose(ws: RawWebSocket): Promise<void> {
    assert.deepEqual(await ws.next(), { kind: "close", code: 1000, reason: "" });
    const sent = performance.now();
    await ws.sendFrame(Opcode.CLOSE, new Uint8Array([0x03, 0xe8]));
    assert.equal(await ws.next(), null);
    const waited = performance.now() - sent;
    assert.ok(waited < WS_CLOSE_TIMEOUT_MS / 2, `closed after ${waited.toFixed(0)} ms`);
  }
  await t.step("closed while the server was reading from it (join timeout)", async () => {
    const { ws } = await wsHello(server.webPort!);
    await using _ = ws;
    assert.equal(await ws.text(), "ERR TIMEOUT no JOIN in time");
    await answerClose(ws);
  });
  await t.step("closed after LEAV, when the server no longer reads", async () => {
    const { ws } = await wsHello(server.webPort!);
    await using _ = ws;
    await ws.send("JOIN erin");
    assert.equal(await ws.text(), "OK JOIN erin");
    await ws.send("LEAV");
    assert.equal(await ws.text(), "BYE");
    await answerClose(ws);
  });
});

Deno.test("past MAX_HANDSHAKES silent connections, the next WebSocket waits for a free slot instead of being dropped", async () => {
  await using server = await TestServer.start(SMALL);
  const port = server.webPort!;
  // Connections that never send their request head fill every handshake slot, until the head
  // timeout closes them.
  const silent: Deno.Conn[] = [];
  try {
    for (let i = 0; i < MAX_HANDSHAKES; i++) {
      silent.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    }
    const started = performance.now();
    await using ws = await RawWebSocket.connect(port, { timeoutMs: HEAD_TIMEOUT_MS + 10_000 });
    assert.match(await ws.text(), /^HELLO chatd /);
    // It got in when the head timeout freed the slots, not before.
    assert.ok(performance.now() - started > HEAD_TIMEOUT_MS - 1000);
  } finally {
    for (const conn of silent) conn.close();
  }
});

Deno.test("lines in the same read as the client's close frame are still served", async () => {
  await using server = await TestServer.start(SMALL);
  await using nc = await server.connect();
  await nc.hello();
  await join(nc, "bob");
  const { ws } = await wsHello(server.webPort!);
  await using _ = ws;
  await ws.send("JOIN alice");
  assert.equal(await ws.text(), "OK JOIN alice");
  assert.equal(await nc.readLine(), "JOINED alice");
  // One write: a message and the close frame behind it.
  const mask = { mask: new Uint8Array([5, 6, 7, 8]) };
  const chat = encodeFrame(Opcode.TEXT, encoder.encode("CHAT bob last words"), mask);
  const close = encodeFrame(Opcode.CLOSE, new Uint8Array([0x03, 0xe8]), mask);
  await ws.sendBytes(new Uint8Array([...chat, ...close]));
  assert.equal(await nc.readLine(), "FROM alice last words");
  assert.equal(await nc.readLine(), "LEFT alice");
});

Deno.test("--web-port equal to --port, or taken, stops the start with exit code 1", async (t) => {
  await t.step("the line port itself", async () => {
    const free = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = free.addr.port;
    free.close();
    const output = await withTimeout(
      serverCommand(["--port", String(port), "--web-port", String(port)]).output(),
      15_000,
      "chatd",
    );
    assert.equal(output.code, 1);
    assert.equal(
      new TextDecoder().decode(output.stderr),
      `chatd: Cannot use --web-port ${port}: another of chatd's ports\n`,
    );
  });
  await t.step("a port in use", async () => {
    using blocker = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const output = await withTimeout(
      serverCommand(["--port", "0", "--web-port", String(blocker.addr.port)]).output(),
      15_000,
      "chatd",
    );
    assert.equal(output.code, 1);
    assert.equal(
      new TextDecoder().decode(output.stderr),
      `chatd: Cannot bind 127.0.0.1:${blocker.addr.port}: address in use\n`,
    );
  });
});
