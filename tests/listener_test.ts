import assert from "node:assert/strict";
import { ACCEPT_RETRY_MS, DRAIN_IDLE_MS, DRAIN_MAX_MS, Listener } from "../src/listener.ts";
import type { Transport } from "../src/transport.ts";
import { FakeAcceptor, FakeClock, FakeTransport, settle } from "./_fakes.ts";

function setup() {
  const clock = new FakeClock();
  const acceptor = new FakeAcceptor();
  const accepted: Transport[] = [];
  const failures: unknown[] = [];
  let stops = 0;
  const listener = new Listener(acceptor, {
    onAccept: (transport) => accepted.push(transport),
    onAcceptFailed: (error) => failures.push(error),
    onStopped: () => stops++,
    clock,
  });
  return { clock, acceptor, accepted, failures, listener, stops: () => stops };
}

Deno.test("a serving listener hands over every connection, one accept at a time", async () => {
  const { acceptor, accepted, listener } = setup();
  for (let i = 0; i < 3; i++) {
    await settle();
    assert.ok(acceptor.arrive(new FakeTransport()));
  }
  await settle();
  assert.equal(accepted.length, 3);
  assert.equal(listener.running, true);
});

Deno.test("an accept that fails (EMFILE) is retried after a pause: no spin, no end", async () => {
  const { clock, acceptor, accepted, failures, listener, stops } = setup();
  await settle();
  const emfile = new Error("Too many open files (os error 24)");
  assert.ok(acceptor.fail(emfile));
  await settle();
  assert.deepEqual(failures, [emfile]);
  assert.equal(listener.running, true);
  assert.equal(acceptor.closed, false);
  await clock.advance(ACCEPT_RETRY_MS - 1);
  assert.equal(acceptor.accepts, 1, "no accept before the pause is over");
  await clock.advance(1);
  assert.equal(acceptor.accepts, 2);
  assert.ok(acceptor.arrive(new FakeTransport()));
  await settle();
  assert.equal(accepted.length, 1);
  listener.stop();
  await listener.stopped;
  assert.equal(stops(), 1);
});

Deno.test("a listener stopped while it waits to retry a failed accept ends", async () => {
  const { clock, acceptor, listener, stops } = setup();
  await settle();
  acceptor.fail(new Error("Too many open files (os error 24)"));
  await settle();
  listener.stop();
  await listener.stopped;
  assert.equal(stops(), 1);
  assert.equal(acceptor.closed, true);
  await clock.advance(ACCEPT_RETRY_MS);
  assert.equal(acceptor.accepts, 1);
});

Deno.test("a draining listener closes once arrivals pause", async () => {
  const { clock, acceptor, accepted, listener, stops } = setup();
  await settle();
  listener.drain();
  await settle();
  await clock.advance(DRAIN_IDLE_MS - 1);
  assert.ok(acceptor.arrive(new FakeTransport()), "still accepting");
  await settle();
  await clock.advance(DRAIN_IDLE_MS - 1);
  assert.equal(acceptor.closed, false);
  await clock.advance(1);
  await listener.stopped;
  assert.equal(acceptor.closed, true);
  assert.equal(accepted.length, 1);
  assert.equal(listener.running, false);
  assert.equal(stops(), 1);
});

Deno.test("under steady arrivals a draining listener closes after the longest drain", async () => {
  const { clock, acceptor, listener } = setup();
  await settle();
  listener.drain();
  await settle();
  let elapsed = 0;
  while (!acceptor.closed && elapsed <= DRAIN_MAX_MS + DRAIN_IDLE_MS) {
    await clock.advance(DRAIN_IDLE_MS / 2);
    elapsed += DRAIN_IDLE_MS / 2;
    acceptor.arrive(new FakeTransport());
    await settle();
  }
  assert.equal(acceptor.closed, true);
  assert.ok(elapsed >= DRAIN_MAX_MS && elapsed <= DRAIN_MAX_MS + DRAIN_IDLE_MS, `${elapsed} ms`);
  await listener.stopped;
});

Deno.test("a stopped listener closes at once and ends", async () => {
  const { acceptor, accepted, listener, stops } = setup();
  await settle();
  listener.stop();
  await listener.stopped;
  assert.equal(acceptor.closed, true);
  assert.deepEqual(accepted, []);
  assert.equal(stops(), 1);
  listener.drain(); // too late: nothing happens
  assert.equal(acceptor.accepts, 1);
});

Deno.test("a connection accepted as the listener closes is still handed over", async (t) => {
  await t.step("when a drain ends", async () => {
    const { clock, acceptor, accepted, listener } = setup();
    await settle();
    const late = new FakeTransport();
    acceptor.lateArrival = late;
    listener.drain();
    await settle();
    await clock.advance(DRAIN_IDLE_MS);
    await listener.stopped;
    assert.deepEqual(accepted, [late]);
  });
  await t.step("when stopped", async () => {
    const { acceptor, accepted, listener } = setup();
    await settle();
    const late = new FakeTransport();
    acceptor.lateArrival = late;
    listener.stop();
    await listener.stopped;
    assert.deepEqual(accepted, [late]);
  });
});
