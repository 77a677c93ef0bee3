/**
 * Two chatd nodes (2 processes × 2 threads each) joined through one real nats-server.
 */
import assert from "node:assert/strict";
import { join, LineClient, TestServer } from "./test_util.ts";
import { natsMissing, NatsServer } from "./_nats.ts";

const ignore = natsMissing();
if (ignore) console.warn(`cluster tests skipped: ${ignore}`);

function nodeArgs(nats: NatsServer, node: string): string[] {
  return ["--processes", "2", "--threads", "2", "--cluster", nats.url, "--node-name", node];
}

Deno.test({
  name: "two nodes: WHO, direct messages both ways and lobby messages cross nodes",
  ignore: ignore !== undefined,
  async fn() {
    await using nats = await NatsServer.start();
    await using a = await TestServer.start(nodeArgs(nats, "na"));
    await using b = await TestServer.start(nodeArgs(nats, "nb"));
    await using alice = await LineClient.connect(a.port);
    await using bob = await LineClient.connect(b.port);
    await alice.hello();
    await bob.hello();
    await join(alice, "alice");
    await join(bob, "bob");
    assert.equal(await alice.readLine(), "JOINED bob");
    await alice.send("WHO");
    assert.equal(await alice.readLine(), "USERS 2 alice bob");
    await bob.send("WHO");
    assert.equal(await bob.readLine(), "USERS 2 alice bob");
    await alice.send("CHAT bob hi");
    assert.equal(await bob.readLine(), "FROM alice hi");
    await bob.send("CHAT * hello all");
    assert.equal(await alice.readLine(), "ALL bob hello all");
  },
});
