/// <reference lib="dom" />
/**
 * The web port over real sockets (WebSocket clients, HTTP errors and headers) and the chat
 * page in a real browser, against a real multi-process chatd.
 */
import assert from "node:assert/strict";
import { join as joinPath } from "node:path";
import type { Page } from "puppeteer-core";
import { browserTest, entries, launchBrowser, WAIT_MS, waitForUsers } from "./_browser.ts";
import { makeCerts } from "./_certs.ts";
import { connectTo, join, readUntil, TestServer, withTimeout } from "./test_util.ts";

/**
 * Where the screenshots are kept: `CHATD_SCREENSHOTS=tests/screenshots` renews the committed
 * ones the README shows; without it they go to a temp dir, checked, then removed, so that a
 * test run leaves the tree as it was.
 */
const SCREENSHOTS = Deno.env.get("CHATD_SCREENSHOTS");

/** Lines of a WebSocket client (Deno's own, an implementation independent of ours). */
async function openSocket(url: string) {
  const socket = new WebSocket(url);
  const lines: string[] = [];
  const waiters: (() => void)[] = [];
  socket.onmessage = (event) => {
    lines.push(String(event.data));
    for (const wake of waiters.splice(0)) wake();
  };
  const closed = new Promise<CloseEvent>((resolve) => socket.onclose = resolve);
  await withTimeout(
    new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = () => reject(new Error("WebSocket failed to open"));
    }),
    WAIT_MS,
    "WebSocket open",
  );
  let read = 0;
  const next = () =>
    withTimeout(
      (async () => {
        while (read >= lines.length) await new Promise<void>((resolve) => waiters.push(resolve));
        return lines[read++]!;
      })(),
      WAIT_MS,
      "WebSocket line",
    );
  return { socket, next, closed };
}

/**
 * carol over TCP and dora over a WebSocket, both joined; carol has read dora's `JOINED`.
 * The caller closes carol.
 */
async function carolAndDora(server: TestServer) {
  const nc = await server.connect();
  try {
    await nc.hello();
    await join(nc, "carol");
    const ws = await openSocket(`ws://127.0.0.1:${server.webPort}/ws`);
    assert.match(await ws.next(), /^HELLO chatd /);
    ws.socket.send("JOIN dora");
    assert.equal(await ws.next(), "OK JOIN dora");
    assert.equal(await nc.readLine(), "JOINED dora");
    return { nc, ws };
  } catch (error: unknown) {
    nc.close();
    throw error;
  }
}

Deno.test({
  name: "the web port speaks the line protocol to a WebSocket client, one line per message",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using server = await TestServer.start();
    const { nc, ws } = await carolAndDora(server);
    await using _nc = nc;
    ws.socket.send("CHAT carol  two  spaces ");
    assert.equal(await nc.readLine(), "FROM dora  two  spaces ");
    await nc.send("CHAT dora é ünïcödé");
    assert.equal(await ws.next(), "FROM carol é ünïcödé");
    ws.socket.send("LEAV");
    assert.equal(await ws.next(), "BYE");
    const closed = await withTimeout(ws.closed, WAIT_MS, "close");
    assert.equal(closed.code, 1000);
    assert.equal(await nc.readLine(), "LEFT dora");
  },
});

Deno.test({
  name: "a message over the line limit closes the WebSocket with 1009 and frees the name",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using server = await TestServer.start(["--processes", "1", "--threads", "1"]);
    const { nc, ws } = await carolAndDora(server);
    await using _nc = nc;
    ws.socket.send(`CHAT * ${"x".repeat(4096 - "CHAT * ".length)}`);
    assert.equal(await nc.readLine(), `ALL dora ${"x".repeat(4096 - "CHAT * ".length)}`);
    ws.socket.send(`CHAT * ${"x".repeat(4096 - "CHAT * ".length + 1)}`);
    const closed = await withTimeout(ws.closed, WAIT_MS, "close");
    // The server reads the rest of the oversized frame before it closes: no reset overtakes
    // the close frame.
    assert.equal(closed.code, 1009);
    assert.equal(closed.reason, "message over 4096 bytes");
    assert.equal(await nc.readLine(), "LEFT dora");
  },
});

Deno.test({
  name: "the web port refuses a WebSocket from another origin with 403",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using server = await TestServer.start(["--processes", "1", "--threads", "1"]);
    const response = await fetch(`http://127.0.0.1:${server.webPort}/ws`, {
      headers: {
        Origin: "http://evil.example",
        Upgrade: "websocket",
        Connection: "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
      },
    });
    assert.equal(response.status, 403);
    assert.equal(await response.text(), "403 Forbidden: WebSocket from another origin\n");
  },
});

/** Waits until the message list holds an entry of `kind` whose body reads `body`. */
async function waitForEntry(page: Page, kind: string, body: string): Promise<void> {
  try {
    await page.waitForFunction(
      (kind: string, body: string) =>
        [...document.querySelectorAll("#messages li")].some((item) =>
          (item as HTMLElement).dataset.kind === kind &&
          item.querySelector(".body")?.textContent === body
        ),
      { timeout: WAIT_MS, polling: "mutation" },
      kind,
      body,
    );
  } catch (error: unknown) {
    throw new Error(
      `no ${kind} entry ${JSON.stringify(body)}; the list has ${
        JSON.stringify((await entries(page)).map((entry) =>
          entry.length > 120 ? `${entry.slice(0, 120)}…` : entry
        ))
      }`,
      { cause: error },
    );
  }
}

async function typeName(page: Page, name: string): Promise<void> {
  await page.waitForSelector("#name-form:not([hidden])", { timeout: WAIT_MS });
  await page.$eval("#name", (input) => (input as HTMLInputElement).value = "");
  await page.type("#name", name);
  await page.keyboard.press("Enter");
}

async function waitForNameError(page: Page, text: string): Promise<void> {
  await page.waitForFunction(
    (text: string) => document.getElementById("name-error")?.textContent === text,
    { timeout: WAIT_MS, polling: "mutation" },
    text,
  );
}

async function say(page: Page, text: string): Promise<void> {
  await page.focus("#text");
  await page.keyboard.type(text);
  await page.keyboard.press("Enter");
}

browserTest("two pages and an nc client chat through the page", async (t) => {
  await using server = await TestServer.start(["--processes", "2", "--threads", "2"]);
  const url = `http://127.0.0.1:${server.webPort}/`;
  await using browser = await launchBrowser();
  await using nc = await server.connect();
  await nc.hello();
  await join(nc, "carol");
  const pageErrors: string[] = [];
  // A CSP violation shows as a console error: none may happen. Chromium also logs each
  // WebSocket connection refused while the server is away, which the page handles by design
  // (it reconnects with backoff), so those are not errors of the page.
  const ignoreConsole = /^WebSocket connection to '.*' failed: .*ERR_CONNECTION_REFUSED$/;
  /** The HELLO lines alice's page received, from Chromium's view of its WebSockets. */
  const greetings: string[] = [];
  const alice = await browser.openPage(url, pageErrors, {
    ignoreConsole,
    async beforeLoad(page) {
      const devtools = await page.createCDPSession();
      devtools.on("Network.webSocketFrameReceived", (event) => {
        const text = event.response.payloadData;
        if (text.startsWith("HELLO ")) greetings.push(text);
      });
      await devtools.send("Network.enable");
    },
  });
  const bob = await browser.openPage(url, pageErrors, { ignoreConsole });

  await t.step("a taken name and an invalid name are explained and asked again", async () => {
    await typeName(alice, "Carol");
    await waitForNameError(alice, "The name Carol is taken. Choose another.");
    assert.equal(await alice.$eval("#name", (input) => input.getAttribute("aria-invalid")), "true");
    await typeName(alice, "no/slash");
    await waitForNameError(
      alice,
      "That name cannot be used: it may contain only A-Z a-z 0-9 _ -. " +
        "Use 1 to 32 letters, digits, _ or -.",
    );
    await typeName(alice, "alice");
    await waitForEntry(alice, "self", "You joined as alice.");
    assert.equal(await nc.readLine(), "JOINED alice");
    await waitForUsers(alice, ["alice", "carol"]);
  });

  await t.step("the user list follows joins", async () => {
    await typeName(bob, "bob");
    await waitForEntry(bob, "self", "You joined as bob.");
    await waitForEntry(alice, "join", "bob joined");
    await waitForUsers(alice, ["alice", "bob", "carol"]);
    await waitForUsers(bob, ["alice", "bob", "carol"]);
    assert.equal(await nc.readLine(), "JOINED bob");
  });

  await t.step("every control and region has an accessible name", async () => {
    type Node = { role: string; name?: string; children?: Node[] };
    const unnamed: string[] = [];
    const roles = new Set<string>();
    const walk = (node: Node) => {
      roles.add(node.role);
      if (["button", "textbox", "log", "list"].includes(node.role) && !node.name?.trim()) {
        unnamed.push(node.role);
      }
      node.children?.forEach(walk);
    };
    walk((await alice.accessibility.snapshot()) as Node);
    assert.deepEqual(unnamed, []);
    for (const role of ["button", "textbox", "log", "status"]) assert.ok(roles.has(role), role);
  });

  await t.step("room messages go both ways", async () => {
    await nc.send("CHAT * hello   from nc");
    await waitForEntry(alice, "room", "carol: hello   from nc");
    await waitForEntry(bob, "room", "carol: hello   from nc");
    await say(alice, "hi all");
    assert.equal(await nc.readLine(), "ALL alice hi all");
    await waitForEntry(bob, "room", "alice: hi all");
    await waitForEntry(alice, "mine", "alice: hi all");
  });

  await t.step(
    "a direct message from the page to nc and back, with the keyboard only",
    async () => {
      await alice.focus("#text");
      // Shift+Tab from the message field reaches the last user in the list: carol.
      await alice.keyboard.down("Shift");
      await alice.keyboard.press("Tab");
      await alice.keyboard.up("Shift");
      assert.equal(await alice.evaluate(() => document.activeElement?.textContent), "carol");
      await alice.keyboard.press("Enter");
      assert.equal(
        await alice.$eval("#target-text", (element) => element.textContent),
        "To carol only (direct)",
      );
      assert.equal(await alice.evaluate(() => document.activeElement?.id), "text");
      await alice.keyboard.type("psst <b>bold</b>");
      await alice.keyboard.press("Enter");
      assert.equal(await nc.readLine(), "FROM alice psst <b>bold</b>");
      await waitForEntry(alice, "mine-direct", "direct you → carol: psst <b>bold</b>");
      await nc.send("CHAT alice back at you");
      await waitForEntry(alice, "direct", "direct carol → you: back at you");
      // Escape goes back to writing to everyone.
      await alice.keyboard.press("Escape");
      assert.equal(
        await alice.$eval("#target-text", (element) => element.textContent),
        "To everyone",
      );
      await nc.send("CHAT * marker");
      await waitForEntry(bob, "room", "carol: marker");
      const bobSaw = (await entries(bob)).join("\n");
      assert.doesNotMatch(bobSaw, /psst|back at you/, "bob saw a direct message");
    },
  );

  await t.step("screenshots at desktop and phone width", async () => {
    const dir = SCREENSHOTS ?? await Deno.makeTempDir({ prefix: "chatd-screenshots-" });
    try {
      await Deno.mkdir(dir, { recursive: true });
      await nc.send("CHAT * see you both at 6");
      await waitForEntry(alice, "room", "carol: see you both at 6");
      await alice.screenshot({ path: joinPath(dir, "desktop.png") });
      await alice.setViewport({ width: 390, height: 800 });
      const fits = await alice.evaluate(() => document.documentElement.scrollWidth <= innerWidth);
      assert.equal(fits, true, "the page is wider than a phone");
      await alice.screenshot({ path: joinPath(dir, "phone.png") });
      await alice.setViewport({ width: 1100, height: 700 });
      for (const file of ["desktop.png", "phone.png"]) {
        const png = await Deno.readFile(joinPath(dir, file));
        assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47], `${file} is a PNG`);
      }
    } finally {
      if (SCREENSHOTS === undefined) await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step("HTML in what others send is shown as text", async () => {
    const word = "W".repeat(4096 - "CHAT * ".length);
    const lines = ["<img src=x onerror=window.pwned=1>", "<script>window.pwned=2</script>", word];
    for (const line of lines) await nc.send(`CHAT * ${line}`);
    for (const line of lines) await waitForEntry(alice, "room", `carol: ${line}`);
    const inside = await alice.evaluate(() => ({
      elements: document.querySelectorAll("#messages img, #messages script, #messages b").length,
      // deno-lint-ignore no-explicit-any
      pwned: (window as any).pwned ?? null,
      overflow: document.getElementById("messages")!.scrollWidth >
        document.getElementById("messages")!.clientWidth,
      bottom: (() => {
        const list = document.getElementById("messages")!;
        return list.scrollHeight - list.scrollTop - list.clientHeight < 8;
      })(),
    }));
    assert.deepEqual(inside, { elements: 0, pwned: null, overflow: false, bottom: true });
  });

  await t.step("a list scrolled up stays where it is", async () => {
    // Scroll events are dispatched with rendering, which a background tab does not do.
    await alice.bringToFront();
    await alice.$eval("#messages", (list) => list.scrollTop = 0);
    await alice.evaluate(() => new Promise((resolve) => requestAnimationFrame(resolve)));
    await nc.send("CHAT * while scrolled up");
    await waitForEntry(alice, "room", "carol: while scrolled up");
    assert.equal(await alice.$eval("#messages", (list) => list.scrollTop), 0);
    await alice.$eval("#messages", (list) => list.scrollTop = list.scrollHeight);
    await alice.evaluate(() => new Promise((resolve) => requestAnimationFrame(resolve)));
    // At the end, a narrower window (more lines for the 4 KB word) keeps the end in view.
    await alice.setViewport({ width: 390, height: 800 });
    await alice.waitForFunction(() => {
      const list = document.getElementById("messages")!;
      return list.scrollHeight > list.clientHeight * 2 &&
        list.scrollHeight - list.scrollTop - list.clientHeight < 8;
    }, { timeout: WAIT_MS, polling: 50 });
    await alice.setViewport({ width: 1100, height: 700 });
  });

  await t.step("Exit leaves: LEAV, and everyone sees it", async () => {
    await bob.bringToFront();
    await bob.click("#leave");
    await bob.waitForSelector("#left:not([hidden])", { timeout: WAIT_MS });
    await readUntil(nc, "LEFT bob");
    await waitForEntry(alice, "leave", "bob left");
    await waitForUsers(alice, ["alice", "carol"]);
  });

  await t.step(
    "after its chatd process is killed the page reconnects, waits for its name, joins again",
    async () => {
      // The HELLO alice's page got last names the process serving it.
      const greeting = greetings.at(-1)!;
      const pId = Number(/ p=(\d+) /.exec(greeting)![1]);
      // Witnesses on the other process, so that they survive the kill.
      await using dave = await connectTo(server, (where) => where.pId !== pId);
      await join(dave, "dave");
      await waitForEntry(alice, "join", "dave joined");
      await using mallory = await connectTo(server, (where) => where.pId !== pId);
      // Offline, the page's reconnects fail until the name is taken by someone else.
      await alice.setOfflineMode(true);
      const [pid] = server.childPids().get(pId)!;
      Deno.kill(pid!, "SIGKILL");
      await readUntil(dave, "LEFT alice");
      await waitForEntry(
        alice,
        "error",
        "Connection lost. Reconnecting; you will join again as alice.",
      );
      await join(mallory, "alice");
      await readUntil(dave, "JOINED alice");
      await alice.setOfflineMode(false);
      await alice.waitForFunction(
        () =>
          document.getElementById("status")?.textContent?.startsWith(
            "Your name alice is still held",
          ),
        { timeout: WAIT_MS, polling: "mutation" },
      );
      await mallory.send("LEAV");
      assert.equal(await mallory.readLine(), "BYE");
      await readUntil(dave, "LEFT alice");
      await readUntil(dave, "JOINED alice");
      await waitForEntry(alice, "self", "You joined again as alice.");
      await say(alice, "I am back");
      await readUntil(dave, "ALL alice I am back");
    },
  );

  await t.step("the page comes back after the whole server restarts", async () => {
    await server[Symbol.asyncDispose]();
    await waitForEntry(alice, "error", "The server says goodbye: shutting down.");
    await alice.waitForFunction(
      () => document.getElementById("status")?.textContent?.startsWith("Disconnected"),
      { timeout: WAIT_MS, polling: "mutation" },
    );
    // The same web port, for the page to find it again.
    await using restarted = await TestServer.start([
      "--processes",
      "2",
      "--threads",
      "2",
      "--web-port",
      String(server.webPort),
    ]);
    // The page's reconnect delay grows to 10 s ± 25% while the server is down (lines.js). It
    // says when it has its name back; whether erin joins before or after it does not matter.
    await alice.waitForFunction(
      () => document.getElementById("status")?.textContent === "Connected as alice",
      { timeout: WAIT_MS + 12_500, polling: "mutation" },
    );
    await using erin = await restarted.connect();
    await erin.hello();
    await join(erin, "erin");
    await erin.send("WHO");
    assert.equal(await erin.readLine(), "USERS 2 alice erin");
  });

  assert.deepEqual(pageErrors, []);
});

/**
 * The base64 SHA-256 of the certificate's public key (its SPKI), for Chromium's
 * `--ignore-certificate-errors-spki-list`.
 */
async function spkiHash(certPem: string): Promise<string> {
  const der = (pem: string) =>
    Uint8Array.from(atob(pem.replace(/-----[^-]+-----|\s/g, "")), (c) => c.charCodeAt(0));
  const output = await new Deno.Command("openssl", {
    args: ["x509", "-pubkey", "-noout"],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const writer = output.stdin.getWriter();
  await writer.write(new TextEncoder().encode(certPem));
  await writer.close();
  const { stdout } = await output.output();
  const digest = await crypto.subtle.digest("SHA-256", der(new TextDecoder().decode(stdout)));
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

browserTest("the page over https and wss with the test certificate", async () => {
  await using certs = await makeCerts();
  await using server = await TestServer.start([
    "--processes",
    "2",
    "--threads",
    "1",
    "--tls-cert",
    certs.certFile,
    "--tls-key",
    certs.keyFile,
  ]);
  // Chromium on Linux trusts CAs from an NSS database, which needs certutil (not installed);
  // it trusts this one leaf key instead. Any other certificate is still refused.
  await using browser = await launchBrowser([
    `--ignore-certificate-errors-spki-list=${await spkiHash(certs.cert)}`,
  ]);
  const pageErrors: string[] = [];
  const page = await browser.openPage(`https://127.0.0.1:${server.webPort}/`, pageErrors);
  await typeName(page, "alice");
  await waitForEntry(page, "self", "You joined as alice.");
  assert.equal(await page.evaluate(() => location.protocol), "https:");
  const conn = await Deno.connectTls({
    hostname: "127.0.0.1",
    port: server.port,
    caCerts: [certs.caCert],
  });
  using _ = conn;
  const buffer = new Uint8Array(4096);
  let text = "";
  const readLine = async () => {
    for (;;) {
      const newline = text.indexOf("\n");
      if (newline !== -1) {
        const line = text.slice(0, newline);
        text = text.slice(newline + 1);
        return line;
      }
      const n = await withTimeout(conn.read(buffer), WAIT_MS, "a TLS line");
      if (n === null) throw new Error("closed");
      text += new TextDecoder().decode(buffer.subarray(0, n));
    }
  };
  assert.match(await readLine(), /^HELLO /);
  await conn.write(new TextEncoder().encode("JOIN bob\nCHAT * hi alice\n"));
  assert.equal(await readLine(), "OK JOIN bob");
  await waitForEntry(page, "room", "bob: hi alice");
  await say(page, "hello over wss");
  let line: string;
  do line = await readLine(); while (line !== "ALL alice hello over wss");
  assert.deepEqual(pageErrors, []);
});
