import assert from "node:assert/strict";
import {
  connectTo,
  join,
  type LineClient,
  rssMiB,
  TestServer,
  waitUntil,
  withTimeout,
} from "./test_util.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

Deno.test("a line over --max-line-bytes gets ERR LINE_TOO_LONG and the connection stays usable", async (t) => {
  await using server = await TestServer.start(["--max-line-bytes", "100"]);
  await using client = await server.connect();
  await client.hello();
  await t.step("exactly the limit is accepted", async () => {
    await client.send("PING " + "x".repeat(95));
    assert.equal(await client.readLine(), "PONG " + "x".repeat(95));
  });
  await t.step("one byte more is refused", async () => {
    await client.send("PING " + "x".repeat(96));
    assert.equal(await client.readLine(), "ERR LINE_TOO_LONG");
    await client.send("PING after");
    assert.equal(await client.readLine(), "PONG after");
  });
  await t.step(
    "a line that never ends is refused before it ends, and skipped to its LF",
    async () => {
      await client.sendBytes(encoder.encode("PING " + "y".repeat(100_000)));
      assert.equal(await client.readLine(), "ERR LINE_TOO_LONG");
      await client.sendBytes(encoder.encode("z".repeat(100_000) + "\nPING recovered\n"));
      assert.equal(await client.readLine(), "PONG recovered");
    },
  );
});

Deno.test("invalid UTF-8 gets ERR BAD_ENCODING; control characters in text get ERR BAD_TEXT", async () => {
  await using server = await TestServer.start();
  await using client = await server.connect();
  await client.hello();
  await client.sendBytes(new Uint8Array([0x50, 0x49, 0x4e, 0x47, 0x20, 0xff, 0xfe, 0x0a]));
  assert.equal(await client.readLine(), "ERR BAD_ENCODING lines must be UTF-8");
  await client.sendBytes(new Uint8Array([0xc3, 0x28, 0x0a])); // a broken two-byte sequence
  assert.equal(await client.readLine(), "ERR BAD_ENCODING lines must be UTF-8");
  await join(client, "alice");
  for (const evil of ["\x1b[2J", "nul\x00", "bell\x07", "csi\u009b31m", "del\x7f"]) {
    await client.send(`CHAT alice ${evil}`);
    assert.equal(await client.readLine(), "ERR BAD_TEXT control characters are not allowed");
  }
  await client.send("CHAT alice tab\tis fine");
  assert.equal(await client.readLine(), "FROM alice tab\tis fine");
});

Deno.test("a connection that does not JOIN within --join-timeout gets ERR TIMEOUT and is closed", async () => {
  await using server = await TestServer.start(["--join-timeout", "0.5"]);
  await using idle = await server.connect();
  await idle.hello();
  await using joined = await server.connect();
  await joined.hello();
  await join(joined, "stays");
  assert.equal(await idle.readLine(2000), "ERR TIMEOUT no JOIN in time");
  await idle.expectEof();
  // The timeout has passed for the joined client too; it is kept.
  await joined.send("PING still");
  assert.equal(await joined.readLine(), "PONG still");
});

Deno.test("a client over --rate is slowed down, loses nothing, and starves nobody", async () => {
  await using server = await TestServer.start(
    ["--processes", "1", "--threads", "1", "--rate", "20", "--burst", "5"],
  );
  await using flooder = await server.connect();
  await flooder.hello();
  await using other = await server.connect();
  await other.hello();
  const count = 40; // 5 at once, then 20 a second: the last PONG after 35 / 20 = 1.75 s
  const flooderLines: string[] = [];
  const startedAt = performance.now();
  await flooder.sendBytes(
    encoder.encode(Array.from({ length: count }, (_, i) => `PING ${i}\n`).join("")),
  );
  const flooderDone = (async () => {
    while (flooderLines.length < count) flooderLines.push(await flooder.readLine(10_000));
    return performance.now() - startedAt;
  })();
  // The burst comes back at once.
  await waitUntil(() => flooderLines.length >= 5, 5000, "the burst's five PONGs");
  // The other client, on the same thread, is answered while the flood is still held back.
  await other.send("PING me");
  assert.equal(await other.readLine(), "PONG me");
  assert.ok(flooderLines.length < count, "the flood was answered before the other client");
  const elapsed = await flooderDone;
  assert.deepEqual(flooderLines, Array.from({ length: count }, (_, i) => `PONG ${i}`));
  // The documented rate: 35 lines past the burst at 20 a second cannot take less than 1.75 s.
  assert.ok(elapsed >= 1700, `40 lines at --rate 20 --burst 5 answered in ${elapsed} ms`);
});

Deno.test("--rate 0 turns flood control off", async () => {
  await using server = await TestServer.start(
    ["--processes", "1", "--threads", "1", "--rate", "0", "--burst", "5"],
  );
  await using client = await server.connect();
  await client.hello();
  // At the default 20 lines a second after a burst of 100 these would take 15 s.
  const count = 400;
  await client.sendBytes(
    encoder.encode(Array.from({ length: count }, (_, i) => `PING ${i}\n`).join("")),
  );
  const lines = await withTimeout(client.readLines(count), 7000, "400 PONGs without a limit");
  assert.deepEqual(lines, Array.from({ length: count }, (_, i) => `PONG ${i}`));
});

Deno.test("a client that stops reading is dropped as a slow consumer; memory stays bounded; others go on", async () => {
  await using server = await TestServer.start([
    "--processes",
    "2",
    "--threads",
    "1",
    "--rate",
    "0",
  ]);
  await using victim = await connectTo(server, (where) => where.pId === 0);
  await join(victim, "victim");
  await using sender = await connectTo(server, (where) => where.pId === 1);
  await join(sender, "sender");
  await using bystander = await connectTo(server, (where) => where.pId === 0);
  await join(bystander, "bystander");
  const [victimPid] = server.childPids().get(0)!;
  const baseRss = rssMiB(victimPid!);

  // 20 MB addressed to a client that never reads. The sender's own replies are read as they
  // come, so that the sender is not a slow consumer itself.
  const text = "v".repeat(4000);
  const senderSaw = new Set<string>();
  const reading = (async () => {
    while (!senderSaw.has("PONG done") || !senderSaw.has("LEFT victim")) {
      const line = await sender.readLineOrEof(20_000);
      if (line === null) throw new Error("the sender was disconnected");
      senderSaw.add(line);
    }
  })();
  // Once dropped, the victim reads what its socket holds: the error is among it (what was
  // already on its way when the error was queued may come after it).
  const victimSaw = (async () => {
    await server.waitForLog({ msg: "slow consumer dropped", name: "victim" }, {
      timeoutMs: 30_000,
    });
    const error = "\nERR SLOW_CONSUMER not reading\n";
    let window = "";
    let found = false;
    const buffer = new Uint8Array(1 << 20);
    for (;;) {
      const n = await victim.conn.read(buffer);
      if (n === null) return found;
      window += decoder.decode(buffer.subarray(0, n));
      found ||= window.includes(error);
      window = window.slice(-error.length);
    }
  })();
  // Awaited below; an assertion failing first must not leave them as unhandled rejections.
  reading.catch(() => {});
  victimSaw.catch(() => {});
  const chunk = encoder.encode(Array.from({ length: 50 }, () => `CHAT victim ${text}\n`).join(""));
  let maxRss = 0;
  let bystanderSawLeft = false;
  for (let i = 0; i < 100; i++) {
    await sender.sendBytes(chunk);
    // Meanwhile the bystander, on the victim's process, still gets its messages.
    if (i % 20 === 0) {
      await sender.send(`CHAT bystander still here ${i}`);
      let line = await bystander.readLine(10_000);
      if (line === "LEFT victim" && !bystanderSawLeft) {
        bystanderSawLeft = true;
        line = await bystander.readLine(10_000);
      }
      assert.equal(line, `FROM sender still here ${i}`);
    }
    maxRss = Math.max(maxRss, rssMiB(victimPid!));
  }
  await sender.send("PING done");
  await withTimeout(reading, 30_000, "the sender's PONG done and LEFT victim");
  const dropped = await server.waitForLog({ msg: "slow consumer dropped", name: "victim" });
  // Dropped once 1 MiB waited for it: no later than the message that crossed the line.
  const queued = Number(dropped.queued);
  assert.ok(
    queued > 1024 * 1024 && queued <= 1024 * 1024 + 4096 + 64,
    `dropped with ${queued} bytes queued`,
  );
  assert.ok(
    await withTimeout(victimSaw, 10_000, "the victim's end of stream"),
    "the victim was sent ERR SLOW_CONSUMER",
  );
  // The victim is gone for everyone, and its name is free.
  if (!bystanderSawLeft) assert.equal(await bystander.readLine(10_000), "LEFT victim");
  await using again = await server.connect();
  await again.hello();
  await join(again, "victim");
  assert.equal(await bystander.readLine(), "JOINED victim");
  const growth = maxRss - baseRss;
  assert.ok(growth < 48, `the victim's process grew by ${growth.toFixed(0)} MiB`);
  console.log(`victim's process RSS grew by ${growth.toFixed(0)} MiB (peak ${maxRss.toFixed(0)})`);
});

Deno.test("a line of the 64 KiB limit crosses processes whole, as CHAT name and as CHAT *", async () => {
  await using server = await TestServer.start(
    ["--processes", "2", "--threads", "1", "--max-line-bytes", "65536", "--rate", "0"],
  );
  await using alice = await connectTo(server, (where) => where.pId === 0);
  await join(alice, "alice");
  await using bob = await connectTo(server, (where) => where.pId === 1);
  await join(bob, "bob");
  assert.equal(await alice.readLine(), "JOINED bob");
  const direct = "d".repeat(65536 - "CHAT bob ".length);
  await alice.send(`CHAT bob ${direct}`);
  assert.equal(await bob.readLine(), `FROM alice ${direct}`);
  const room = "r".repeat(65536 - "CHAT * ".length);
  await alice.send(`CHAT * ${room}`);
  assert.equal(await bob.readLine(), `ALL alice ${room}`);
  // One byte more is refused at the sender, and nothing reaches bob.
  await alice.send(`CHAT bob ${direct}x`);
  assert.equal(await alice.readLine(), "ERR LINE_TOO_LONG");
  await alice.send("CHAT bob after");
  assert.equal(await bob.readLine(), "FROM alice after");
});

Deno.test("a thread that takes no datagrams holds up only what is addressed to it; past 16 MiB that is dropped and logged", async () => {
  await using server = await TestServer.start(
    [
      "--processes",
      "2",
      "--threads",
      "2",
      "--max-line-bytes",
      "65536",
      "--rate",
      "0",
      "--watchdog",
      "600",
      "--grace", // the hung thread never says it is done: do not wait for it at the end
      "0.2",
    ],
    { env: { CHATD_FAULTS: "1" } },
  );
  await using stuck = await connectTo(server, (where) => where.pId === 0 && where.tId === 0);
  await join(stuck, "stuck");
  await using other = await connectTo(server, (where) => where.pId === 0 && where.tId === 1);
  await join(other, "other");
  await using sender = await connectTo(server, (where) => where.pId === 1);
  await join(sender, "sender");
  assert.equal(await other.readLine(), "JOINED sender");
  await stuck.send("FAULT hang");
  await server.waitForLog({ msg: "injecting fault", what: "hang", p_id: 0, t_id: 0 });

  // 18 MiB for the stuck thread, in lines of 64 KiB; the sender reads its replies meanwhile.
  const text = "s".repeat(65536 - "CHAT stuck ".length);
  const batch = encoder.encode(`CHAT stuck ${text}\n`.repeat(16));
  for (let i = 0; i < 18; i++) {
    await sender.sendBytes(batch);
    // The other thread of the stuck one's process is served all along.
    await sender.send(`CHAT other still here ${i}`);
    assert.equal(await other.readLine(), `FROM sender still here ${i}`);
  }
  const full = await server.waitForLog({
    msg: "destination stuck, outbox full: chat records dropped",
    p_id: 1,
  });
  assert.ok(full.to?.endsWith("/0-0-0-0.sock"), `dropped for ${full.to}`);
  await sender.send("PING sender");
  let line: string;
  while ((line = await sender.readLine()) !== "PONG sender") {
    assert.fail(`the sender got ${JSON.stringify(line.slice(0, 40))}`);
  }
});

Deno.test("--max-clients caps the whole server, across threads: one over gets ERR SERVER_FULL", async () => {
  await using server = await TestServer.start([
    "--processes",
    "1",
    "--threads",
    "2",
    "--max-clients",
    "3",
  ]);
  const clients = [];
  const threads = new Set<number>();
  try {
    for (let i = 0; i < 3; i++) {
      const client = await server.connect();
      clients.push(client);
      threads.add((await client.hello()).tId);
      await join(client, `c${i}`);
    }
    // Both threads serve, and the cap is still 3 in all: the threads share it. Which thread
    // refused is not in the reply; the log says (each thread's first refusal is logged at once,
    // later ones within 10 s are counted into one line).
    const refusedBy = () =>
      server.parsedLogs().filter((f) => f.msg === "client refused: server full").map((f) =>
        Number(f.t_id)
      );
    await withTimeout(
      (async () => {
        while (new Set([...threads, ...refusedBy()]).size < 2) {
          await using extra = await server.connect();
          assert.equal(await extra.readLine(), "ERR SERVER_FULL");
          await extra.expectEof();
        }
      })(),
      20_000,
      "a refusal by the thread that serves none of the three",
    );
    await using over = await server.connect();
    assert.equal(await over.readLine(), "ERR SERVER_FULL");
    await over.expectEof();
    // A client that leaves frees its place.
    clients.pop()!.close();
    await withTimeout(
      (async () => {
        for (;;) {
          await using again = await server.connect();
          const line = await again.readLine();
          if (line.startsWith("HELLO ")) return;
          assert.equal(line, "ERR SERVER_FULL");
          await again.expectEof();
        }
      })(),
      10_000,
      "a place freed",
    );
  } finally {
    for (const client of clients) client.close();
  }
});

Deno.test("6,000 idle joined clients on the default flags are all served", async () => {
  const CLIENTS = 6000;
  // Each client costs this process a descriptor too: Deno raised its soft limit to the hard
  // one at start (capacity.ts); a hard limit under CLIENTS + 200 cannot run this test.
  const limit = Number(
    /^Max open files\s+(\d+)/m.exec(Deno.readTextFileSync("/proc/self/limits"))![1],
  );
  assert.ok(limit >= CLIENTS + 200, `this test needs ${CLIENTS + 200} descriptors, has ${limit}`);
  await using server = await TestServer.start();
  const clients: LineClient[] = [];
  const started = performance.now();
  try {
    // 200 at a time: the JOINED notices of a batch reach the joined clients together.
    for (let base = 0; base < CLIENTS; base += 200) {
      const batch = await Promise.all(Array.from({ length: 200 }, async (_, i) => {
        const client = await server.connect();
        clients.push(client);
        await client.hello(20_000);
        await client.send(`JOIN u${base + i}`);
        // JOINED notices of others may come first.
        for (;;) {
          const line = await client.readLine(20_000);
          if (line === `OK JOIN u${base + i}`) return client;
          assert.match(line, /^JOINED u\d+$/);
        }
      }));
      assert.equal(batch.length, 200);
    }
    await using probe = await server.connect();
    await probe.hello();
    await probe.send("WHO");
    const who = (await probe.readLine(20_000)).split(" ");
    assert.equal(who[0], "USERS");
    assert.equal(who[1], String(CLIENTS));
    const seconds = (performance.now() - started) / 1000;
    assert.ok(seconds < 60, `${seconds.toFixed(1)} s`);
    console.log(`${CLIENTS} clients joined in ${seconds.toFixed(1)} s`);
  } finally {
    for (const client of clients) client.close();
  }
});
