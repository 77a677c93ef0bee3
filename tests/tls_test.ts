/**
 * TLS on every port, against the real server, with a test CA and leaf made by openssl:
 * `openssl s_client` on the TLS line port chats with a plain nc user, the line port itself
 * speaks TLS with `--tls-cert` alone, wss and https on the web port, `chatd client --tls`,
 * and a certificate that cannot be used stops the start.
 */
import assert from "node:assert/strict";
import { CHILD_DENO_FLAGS } from "../src/child_command.ts";
import { CONTENT_SECURITY_POLICY } from "../src/_http.ts";
import { makeCerts } from "./_certs.ts";
import { RawWebSocket } from "./_ws_client.ts";
import {
  join,
  LineClient,
  ROOT,
  serverCommand,
  TestServer,
  waitUntil,
  withTimeout,
} from "./test_util.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const SMALL = ["--processes", "2", "--threads", "1"];
const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** The flags that give the server a certificate and its key. */
function tlsFlags(files: { certFile: string; keyFile: string }): string[] {
  return ["--tls-cert", files.certFile, "--tls-key", files.keyFile];
}

/** `chatd client ...args` as a command, stdout and stderr piped. */
function clientCommand(args: string[], stdin: "piped" | "null"): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", ...CHILD_DENO_FLAGS, MAIN, "client", ...args],
    cwd: ROOT,
    stdin,
    stdout: "piped",
    stderr: "piped",
  });
}

/** Lines of a `Deno.Conn` (TLS here), each wait bounded. */
class ConnLines {
  readonly conn: Deno.Conn;
  #buffer = "";
  constructor(conn: Deno.Conn) {
    this.conn = conn;
  }
  async next(timeoutMs = 10_000): Promise<string | null> {
    for (;;) {
      const newline = this.#buffer.indexOf("\n");
      if (newline !== -1) {
        const line = this.#buffer.slice(0, newline);
        this.#buffer = this.#buffer.slice(newline + 1);
        return line;
      }
      const chunk = new Uint8Array(4096);
      const n = await withTimeout(this.conn.read(chunk), timeoutMs, "a line");
      if (n === null) return null;
      this.#buffer += decoder.decode(chunk.subarray(0, n), { stream: true });
    }
  }
  async send(line: string): Promise<void> {
    await this.conn.write(encoder.encode(line + "\n"));
  }
}

Deno.test("openssl s_client on the TLS port gets HELLO, joins and chats with a plain nc user", async () => {
  await using certs = await makeCerts();
  await using server = await TestServer.start([...SMALL, ...tlsFlags(certs), "--tls-port", "0"]);
  assert.ok(server.tlsPort !== undefined && server.tlsPort !== server.port);
  await using nc = await server.connect(); // The line port stays plain.
  await nc.hello();
  await join(nc, "bob");
  const sClient = new Deno.Command("openssl", {
    args: [
      "s_client",
      "-connect",
      `127.0.0.1:${server.tlsPort}`,
      "-CAfile",
      certs.caCertFile,
      "-verify_return_error",
      "-verify_ip",
      "127.0.0.1",
      "-quiet",
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdin = sClient.stdin.getWriter();
  const stdout = sClient.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  const readLine = async () => {
    for (;;) {
      const newline = buffer.indexOf("\n");
      if (newline !== -1) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        return line;
      }
      const { value, done } = await withTimeout(stdout.read(), 10_000, "s_client output");
      if (done) throw new Error("s_client ended");
      buffer += value;
    }
  };
  try {
    assert.match(await readLine(), /^HELLO chatd \S+ p=\d t=0 /);
    await stdin.write(encoder.encode("JOIN alice\n"));
    assert.equal(await readLine(), "OK JOIN alice");
    assert.equal(await nc.readLine(), "JOINED alice");
    await stdin.write(encoder.encode("CHAT bob over TLS\n"));
    assert.equal(await nc.readLine(), "FROM alice over TLS");
    await nc.send("CHAT * in the clear");
    assert.equal(await readLine(), "ALL bob in the clear");
    await stdin.write(encoder.encode("LEAV\n"));
    assert.equal(await readLine(), "BYE");
    assert.equal(await nc.readLine(), "LEFT alice");
  } finally {
    await stdin.close().catch(() => {});
    await stdout.cancel().catch(() => {});
    try {
      sClient.kill("SIGKILL");
    } catch {
      // Already ended.
    }
    const { stderr } = await sClient.output().catch(() => ({ stderr: new Uint8Array() }));
    if (stderr.length > 0) assert.doesNotMatch(decoder.decode(stderr), /verify error/);
  }
});

Deno.test("with --tls-cert alone the line port speaks TLS and the web port https and wss", async (t) => {
  await using certs = await makeCerts();
  await using server = await TestServer.start([...SMALL, ...tlsFlags(certs)]);
  await t.step("the line port: TLS with the test CA", async () => {
    const conn = await Deno.connectTls({
      hostname: "127.0.0.1",
      port: server.port,
      caCerts: [certs.caCert],
    });
    using _ = conn;
    const lines = new ConnLines(conn);
    assert.match((await lines.next())!, /^HELLO chatd /);
    await lines.send("JOIN carol");
    assert.equal(await lines.next(), "OK JOIN carol");
  });
  await t.step("a plain client on the line port gets no HELLO", async () => {
    await using plain = await LineClient.connect(server.port);
    await plain.send("PING");
    // The TLS server reads "PING\n" as a broken handshake and closes.
    assert.equal(await plain.readLineOrEof(10_000), null);
  });
  await t.step("wss: the WebSocket over TLS", async () => {
    await using ws = await RawWebSocket.connect(server.webPort!, {
      caCerts: [certs.caCert],
      origin: `https://127.0.0.1:${server.webPort}`,
    });
    assert.match(await ws.text(), /^HELLO chatd /);
    await ws.send("JOIN dora");
    assert.equal(await ws.text(), "OK JOIN dora");
  });
  await t.step("an http origin is not the page's own under https", async () => {
    await assert.rejects(
      RawWebSocket.connect(server.webPort!, {
        caCerts: [certs.caCert],
        origin: `http://127.0.0.1:${server.webPort}`,
      }),
      /403 Forbidden/,
    );
  });
  await t.step("https: the page with its headers", async () => {
    using client = Deno.createHttpClient({ caCerts: [certs.caCert] });
    const response = await fetch(`https://127.0.0.1:${server.webPort}/`, { client });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-security-policy"), CONTENT_SECURITY_POLICY);
    assert.match(await response.text(), /<title>/);
  });
  await t.step("chatd client --tls --ca joins and chats", async () => {
    await using bob = await connectTlsLines(server.port, certs.caCert);
    await bob.send("JOIN bob");
    assert.equal(await bob.next(), "OK JOIN bob");
    const child = clientCommand(
      ["--tls", "--ca", certs.caCertFile, "--port", String(server.port)],
      "piped",
    ).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(encoder.encode("erin\nhello over TLS\n"));
    await writer.close();
    let line: string | null;
    do line = await bob.next(); while (line !== null && line.startsWith("JOINED carol"));
    assert.equal(line, "JOINED erin");
    assert.equal(await bob.next(), "ALL erin hello over TLS");
    assert.equal(await bob.next(), "LEFT erin");
    const output = await withTimeout(child.output(), 15_000, "client exit");
    assert.equal(output.code, 0, decoder.decode(output.stderr));
  });
  await t.step("chatd client --tls without the CA refuses the certificate", async () => {
    const output = await withTimeout(
      clientCommand(["--tls", "--port", String(server.port)], "null").output(),
      15_000,
      "client exit",
    );
    assert.equal(output.code, 1);
    assert.match(
      decoder.decode(output.stderr),
      /^chatd client: Cannot connect to 127\.0\.0\.1:\d+: .*certificate/i,
    );
  });
});

/** A TLS line connection past its HELLO. */
async function connectTlsLines(port: number, caCert: string) {
  const conn = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [caCert] });
  const lines = new ConnLines(conn);
  assert.match((await lines.next())!, /^HELLO /);
  return Object.assign(lines, {
    [Symbol.asyncDispose]: () => {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
      return Promise.resolve();
    },
  });
}

Deno.test("a certificate that cannot be used stops the start with exit code 1", async (t) => {
  await using certs = await makeCerts();
  const bad = `${certs.dir}/bad.crt`;
  await Deno.writeTextFile(
    bad,
    "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
  );
  for (
    const [what, cert, key] of <[string, string, string][]> [
      ["a broken certificate", bad, certs.keyFile],
      ["a missing key file", certs.certFile, `${certs.dir}/none.key`],
      ["the CA's key for the leaf", certs.certFile, `${certs.dir}/ca.key`],
    ]
  ) {
    await t.step(what, async () => {
      const output = await withTimeout(
        serverCommand(["--port", "0", "--web-port", "0", "--tls-cert", cert, "--tls-key", key])
          .output(),
        15_000,
        "chatd with a bad certificate",
      );
      assert.equal(output.code, 1);
      assert.match(decoder.decode(output.stderr), /^chatd: Cannot use --tls-cert /);
    });
  }
});

/** A TLS line connection trusting `caCert`, past its HELLO, or the handshake's error. */
async function tryTls(port: number, caCert: string): Promise<ConnLines | Error> {
  let conn: Deno.TlsConn | undefined;
  try {
    conn = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [caCert] });
    await withTimeout(conn.handshake(), 10_000, "TLS handshake");
    const lines = new ConnLines(conn);
    const hello = await lines.next();
    if (!hello?.startsWith("HELLO ")) throw new Error(`no HELLO: ${hello}`);
    return lines;
  } catch (error: unknown) {
    conn?.close();
    return error instanceof Error ? error : new Error(String(error));
  }
}

Deno.test("SIGHUP reloads the certificate: connected clients stay, new ones get the new one; a bad one is kept out", async () => {
  await using first = await makeCerts({ commonName: "chatd first" });
  await using second = await makeCerts({ commonName: "chatd second" });
  // The files the server is started with, renewed in place as an ACME client would.
  const certFile = `${first.dir}/live.crt`;
  const keyFile = `${first.dir}/live.key`;
  await Deno.copyFile(first.certFile, certFile);
  await Deno.copyFile(first.keyFile, keyFile);
  await using server = await TestServer.start([
    ...SMALL,
    ...tlsFlags({ certFile, keyFile }),
    "--tls-port",
    "0",
  ]);
  const threads = 2; // SMALL: 2 processes of 1 thread.
  const before = await tryTls(server.tlsPort!, first.caCert);
  if (before instanceof Error) throw before;
  await before.send("JOIN early");
  assert.equal(await before.next(), "OK JOIN early");
  await using wss = await RawWebSocket.connect(server.webPort!, { caCerts: [first.caCert] });
  assert.match(await wss.text(), /^HELLO /);
  await wss.send("JOIN webby");
  assert.equal(await wss.text(), "OK JOIN webby");
  assert.equal(await before.next(), "JOINED webby");

  const reloads = () =>
    server.parsedLogs().filter((fields) => fields.msg === "TLS certificate reloaded").length;
  await Deno.copyFile(second.certFile, certFile);
  await Deno.copyFile(second.keyFile, keyFile);
  server.signal("SIGHUP");
  await waitUntil(() => reloads() === threads, 15_000, "every thread's TLS reload");

  // New connections get the new certificate (signed by the second CA only).
  const renewed = await tryTls(server.tlsPort!, second.caCert);
  if (renewed instanceof Error) throw renewed;
  const stale = await tryTls(server.tlsPort!, first.caCert);
  assert.ok(stale instanceof Error, "a client trusting only the old CA still got in");
  await using renewedWss = await RawWebSocket.connect(server.webPort!, {
    caCerts: [second.caCert],
  });
  assert.match(await renewedWss.text(), /^HELLO /);
  // The clients connected before are still there and chat with the new ones.
  await renewed.send("JOIN late");
  assert.equal(await renewed.next(), "OK JOIN late");
  assert.equal(await before.next(), "JOINED late");
  assert.equal(await wss.text(), "JOINED late");
  await renewed.send("CHAT * still here?");
  assert.equal(await before.next(), "ALL late still here?");
  assert.equal(await wss.text(), "ALL late still here?");
  await wss.send("CHAT early yes");
  assert.equal(await before.next(), "FROM webby yes");

  // A broken certificate is logged and the working one stays.
  const from = server.logs.length;
  await Deno.writeTextFile(
    certFile,
    "-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n",
  );
  server.signal("SIGHUP");
  await server.waitForLog({ msg: "SIGHUP: TLS certificate not reloaded, the old one stays" }, {
    from,
  });
  assert.equal(reloads(), threads);
  const after = await tryTls(server.tlsPort!, second.caCert);
  if (after instanceof Error) throw after;
  after.conn.close();
  renewed.conn.close();
  before.conn.close();
});
