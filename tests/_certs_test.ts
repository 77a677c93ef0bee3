import assert from "node:assert/strict";
import { makeCerts } from "./_certs.ts";
import { withTimeout } from "./test_util.ts";

Deno.test("makeCerts gives a leaf that a TLS client trusting the CA accepts for 127.0.0.1", async () => {
  await using certs = await makeCerts();
  using listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: certs.cert,
    key: certs.key,
  });
  const served = (async () => {
    using conn = await listener.accept();
    await conn.handshake();
    await conn.write(new TextEncoder().encode("hi\n"));
  })();
  using client = await Deno.connectTls({
    hostname: "127.0.0.1",
    port: listener.addr.port,
    caCerts: [certs.caCert],
  });
  const buffer = new Uint8Array(3);
  const n = await withTimeout(client.read(buffer), 10_000, "TLS read");
  assert.equal(new TextDecoder().decode(buffer.subarray(0, n ?? 0)), "hi\n");
  await served;
});

Deno.test("a client that does not trust the test CA refuses the leaf", async () => {
  await using certs = await makeCerts();
  await using other = await makeCerts({ commonName: "another CA's leaf" });
  using listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: certs.cert,
    key: certs.key,
  });
  const served = (async () => {
    using conn = await listener.accept();
    await conn.handshake().catch(() => {});
  })();
  const connect = async () => {
    using client = await Deno.connectTls({
      hostname: "127.0.0.1",
      port: listener.addr.port,
      caCerts: [other.caCert],
    });
    await client.handshake();
  };
  await assert.rejects(connect(), /certificate|UnknownIssuer|invalid peer/i);
  await served;
});

Deno.test("the files are removed on dispose", async () => {
  let dir: string;
  {
    await using certs = await makeCerts();
    dir = certs.dir;
    assert.ok((await Deno.stat(certs.keyFile)).isFile);
  }
  await assert.rejects(Deno.stat(dir), Deno.errors.NotFound);
});
