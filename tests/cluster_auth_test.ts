/**
 * Joining a NATS server that asks for TLS or credentials: `tls://` URLs, a token or a user
 * and password in the URL, and `--cluster-creds FILE` (a decentralized-auth creds file: user
 * JWT and seed). Each against a real nats-server configured for it, with two nodes whose
 * users must reach each other; and each refused when the credentials are wrong.
 */
import assert from "node:assert/strict";
import { join as joinPath } from "node:path";
import {
  createAccount,
  createOperator,
  createUser,
  encodeAccount,
  encodeOperator,
  encodeUser,
  fmtCreds,
} from "@nats-io/jwt";
import { joinAs, outputWithin, serverCommand, TestServer } from "./test_util.ts";
import { connect } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { natsAuth } from "../src/cluster.ts";
import { configToArgs, DEFAULTS, redactClusterUrl } from "../src/config.ts";
import { natsMissing, NatsServer } from "./_nats.ts";
import { TwoNodes, untilReply } from "./_cluster.ts";
import { makeCerts } from "./_certs.ts";

const ignore = natsMissing();
if (ignore) console.warn(`cluster auth tests skipped: ${ignore}`);

const decoder = new TextDecoder();

Deno.test("natsAuth takes a user and password, or a token, out of the URLs", () => {
  assert.deepEqual(natsAuth(["nats://a:4222", "tls://b:4222"]), {
    servers: ["nats://a:4222", "tls://b:4222"],
  });
  assert.deepEqual(natsAuth(["nats://chatd:p%40ss@a:4222", "nats://chatd:p%40ss@b:4222"]), {
    servers: ["nats://a:4222", "nats://b:4222"],
    user: "chatd",
    pass: "p@ss",
  });
  assert.deepEqual(natsAuth(["tls://t0ken@a:4222", "tls://b:4222"]), {
    servers: ["tls://a:4222", "tls://b:4222"],
    token: "t0ken",
  });
  assert.throws(
    () => natsAuth(["nats://x:1@a:4222", "nats://x:2@b:4222"]),
    TypeError,
  );
});

Deno.test("a cluster URL's password or token is shown as *** and not given to children", () => {
  assert.equal(redactClusterUrl("nats://chatd:secret@n1:4222"), "nats://chatd:***@n1:4222");
  assert.equal(redactClusterUrl("tls://s3cr3t@n1:4222"), "tls://***@n1:4222");
  assert.equal(redactClusterUrl("nats://n1:4222"), "nats://n1:4222");
  const args = configToArgs({
    ...DEFAULTS,
    cluster: ["nats://chatd:secret@n1:4222", "nats://t0ken@n2:4222"],
  });
  assert.ok(args.includes("--cluster=nats://chatd:***@n1:4222,nats://***@n2:4222"), `${args}`);
  assert.ok(!args.join(" ").includes("secret") && !args.join(" ").includes("t0ken"));
});

/**
 * Two nodes joined to `nats` through `url`: their users see each other and exchange a direct
 * message.
 */
async function twoNodesTalk(
  nats: NatsServer,
  url: string,
  options: { args?: string[]; env?: Record<string, string> } = {},
): Promise<void> {
  await using nodes = await TwoNodes.start({ nats, url, processes: 1, threads: 2, ...options });
  await using alice = await joinAs(nodes.a, "alice");
  await using bob = await joinAs(nodes.b, "bob");
  assert.equal(await alice.readLine(), "JOINED bob");
  // Node nb learns of alice through NATS, a moment after her OK JOIN on na: perhaps only
  // after bob's own OK JOIN, and then bob is told she joined.
  await untilReply(bob, "WHO", "USERS 2 alice bob", { notices: ["JOINED alice"] });
  await alice.send("CHAT bob over nats");
  assert.equal(await bob.readLine(), "FROM alice over nats");
}

/**
 * A node started on `url` that must fail to join: exit 1 and the `Cannot join the cluster`
 * line, which names the URL without its password or token.
 */
async function refused(
  url: string,
  options: { args?: string[]; env?: Record<string, string> } = {},
): Promise<string> {
  const output = await outputWithin(
    serverCommand(
      ["--port", "0", "--node-name", "nx", "--cluster", url, ...options.args ?? []],
      options.env,
    ),
    30_000,
  );
  const stderr = decoder.decode(output.stderr);
  assert.equal(output.code, 1, stderr);
  assert.match(stderr, /^chatd: Cannot join the cluster at /m);
  return stderr;
}

Deno.test({
  name: "a tls:// URL joins a NATS server that requires TLS, trusting its CA from DENO_CERT",
  ignore: ignore !== undefined,
  async fn() {
    await using certs = await makeCerts({ commonName: "nats test" });
    await using nats = await NatsServer.start({
      scheme: "tls",
      config: `tls { cert_file: "${certs.certFile}", key_file: "${certs.keyFile}" }`,
    });
    assert.match(nats.url, /^tls:\/\/127\.0\.0\.1:\d+$/);
    await twoNodesTalk(nats, nats.url, { env: { DENO_CERT: certs.caCertFile } });
  },
});

Deno.test({
  name: "a NATS server with TLS whose certificate the node does not trust is refused",
  ignore: ignore !== undefined,
  async fn() {
    await using certs = await makeCerts({ commonName: "nats test" });
    await using nats = await NatsServer.start({
      scheme: "tls",
      config: `tls { cert_file: "${certs.certFile}", key_file: "${certs.keyFile}" }`,
    });
    await refused(nats.url);
  },
});

Deno.test({
  name: "a token in the URL joins a NATS server that asks for one; a wrong one is refused",
  ignore: ignore !== undefined,
  async fn() {
    await using nats = await NatsServer.start({ config: `authorization { token: "s3cr3t-t0k" }` });
    await twoNodesTalk(nats, `nats://s3cr3t-t0k@127.0.0.1:${nats.port}`);
    const stderr = await refused(`nats://wrong-t0k@127.0.0.1:${nats.port}`);
    assert.doesNotMatch(stderr, /wrong-t0k/);
  },
});

Deno.test({
  name: "a user and password in the URL join; a wrong password is refused and not shown",
  ignore: ignore !== undefined,
  async fn() {
    await using nats = await NatsServer.start({
      config: `authorization { user: "chatd", password: "pa55-w0rd" }`,
    });
    await twoNodesTalk(nats, `nats://chatd:pa55-w0rd@127.0.0.1:${nats.port}`);
    const stderr = await refused(`nats://chatd:bad-pa55@127.0.0.1:${nats.port}`);
    assert.doesNotMatch(stderr, /bad-pa55/);
    assert.match(stderr, /at nats:\/\/chatd:\*\*\*@127\.0\.0\.1:\d+: /);
  },
});

/**
 * An operator, an account with JetStream and a user of it, as `nsc` would make them, and
 * the server configuration that trusts the operator and preloads the account (no resolver
 * process: `resolver: MEMORY`).
 */
async function operatorSetup(dir: string) {
  const operator = createOperator();
  const account = createAccount();
  // JetStream in operator mode needs a system account.
  const system = createAccount();
  const operatorJwt = await encodeOperator("chatd-test", operator, {
    system_account: system.getPublicKey(),
  });
  // Absent limits read as 0 (no subscriptions, no data): every limit is set, -1 = none.
  const unlimited = {
    subs: -1,
    data: -1,
    payload: -1,
    imports: -1,
    exports: -1,
    wildcards: true,
    conn: -1,
    leaf: -1,
  };
  const systemJwt = await encodeAccount("SYS", system, { limits: unlimited }, {
    signer: operator,
  });
  const accountJwt = await encodeAccount("CHATD", account, {
    limits: {
      ...unlimited,
      // JetStream is on for an account whose limits allow storage.
      mem_storage: -1,
      disk_storage: -1,
      streams: -1,
      consumer: -1,
    },
  }, { signer: operator });
  const userCreds = async (issuer: typeof account, file: string) => {
    const user = createUser();
    const jwt = await encodeUser("chatd-node", user, issuer);
    const path = joinPath(dir, file);
    await Deno.writeFile(path, fmtCreds(jwt, user), { mode: 0o600 });
    return path;
  };
  const config = [
    `operator: ${operatorJwt}`,
    `system_account: ${system.getPublicKey()}`,
    "resolver: MEMORY",
    "resolver_preload: {",
    `  ${account.getPublicKey()}: ${accountJwt}`,
    `  ${system.getPublicKey()}: ${systemJwt}`,
    "}",
  ].join("\n");
  return {
    config,
    creds: await userCreds(account, "node.creds"),
    // A user of an account the server does not know.
    foreignCreds: await userCreds(createAccount(), "foreign.creds"),
  };
}

Deno.test({
  name: "--cluster-creds with a user JWT and seed joins an operator-mode NATS server",
  ignore: ignore !== undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "chatd-creds-" });
    try {
      const setup = await operatorSetup(dir);
      await using nats = await NatsServer.start({ config: setup.config });
      await twoNodesTalk(nats, nats.url, { args: ["--cluster-creds", setup.creds] });
      await refused(nats.url, { args: ["--cluster-creds", setup.foreignCreds] });
      await refused(nats.url);
      // Bad input is refused, not a crash: a missing file, and one that is no creds file.
      await refused(nats.url, { args: ["--cluster-creds", joinPath(dir, "missing.creds")] });
      const garbage = joinPath(dir, "garbage.creds");
      await Deno.writeTextFile(garbage, "not a creds file\n");
      await refused(nats.url, { args: ["--cluster-creds", garbage] });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "a node without --node-name joins as <host>-<port> under deno run's permissions",
  ignore: ignore !== undefined,
  async fn() {
    await using nats = await NatsServer.start();
    await using node = await TestServer.start(["--processes", "1", "--cluster", nats.url]);
    // The kernel's name, or /etc/hostname's where a container set them apart.
    const hosts = [Deno.hostname(), await Deno.readTextFile("/etc/hostname").catch(() => "")]
      .map((host) => `${host.trim().replace(/[^A-Za-z0-9_-]/g, "_")}-${node.port}`.slice(0, 64));
    const nc = await connect({ servers: nats.url });
    try {
      const nodes = await new Kvm(nc).open("chatd_nodes");
      const keys: string[] = [];
      for await (const key of await nodes.keys()) keys.push(key);
      assert.equal(keys.length, 1, `${keys}`);
      assert.ok(hosts.includes(keys[0]!), `${keys[0]} is none of ${hosts}`);
    } finally {
      await nc.close();
    }
  },
});
