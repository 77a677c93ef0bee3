/**
 * The supervisor's HTTP endpoint for operators (`--metrics-port`): `GET /metrics` in the
 * Prometheus text format, `GET /healthz` (200 when every thread of every process serves,
 * 503 otherwise). A transport of its own, apart from the chat port: Deno's HTTP server.
 *
 * @module
 */
import { METRICS_CONTENT_TYPE } from "./metrics.ts";

/** What the endpoint asks of the supervisor. */
export interface MetricsSource {
  /** The `/metrics` text. */
  metrics(): string;
  /** True when every thread of every process serves. */
  healthy(): boolean;
}

/** A running metrics endpoint. */
export interface MetricsServer extends AsyncDisposable {
  /** The port it listens on (`--metrics-port 0` resolved). */
  readonly port: number;
}

/** Serves `source` on `hostname:port`; resolves once it listens. */
export async function serveMetrics(
  hostname: string,
  port: number,
  source: MetricsSource,
): Promise<MetricsServer> {
  const listening = Promise.withResolvers<number>();
  const server = Deno.serve({
    hostname,
    port,
    onListen: (addr) => listening.resolve(addr.port),
    onError: () => new Response("internal error\n", { status: 500 }),
  }, (request) => handle(request, source));
  const bound = await listening.promise;
  return {
    port: bound,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

function handle(request: Request, source: MetricsSource): Response {
  if (request.method !== "GET" && request.method !== "HEAD") {
    return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
  }
  const path = new URL(request.url).pathname;
  if (path === "/metrics") {
    return new Response(source.metrics(), { headers: { "content-type": METRICS_CONTENT_TYPE } });
  }
  if (path === "/healthz") {
    return source.healthy()
      ? new Response("ok\n", { headers: { "content-type": "text/plain" } })
      : new Response("unavailable\n", { status: 503, headers: { "content-type": "text/plain" } });
  }
  return new Response("not found\n", { status: 404 });
}
