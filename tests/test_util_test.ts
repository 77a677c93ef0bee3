import assert from "node:assert/strict";
import { LineClient } from "./test_util.ts";

Deno.test("expectEof accepts a clean close", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  await using client = await LineClient.connect(listener.addr.port);
  {
    using conn = await listener.accept();
    await conn.write(new TextEncoder().encode("last\n"));
  }
  assert.equal(await client.readLine(), "last");
  await client.expectEof();
  assert.equal(client.wasReset, false);
});

Deno.test("expectEof rejects a reset", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  await using client = await LineClient.connect(listener.addr.port);
  // A connection still queued, never accepted, when its listener closes is reset: the race
  // that recycling's drain guards against.
  listener.close();
  await assert.rejects(() => client.expectEof(), /expected a clean end of stream/);
  assert.equal(client.wasReset, true);
});
