import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type Assets,
  CONTENT_SECURITY_POLICY,
  errorResponse,
  loadAssets,
  originAllowed,
  parseRequestHead,
  type RequestHead,
  routeRequest,
  serializeResponse,
  type WebResponse,
} from "../src/_http.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function parse(text: string, limits = {}) {
  return parseRequestHead(encoder.encode(text), limits);
}

function head(text: string): RequestHead {
  const result = parse(text);
  if (result.kind !== "head") throw new Error(`not a head: ${JSON.stringify(result)}`);
  return result.head;
}

function field(response: WebResponse, name: string): string | undefined {
  return response.headers.find(([key]) => key.toLowerCase() === name.toLowerCase())?.[1];
}

const KEY = "dGhlIHNhbXBsZSBub25jZQ==";
const UPGRADE = [
  "GET /ws HTTP/1.1",
  "Host: 127.0.0.1:8080",
  "Upgrade: websocket",
  "Connection: keep-alive, Upgrade",
  `Sec-WebSocket-Key: ${KEY}`,
  "Sec-WebSocket-Version: 13",
  "Origin: http://127.0.0.1:8080",
];

function upgradeHead(change: Record<string, string | null> = {}): RequestHead {
  const lines = UPGRADE.filter((line) => {
    const name = line.split(":")[0]!;
    return !(name in change) || change[name] !== null;
  }).map((line) => {
    const name = line.split(":")[0]!;
    return name in change ? `${name}: ${change[name]}` : line;
  });
  for (const [name, value] of Object.entries(change)) {
    if (value !== null && !UPGRADE.some((line) => line.startsWith(`${name}:`))) {
      lines.push(`${name}: ${value}`);
    }
  }
  return head(lines.join("\r\n") + "\r\n\r\n");
}

const assets: Assets = new Map([
  ["/", { contentType: "text/html; charset=utf-8", body: encoder.encode("<p>page</p>") }],
]);

Deno.test("parseRequestHead reads a head and where the bytes after it start", () => {
  const text = "GET /ws?x=1 HTTP/1.1\r\nHost: a:1\r\nX-Two: 1\r\nx-two: 2\r\n\r\nFRAME";
  const result = parse(text);
  assert.equal(result.kind, "head");
  if (result.kind !== "head") return;
  assert.equal(result.head.method, "GET");
  assert.equal(result.head.target, "/ws?x=1");
  assert.equal(result.head.path, "/ws");
  assert.equal(result.head.version, "HTTP/1.1");
  assert.deepEqual([...result.head.headers], [["host", "a:1"], ["x-two", "1, 2"]]);
  assert.equal(decoder.decode(encoder.encode(text).subarray(result.end)), "FRAME");
});

Deno.test("parseRequestHead takes bare LF line ends and trims field values", () => {
  const parsed = head("GET / HTTP/1.1\nHost:   a  \n\n");
  assert.equal(parsed.headers.get("host"), "a");
});

Deno.test("parseRequestHead waits for the blank line, at every cut of a head", () => {
  const text = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  for (let cut = 0; cut < text.length; cut++) {
    assert.deepEqual(parse(text.slice(0, cut)), { kind: "incomplete" }, `cut ${cut}`);
  }
  assert.equal(parse(text).kind, "head");
});

Deno.test("parseRequestHead refuses bad heads with the status that fits", async (t) => {
  const cases: [string, string, number, string, Record<string, number>?][] = [
    ["no Host in HTTP/1.1", "GET / HTTP/1.1\r\n\r\n", 400, "no Host"],
    ["two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "more than one Host"],
    ["a garbled request line", "GET /\r\nHost: a\r\n\r\n", 400, "bad request line"],
    [
      "HTTP/2 on the request line",
      "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
      505,
      "only HTTP/1.0 and HTTP/1.1",
    ],
    ["an absolute target", "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad request target"],
    ["a method with a bad character", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad method"],
    ["a space before the colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400, "bad header field"],
    ["a field without a colon", "GET / HTTP/1.1\r\nHost a\r\n\r\n", 400, "bad header field"],
    [
      "obsolete line folding",
      "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n  2\r\n\r\n",
      400,
      "bad header field",
    ],
    [
      "a control character in a value",
      "GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n",
      400,
      "bad value of host",
    ],
    ["a bare CR in a value", "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", 400, "bad value of host"],
    ["a non-ASCII byte", "GET /é HTTP/1.1\r\nHost: a\r\n\r\n", 400, "non-ASCII byte in head"],
    [
      "too many fields",
      "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n",
      431,
      "over 2 header fields",
      { maxHeaders: 2 },
    ],
    [
      "a head over the byte limit, not even complete",
      "GET / HTTP/1.1\r\nHost: " + "a".repeat(100),
      431,
      "request head over 64 bytes",
      { maxHeadBytes: 64 },
    ],
    [
      "a complete head over the byte limit",
      "GET / HTTP/1.1\r\nHost: " + "a".repeat(100) + "\r\n\r\n",
      431,
      "request head over 64 bytes",
      { maxHeadBytes: 64 },
    ],
  ];
  for (const [name, text, status, reason, limits] of cases) {
    await t.step(name, () => {
      assert.deepEqual(parse(text, limits), { kind: "error", status, reason });
    });
  }
});

Deno.test("a head of exactly the byte limit is accepted", () => {
  const text = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  assert.equal(parse(text, { maxHeadBytes: text.length }).kind, "head");
  assert.equal(parse(text, { maxHeadBytes: text.length - 1 }).kind, "error");
});

Deno.test("property: parseRequestHead never throws and never reads past its limit", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      const result = parseRequestHead(bytes, { maxHeadBytes: 128 });
      if (result.kind === "head") assert.ok(result.end <= 128);
      if (result.kind === "incomplete") assert.ok(bytes.length < 128);
    }),
  );
  fc.assert(
    fc.property(fc.string({ maxLength: 200 }), (tail) => {
      parse(`GET / HTTP/1.1\r\n${tail}\r\n\r\n`);
    }),
  );
});

Deno.test("serializeResponse writes the status line, the fields and the body", () => {
  const bytes = serializeResponse({
    status: 404,
    headers: [["Content-Length", "2"], ["X", "y"]],
    body: encoder.encode("no"),
  });
  assert.equal(
    decoder.decode(bytes),
    "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nX: y\r\n\r\nno",
  );
});

Deno.test("the page and its assets are served with their types and security fields", async () => {
  const real = await loadAssets();
  const expected: [string, string, string][] = [
    ["/", "text/html; charset=utf-8", "<!doctype html>"],
    ["/app.js", "text/javascript; charset=utf-8", "//"],
    ["/lines.js", "text/javascript; charset=utf-8", "//"],
    ["/style.css", "text/css; charset=utf-8", "/*"],
    ["/favicon.svg", "image/svg+xml", "<svg"],
  ];
  for (const [path, type, start] of expected) {
    const route = routeRequest(head(`GET ${path}?v=1 HTTP/1.1\r\nHost: a\r\n\r\n`), {
      assets: real,
    });
    assert.equal(route.kind, "respond");
    const { response } = route;
    assert.equal(response.status, 200, path);
    assert.equal(field(response, "Content-Type"), type);
    assert.equal(field(response, "Content-Length"), String(response.body.length));
    assert.equal(field(response, "Cache-Control"), "no-cache");
    assert.equal(field(response, "X-Content-Type-Options"), "nosniff");
    assert.equal(field(response, "Content-Security-Policy"), CONTENT_SECURITY_POLICY);
    assert.equal(field(response, "Connection"), "close");
    assert.ok(decoder.decode(response.body).startsWith(start), path);
  }
});

Deno.test("the Content-Security-Policy allows no inline script or style and nothing foreign", () => {
  const directives = new Map(
    CONTENT_SECURITY_POLICY.split("; ").map((directive) => {
      const [name, ...values] = directive.split(" ");
      return [name!, values.join(" ")];
    }),
  );
  assert.equal(directives.get("default-src"), "'none'");
  assert.equal(directives.get("script-src"), "'self'");
  assert.equal(directives.get("style-src"), "'self'");
  assert.equal(directives.get("connect-src"), "'self'");
  assert.equal(directives.get("frame-ancestors"), "'none'");
  assert.doesNotMatch(CONTENT_SECURITY_POLICY, /unsafe|\*|data:|http/);
});

Deno.test("the page holds no inline script, style or event handler", async () => {
  const html = decoder.decode((await loadAssets()).get("/")!.body);
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)/, "a script without src");
  assert.doesNotMatch(html, /<style|\sstyle=/, "inline style");
  assert.doesNotMatch(html, /\son[a-z]+=/, "inline event handler");
});

Deno.test("other paths are 404 and other methods 405", () => {
  const missing = routeRequest(head("GET /nope HTTP/1.1\r\nHost: a\r\n\r\n"), { assets });
  assert.equal(missing.response.status, 404);
  assert.equal(decoder.decode(missing.response.body), "404 Not Found: no such page: /nope\n");
  assert.equal(field(missing.response, "X-Content-Type-Options"), "nosniff");
  for (const method of ["POST", "HEAD", "PUT", "DELETE", "OPTIONS", "get"]) {
    const route = routeRequest(head(`${method} / HTTP/1.1\r\nHost: a\r\n\r\n`), { assets });
    assert.equal(route.kind, "respond");
    assert.equal(route.response.status, 405, method);
    assert.equal(field(route.response, "Allow"), "GET");
  }
});

Deno.test("a good upgrade is answered 101 with the accept key", () => {
  const route = routeRequest(upgradeHead(), { assets });
  assert.equal(route.kind, "upgrade");
  assert.equal(
    decoder.decode(serializeResponse(route.response)),
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
  );
});

Deno.test("bad upgrades are refused with the status that fits", async (t) => {
  const cases: [string, Record<string, string | null>, number][] = [
    ["no Upgrade field", { Upgrade: null }, 426],
    ["Upgrade: h2c", { Upgrade: "h2c" }, 426],
    ["no upgrade token in Connection", { Connection: "keep-alive" }, 426],
    ["version 8", { "Sec-WebSocket-Version": "8" }, 426],
    ["no version", { "Sec-WebSocket-Version": null }, 426],
    ["no key", { "Sec-WebSocket-Key": null }, 400],
    ["a key of 15 bytes", { "Sec-WebSocket-Key": btoa("0123456789abcde") }, 400],
    ["another origin", { Origin: "http://evil.example" }, 403],
    ["the same host over another scheme", { Origin: "https://127.0.0.1:8080" }, 403],
    ["the same host on another port", { Origin: "http://127.0.0.1:8081" }, 403],
    ["an origin of null", { Origin: "null" }, 403],
  ];
  for (const [name, change, status] of cases) {
    await t.step(name, () => {
      const route = routeRequest(upgradeHead(change), { assets });
      assert.equal(route.kind, "respond");
      assert.equal(route.response.status, status);
    });
  }
  await t.step("a WebSocket over HTTP/1.0", () => {
    const text = UPGRADE.join("\r\n").replace("HTTP/1.1", "HTTP/1.0") + "\r\n\r\n";
    const route = routeRequest(head(text), { assets });
    assert.equal(route.response.status, 426);
  });
});

Deno.test("the Origin check: own origin, the allowed list, no Origin at all", async (t) => {
  await t.step("upper-case host and the default port are the same origin", () => {
    assert.equal(originAllowed("http://LOCALHOST", "localhost:80"), true);
    assert.equal(originAllowed("https://localhost", "localhost:443", { secure: true }), true);
    assert.equal(originAllowed("http://localhost", "localhost", { secure: true }), false);
  });
  await t.step("--web-origin allows another origin", () => {
    const options = { assets, allowedOrigins: ["https://chat.example.org"] };
    const allowed = routeRequest(
      upgradeHead({ Origin: "https://chat.example.org" }),
      options,
    );
    assert.equal(allowed.kind, "upgrade");
    const other = routeRequest(upgradeHead({ Origin: "https://evil.example.org" }), options);
    assert.equal(other.response.status, 403);
  });
  await t.step("no Origin is not a browser: allowed", () => {
    const route = routeRequest(upgradeHead({ Origin: null }), { assets });
    assert.equal(route.kind, "upgrade");
  });
  await t.step("an Origin that is no URL is refused", () => {
    assert.equal(originAllowed("not a url", "a"), false);
    assert.equal(originAllowed("file:///etc", "a"), false);
  });
});

Deno.test("errorResponse closes the connection and says why in plain text", () => {
  const response = errorResponse(400, "bad request line");
  assert.equal(field(response, "Content-Type"), "text/plain; charset=utf-8");
  assert.equal(field(response, "Connection"), "close");
  assert.equal(decoder.decode(response.body), "400 Bad Request: bad request line\n");
});
