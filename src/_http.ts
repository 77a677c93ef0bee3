/**
 * Just enough HTTP/1.1 for the web port, free of I/O: a request-head parser with limits, the
 * responses for the page and its assets, and the WebSocket upgrade with its Origin check.
 * Every response but the upgrade closes the connection (`Connection: close`), so a server
 * never reads a request body or a second request.
 *
 * @module
 */
import { acceptKey, isValidWebSocketKey } from "./_websocket.ts";

/** A parsed request head. */
export interface RequestHead {
  /** The method as sent (methods are case-sensitive). */
  method: string;
  /** The request target as sent, such as `/ws?x=1`. */
  target: string;
  /** The target's path, without the query. */
  path: string;
  /** `HTTP/1.1` or `HTTP/1.0`. */
  version: string;
  /** Header fields by lower-case name; repeated fields joined with `, `. */
  headers: Map<string, string>;
}

/** What {@linkcode parseRequestHead} found. */
export type HeadResult =
  /** The head is not complete yet: read more bytes (up to the head limit). */
  | { kind: "incomplete" }
  /** A complete head; the bytes after it start at `end` (WebSocket frames after an upgrade). */
  | { kind: "head"; head: RequestHead; end: number }
  /** A bad head: answer with {@linkcode errorResponse}`(status, reason)` and close. */
  | { kind: "error"; status: number; reason: string };

/** Limits of {@linkcode parseRequestHead}. */
export interface HeadLimits {
  /** The longest head, request line and fields with their line ends. Default 8192. */
  maxHeadBytes?: number;
  /** The most header fields. Default 64. */
  maxHeaders?: number;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Field values: visible ASCII, SP and HTAB (obs-text, bytes over 0x7f, is refused). */
const FIELD_VALUE = /^[\t\x20-\x7e]*$/;

/** Where the head ends: the index after its blank line, or -1. Lines end in CRLF or LF. */
function headEnd(bytes: Uint8Array, limit: number): number {
  const stop = Math.min(bytes.length, limit);
  for (let i = 1; i < stop; i++) {
    if (bytes[i] !== 10) continue;
    if (bytes[i - 1] === 10) return i + 1;
    if (bytes[i - 1] === 13 && i >= 2 && bytes[i - 2] === 10) return i + 1;
  }
  return -1;
}

/**
 * Parses the head at the start of `bytes` (what has arrived so far). A head that is not
 * complete within `maxHeadBytes` is an error (431), so a caller never holds more.
 */
export function parseRequestHead(bytes: Uint8Array, limits: HeadLimits = {}): HeadResult {
  const maxHeadBytes = limits.maxHeadBytes ?? 8192;
  const maxHeaders = limits.maxHeaders ?? 64;
  const end = headEnd(bytes, maxHeadBytes);
  if (end === -1) {
    return bytes.length >= maxHeadBytes
      ? { kind: "error", status: 431, reason: `request head over ${maxHeadBytes} bytes` }
      : { kind: "incomplete" };
  }
  let text = "";
  for (let i = 0; i < end; i++) {
    const byte = bytes[i]!;
    if (byte >= 0x80) return { kind: "error", status: 400, reason: "non-ASCII byte in head" };
    text += String.fromCharCode(byte);
  }
  const lines = text.split("\n").map((line) => line.endsWith("\r") ? line.slice(0, -1) : line);
  lines.length -= 2; // The blank line and what follows its LF.
  const requestLine = /^([^ ]+) ([^ ]+) (HTTP\/1\.[01])$/.exec(lines[0] ?? "");
  if (!requestLine) {
    return /^[^ ]+ [^ ]+ HTTP\/\d/.test(lines[0] ?? "")
      ? { kind: "error", status: 505, reason: "only HTTP/1.0 and HTTP/1.1" }
      : { kind: "error", status: 400, reason: "bad request line" };
  }
  const [, method, target, version] = requestLine as unknown as [string, string, string, string];
  if (!TOKEN.test(method)) return { kind: "error", status: 400, reason: "bad method" };
  if (!target.startsWith("/") || !/^[\x21-\x7e]+$/.test(target)) {
    return { kind: "error", status: 400, reason: "bad request target" };
  }
  if (lines.length - 1 > maxHeaders) {
    return { kind: "error", status: 431, reason: `over ${maxHeaders} header fields` };
  }
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).toLowerCase();
    // No colon, a space before it (RFC 9112 section 5.1), or obsolete line folding.
    if (colon <= 0 || !TOKEN.test(name)) {
      return { kind: "error", status: 400, reason: "bad header field" };
    }
    const value = line.slice(colon + 1).trim();
    if (!FIELD_VALUE.test(value)) {
      return { kind: "error", status: 400, reason: `bad value of ${name}` };
    }
    const before = headers.get(name);
    if (before !== undefined && name === "host") {
      return { kind: "error", status: 400, reason: "more than one Host" };
    }
    headers.set(name, before === undefined ? value : `${before}, ${value}`);
  }
  if (version === "HTTP/1.1" && !headers.has("host")) {
    return { kind: "error", status: 400, reason: "no Host" };
  }
  const query = target.indexOf("?");
  const path = query === -1 ? target : target.slice(0, query);
  return { kind: "head", head: { method, target, path, version, headers }, end };
}

/** A response to write: status, header fields in order, body. */
export interface WebResponse {
  status: number;
  headers: [string, string][];
  body: Uint8Array;
}

const REASONS: Record<number, string> = {
  101: "Switching Protocols",
  200: "OK",
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  426: "Upgrade Required",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  505: "HTTP Version Not Supported",
};

const encoder = new TextEncoder();

/** The bytes of `response`, status line, fields and body. */
export function serializeResponse(response: WebResponse): Uint8Array {
  let head = `HTTP/1.1 ${response.status} ${REASONS[response.status] ?? "Unknown"}\r\n`;
  for (const [name, value] of response.headers) head += `${name}: ${value}\r\n`;
  head += "\r\n";
  const headBytes = encoder.encode(head);
  // The upgrade's 101 has no body: no second copy.
  if (response.body.length === 0) return headBytes;
  const bytes = new Uint8Array(headBytes.length + response.body.length);
  bytes.set(headBytes);
  bytes.set(response.body, headBytes.length);
  return bytes;
}

/**
 * The Content-Security-Policy of every response: scripts, styles and connections only from
 * the page's own origin (no inline script or style), nothing else at all.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** Fields every response carries. */
const SECURITY_HEADERS: [string, string][] = [
  ["Content-Security-Policy", CONTENT_SECURITY_POLICY],
  ["X-Content-Type-Options", "nosniff"],
  ["Referrer-Policy", "no-referrer"],
];

/** A plain-text response that closes the connection. */
export function errorResponse(
  status: number,
  reason: string,
  extra: [string, string][] = [],
): WebResponse {
  const body = encoder.encode(`${status} ${REASONS[status] ?? "Error"}: ${reason}\n`);
  return {
    status,
    headers: [
      ["Content-Type", "text/plain; charset=utf-8"],
      ["Content-Length", String(body.length)],
      ["Cache-Control", "no-store"],
      ...SECURITY_HEADERS,
      ...extra,
      ["Connection", "close"],
    ],
    body,
  };
}

/** One embedded file of the page. */
export interface Asset {
  contentType: string;
  body: Uint8Array;
}

/** The page's files by URL path. */
export type Assets = ReadonlyMap<string, Asset>;

/** The files of src/web/, by the path they are served at, with their content types. */
const ASSET_FILES: [path: string, file: string, contentType: string][] = [
  ["/", "index.html", "text/html; charset=utf-8"],
  ["/app.js", "app.js", "text/javascript; charset=utf-8"],
  ["/lines.js", "lines.js", "text/javascript; charset=utf-8"],
  ["/style.css", "style.css", "text/css; charset=utf-8"],
  ["/favicon.svg", "favicon.svg", "image/svg+xml"],
];

/**
 * Reads the page's files from src/web/ beside this module (inside a compiled binary too,
 * which `compile.sh` builds with `--include src/web`).
 *
 * @throws {Deno.errors.NotFound} when a file is missing.
 */
export async function loadAssets(): Promise<Assets> {
  const assets = new Map<string, Asset>();
  for (const [path, file, contentType] of ASSET_FILES) {
    const body = await Deno.readFile(new URL(`./web/${file}`, import.meta.url));
    assets.set(path, { contentType, body });
  }
  return assets;
}

/** Options of {@linkcode routeRequest}. */
export interface RouteOptions {
  /** The page's files (from {@linkcode loadAssets}). */
  assets: Assets;
  /** Origins besides the page's own allowed to open a WebSocket (`--web-origin`). */
  allowedOrigins?: readonly string[];
  /** True when the page is served over https (its origin is then `https://HOST`). */
  secure?: boolean;
  /** The WebSocket path. Default `/ws`. */
  webSocketPath?: string;
}

/** What to do with a request. */
export type Route =
  /** Write the response and close the connection. */
  | { kind: "respond"; response: WebResponse }
  /** Write the 101 response; the connection speaks WebSocket from here on. */
  | { kind: "upgrade"; response: WebResponse };

/** True when the comma-separated `field` holds `token`, compared case-insensitively. */
function hasToken(field: string | undefined, token: string): boolean {
  return field?.split(",").some((part) => part.trim().toLowerCase() === token) ?? false;
}

/** `scheme://host[:port]` normalised as a browser sends it in `Origin`, or undefined. */
function normalOrigin(origin: string): string | undefined {
  try {
    const url = new URL(origin);
    if (url.protocol !== "http:" && url.protocol !== "https:") return undefined;
    return url.origin;
  } catch {
    return undefined;
  }
}

/**
 * True when a WebSocket from `origin` may connect: no `Origin` at all (not a browser, so no
 * cross-site hijacking is possible), the page's own origin (the scheme it is served with
 * and the request's `Host`), or one of `allowed`.
 */
export function originAllowed(
  origin: string | undefined,
  host: string | undefined,
  options: { secure?: boolean; allowedOrigins?: readonly string[] } = {},
): boolean {
  if (origin === undefined) return true;
  const normal = normalOrigin(origin);
  if (normal === undefined) return false;
  if (host !== undefined) {
    const own = normalOrigin(`${options.secure ? "https" : "http"}://${host}`);
    if (own !== undefined && own === normal) return true;
  }
  return (options.allowedOrigins ?? []).some((allowed) => normalOrigin(allowed) === normal);
}

/**
 * Decides the answer to a request: the page, an asset, the WebSocket upgrade, or an error.
 * Only GET is served (405 otherwise); unknown paths are 404.
 */
export function routeRequest(head: RequestHead, options: RouteOptions): Route {
  const respond = (response: WebResponse): Route => ({ kind: "respond", response });
  if (head.method !== "GET") {
    return respond(errorResponse(405, `${head.method} is not served`, [["Allow", "GET"]]));
  }
  if (head.path === (options.webSocketPath ?? "/ws")) return upgrade(head, options);
  const asset = options.assets.get(head.path);
  if (asset === undefined) return respond(errorResponse(404, `no such page: ${head.path}`));
  return respond({
    status: 200,
    headers: [
      ["Content-Type", asset.contentType],
      ["Content-Length", String(asset.body.length)],
      // The files have fixed names, so a browser must ask again each time (after an upgrade of
      // chatd, it sees the new page at once).
      ["Cache-Control", "no-cache"],
      ...SECURITY_HEADERS,
      ["Connection", "close"],
    ],
    body: asset.body,
  });
}

function upgrade(head: RequestHead, options: RouteOptions): Route {
  const { headers } = head;
  const respond = (response: WebResponse): Route => ({ kind: "respond", response });
  if (
    head.version !== "HTTP/1.1" || !hasToken(headers.get("upgrade"), "websocket") ||
    !hasToken(headers.get("connection"), "upgrade")
  ) {
    return respond(
      errorResponse(426, "this path speaks WebSocket only", [
        ["Upgrade", "websocket"],
        ["Sec-WebSocket-Version", "13"],
      ]),
    );
  }
  if (headers.get("sec-websocket-version") !== "13") {
    return respond(
      errorResponse(426, "only WebSocket version 13", [["Sec-WebSocket-Version", "13"]]),
    );
  }
  const key = headers.get("sec-websocket-key") ?? "";
  if (!isValidWebSocketKey(key)) return respond(errorResponse(400, "bad Sec-WebSocket-Key"));
  if (!originAllowed(headers.get("origin"), headers.get("host"), options)) {
    return respond(errorResponse(403, "WebSocket from another origin"));
  }
  return {
    kind: "upgrade",
    response: {
      status: 101,
      headers: [
        ["Upgrade", "websocket"],
        ["Connection", "Upgrade"],
        ["Sec-WebSocket-Accept", acceptKey(key)],
      ],
      body: new Uint8Array(0),
    },
  };
}
