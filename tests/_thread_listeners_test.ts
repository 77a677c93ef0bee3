import assert from "node:assert/strict";
import {
  type AcceptorRequest,
  type MadeAcceptor,
  ThreadListeners,
} from "../src/_thread_listeners.ts";
import { DRAIN_IDLE_MS } from "../src/listener.ts";
import type { Logger } from "../src/log.ts";
import type { TlsKeyPair } from "../src/tcp_transport.ts";
import type { Transport } from "../src/transport.ts";
import { FakeAcceptor, FakeClock, FakeTransport, settle } from "./_fakes.ts";

const EP = "0-0-1-0";
const PAIR: TlsKeyPair = { cert: "new cert", key: "new key" };

/**
 * A set that listens on a plain and a TLS acceptor; each reload makes one new TLS acceptor,
 * or throws while `failReload` is set.
 */
function setup() {
  const clock = new FakeClock();
  const plain = new FakeAcceptor();
  const tls = new FakeAcceptor();
  /** Every TLS acceptor made by a reload, in order. */
  const reloaded: FakeAcceptor[] = [];
  const requests: AcceptorRequest[] = [];
  const accepted: Transport[] = [];
  const logged: string[] = [];
  let stops = 0;
  let failReload = false;
  const log = {
    info: (message: string, properties: Record<string, unknown>) =>
      logged.push(`info ${message} ${JSON.stringify(properties)}`),
    error: (message: string, properties: Record<string, unknown>) =>
      logged.push(`error ${message} ${String(properties.error)}`),
  } as unknown as Logger;
  const listeners = new ThreadListeners({
    acceptors: (request): MadeAcceptor[] => {
      requests.push(request);
      if (!request.onlyTls) return [{ acceptor: plain, tls: false }, { acceptor: tls, tls: true }];
      if (failReload) throw new TypeError("Cannot read the certificate: not PEM");
      const made = new FakeAcceptor();
      reloaded.push(made);
      return [{ acceptor: made, tls: true }];
    },
    onAccept: (transport) => accepted.push(transport),
    onAcceptFailed: () => {},
    onStopped: () => stops++,
    log,
    ep: EP,
    clock,
  });
  return {
    clock,
    plain,
    tls,
    reloaded,
    requests,
    accepted,
    logged,
    listeners,
    stops: () => stops,
    failReload: () => failReload = true,
  };
}

Deno.test("ThreadListeners listens on every acceptor made and hands over each connection", async () => {
  const { plain, tls, requests, accepted, listeners } = setup();
  listeners.listen();
  assert.deepEqual(requests, [{}]);
  await settle();
  const one = new FakeTransport();
  const two = new FakeTransport();
  assert.ok(plain.arrive(one));
  assert.ok(tls.arrive(two));
  await settle();
  assert.deepEqual(accepted, [one, two]);
  assert.equal(listeners.size, 2);
  assert.equal(listeners.running, true);
});

Deno.test("a TLS reload drains only the TLS listeners; the plain one and the new one serve on", async () => {
  const { clock, plain, tls, reloaded, requests, accepted, logged, listeners, stops } = setup();
  listeners.listen();
  await settle();
  assert.equal(listeners.reloadTls(PAIR), true);
  assert.deepEqual(requests, [{}, { tls: PAIR, onlyTls: true }]);
  await settle();
  // The old TLS listener still takes what arrives while it drains.
  const late = new FakeTransport();
  assert.ok(tls.arrive(late));
  await settle();
  assert.deepEqual(accepted, [late]);
  await clock.advance(DRAIN_IDLE_MS);
  assert.equal(tls.closed, true);
  assert.equal(plain.closed, false);
  assert.equal(reloaded[0]!.closed, false);
  assert.equal(listeners.size, 2, "the replaced listener left the set");
  assert.equal(stops(), 0, "the set still listens");
  assert.deepEqual(logged, [`info TLS certificate reloaded {"ep":"${EP}","replaced":1}`]);
  const fresh = new FakeTransport();
  assert.ok(reloaded[0]!.arrive(fresh));
  await settle();
  assert.deepEqual(accepted, [late, fresh]);

  // A second reload replaces the first one's listener, not the plain one.
  listeners.reloadTls(PAIR);
  await settle();
  await clock.advance(DRAIN_IDLE_MS);
  assert.equal(reloaded[0]!.closed, true);
  assert.equal(reloaded[1]!.closed, false);
  assert.equal(plain.closed, false);
  assert.equal(listeners.size, 2);
  assert.equal(logged[1], `info TLS certificate reloaded {"ep":"${EP}","replaced":1}`);
});

Deno.test("a reload whose listeners cannot be made keeps the old ones and logs why", async () => {
  const { clock, plain, tls, logged, listeners, failReload } = setup();
  listeners.listen();
  await settle();
  failReload();
  assert.equal(listeners.reloadTls(PAIR), false);
  await clock.advance(DRAIN_IDLE_MS * 2);
  assert.equal(tls.closed, false);
  assert.equal(plain.closed, false);
  assert.equal(listeners.size, 2);
  assert.deepEqual(logged, [
    "error TLS certificate not reloaded, the old one stays TypeError: Cannot read the certificate: not PEM",
  ]);
  assert.ok(tls.arrive(new FakeTransport()), "the old TLS listener still accepts");
});

Deno.test("a drained set closes every listener once arrivals pause and says so once, at the last", async () => {
  const { clock, plain, tls, logged, listeners, stops } = setup();
  listeners.listen();
  await settle();
  listeners.drain();
  await settle();
  assert.equal(listeners.running, true);
  assert.equal(stops(), 0);
  await clock.advance(DRAIN_IDLE_MS);
  assert.equal(plain.closed, true);
  assert.equal(tls.closed, true);
  assert.equal(listeners.running, false);
  assert.equal(stops(), 1);
  assert.deepEqual(logged, [`info thread stopped accepting {"ep":"${EP}"}`]);
});

Deno.test("a stopped set closes every listener at once and says so once", async () => {
  const { plain, tls, listeners, stops } = setup();
  listeners.listen();
  await settle();
  listeners.stop();
  assert.equal(plain.closed, true);
  assert.equal(tls.closed, true);
  await settle();
  assert.equal(listeners.running, false);
  assert.equal(stops(), 1);
});
