/**
 * Why src/_websocket.ts exists, measured: runs Deno's own server WebSocket
 * (`Deno.upgradeWebSocket`) against a peer that completes the handshake and then never reads
 * or answers, and prints what happens. Not a test; run it by hand:
 *
 *     deno run -A tests/_deno_websocket_probe.ts
 *
 * On Deno 2.9.6 it printed `{"sent_MiB":48,"send_threw":0,"bufferedAmount_MiB":44.3,
 * "rss_growth_MiB":96.8,"after_close":"no onclose within 30 s","readyState_after":2}`:
 * `send()` never pushes back or throws, and a `close()`d socket stays CLOSING
 * (denoland/deno#27924).
 *
 * @module
 */
const results: Record<string, unknown> = {};
let serverSocket: WebSocket | undefined;
const opened = Promise.withResolvers<void>();
const closedAt = Promise.withResolvers<number>();
const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
  const { socket, response } = Deno.upgradeWebSocket(req);
  serverSocket = socket;
  socket.onopen = () => opened.resolve();
  socket.onclose = () => closedAt.resolve(performance.now());
  return response;
});
const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
await conn.write(new TextEncoder().encode(
  "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
));
await conn.read(new Uint8Array(1024)); // the 101; never read again
await opened.promise;
const rss0 = Deno.memoryUsage().rss;
const msg = "x".repeat(1024);
let threw = 0;
for (let i = 0; i < 48 * 1024; i++) {
  try {
    serverSocket!.send(msg);
  } catch {
    threw++;
  }
  if (i % 1024 === 0) await new Promise((r) => setTimeout(r, 0));
}
await new Promise((r) => setTimeout(r, 500));
results.sent_MiB = 48;
results.send_threw = threw;
results.bufferedAmount_MiB = +(serverSocket!.bufferedAmount / 2 ** 20).toFixed(1);
results.rss_growth_MiB = +((Deno.memoryUsage().rss - rss0) / 2 ** 20).toFixed(1);
const t0 = performance.now();
serverSocket!.close(1000);
const closed = await Promise.race([
  closedAt.promise.then((t) => `onclose after ${((t - t0) / 1000).toFixed(1)} s`),
  new Promise((r) => setTimeout(() => r("no onclose within 30 s"), 30_000)),
]);
results.after_close = closed;
results.readyState_after = serverSocket!.readyState;
console.log(JSON.stringify(results));
conn.close();
await server.shutdown().catch(() => {});
Deno.exit(0);
