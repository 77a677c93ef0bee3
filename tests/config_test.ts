import assert from "node:assert/strict";
import {
  CLIENT_HELP_TEXT,
  type Config,
  configToArgs,
  DEFAULTS,
  HELP_TEXT,
  MAX_LINE_BYTES_LIMIT,
  parseInvocation,
  UsageError,
  VERSION,
} from "../src/config.ts";

/** Asserts that `args` are refused with a {@linkcode UsageError} saying exactly `message`. */
function assertUsageError(args: string[], message: string): void {
  assert.throws(() => parseInvocation(args), (error: unknown) => {
    assert.ok(error instanceof UsageError, `not a UsageError: ${error}`);
    assert.equal(error.name, "UsageError");
    assert.equal(error.message, message);
    return true;
  });
}

/** The config of a `serve` invocation; fails the test for any other kind. */
function serveConfig(args: string[]): Config {
  const invocation = parseInvocation(args);
  assert.equal(invocation.kind, "serve");
  return (invocation as { config: Config }).config;
}

const CHILD = ["__child", "--p-id", "0", "--instance", "1", "--runtime-dir", "/run/chatd"];

Deno.test("parseInvocation with no flags serves with the documented defaults", () => {
  // Written out, not taken from DEFAULTS: these are the values the README and --help promise.
  // The shape is "auto": about one thread per core (capacity.ts autoShape, capacity_test.ts).
  const config = serveConfig([]);
  const cores = navigator.hardwareConcurrency;
  assert.equal(config.processes * config.threads <= Math.max(1, cores), true);
  assert.equal(config.processes * config.threads >= Math.max(1, cores - 1), true);
  const documented: Config = {
    host: "127.0.0.1",
    port: 4321,
    processes: config.processes,
    threads: config.threads,
    maxClients: 0,
    clientsPerProcess: 0,
    maxClientsPerThread: 1_000_000,
    maxLineBytes: 4096,
    grace: 5,
    joinTimeout: 60,
    rate: 20,
    burst: 100,
    maxSendQueue: 1024 * 1024,
    watchdog: 3,
    metricsPort: -1,
    logLevel: "info",
    logFormat: "text",
    history: 100,
    dataDir: "",
    maxRoomsPerUser: 20,
    maxRooms: 10_000,
    runtimeDir: "",
    web: true,
    webPort: 8080,
    webOrigins: [],
    tlsCert: "",
    tlsKey: "",
    tlsPort: -1,
    configFile: "",
    cluster: [],
    nodeName: "",
    clusterCreds: "",
    faults: false,
  };
  assert.deepEqual(config, documented);
  assert.deepEqual(DEFAULTS, documented);
  assert.equal(MAX_LINE_BYTES_LIMIT, 65536);
});

Deno.test("parseInvocation reads every server flag", () => {
  assert.deepEqual(
    parseInvocation([
      "--host",
      "0.0.0.0",
      "--port",
      "0",
      "--processes",
      "3",
      "--threads",
      "4",
      "--clients-per-process",
      "100",
      "--max-clients-per-thread",
      "10",
      "--max-line-bytes",
      "512",
      "--grace",
      "2.5",
      "--log-level",
      "debug",
      "--runtime-dir",
      "/tmp/chatd-x",
      "--join-timeout",
      "2.5",
      "--rate",
      "0",
      "--burst",
      "7",
      "--max-send-queue",
      "65536",
      "--watchdog",
      "3",
      "--log-format",
      "json",
      "--history",
      "5",
      "--data-dir",
      "/tmp/chatd-data",
      "--max-rooms-per-user",
      "3",
      "--max-rooms",
      "7",
      "--max-clients",
      "5000",
      "--metrics-port",
      "9100",
      "--web-port",
      "8081",
      "--no-web",
      "--web-origin",
      "https://a.example",
      "--tls-cert",
      "/c.pem",
      "--tls-key",
      "/k.pem",
      "--tls-port",
      "4433",
      "--cluster",
      "nats://a:4222,tls://b:4222",
      "--node-name",
      "node-1",
      "--cluster-creds",
      "/etc/chatd.creds",
    ]),
    {
      kind: "serve",
      config: {
        faults: false,
        cluster: ["nats://a:4222", "tls://b:4222"],
        nodeName: "node-1",
        clusterCreds: "/etc/chatd.creds",
        joinTimeout: 2.5,
        rate: 0,
        burst: 7,
        maxSendQueue: 65536,
        watchdog: 3,
        host: "0.0.0.0",
        port: 0,
        processes: 3,
        threads: 4,
        clientsPerProcess: 100,
        maxClientsPerThread: 10,
        maxLineBytes: 512,
        grace: 2.5,
        logLevel: "debug",
        logFormat: "json",
        history: 5,
        dataDir: "/tmp/chatd-data",
        maxRoomsPerUser: 3,
        maxRooms: 7,
        maxClients: 5000,
        metricsPort: 9100,
        runtimeDir: "/tmp/chatd-x",
        web: false,
        webPort: 8081,
        webOrigins: ["https://a.example"],
        tlsCert: "/c.pem",
        tlsKey: "/k.pem",
        tlsPort: 4433,
        configFile: "",
      },
    },
  );
});

Deno.test("parseInvocation accepts --flag=value and lets a repeated flag's last value win", () => {
  assert.deepEqual(serveConfig(["--port=80", "--host=::1", "--port", "81"]), {
    ...DEFAULTS,
    host: "::1",
    port: 81,
  });
});

Deno.test("parseInvocation accepts the bounds of every numeric flag", async (t) => {
  const cases: [string, string, keyof Config, number][] = [
    ["--port", "0", "port", 0],
    ["--port", "65535", "port", 65535],
    ["--processes", "1", "processes", 1],
    ["--processes", "64", "processes", 64],
    ["--processes", "auto", "processes", DEFAULTS.processes],
    ["--threads", "auto", "threads", DEFAULTS.threads],
    ["--threads", "1", "threads", 1],
    ["--threads", "64", "threads", 64],
    ["--max-clients", "0", "maxClients", 0],
    ["--max-clients", "auto", "maxClients", 0],
    ["--max-clients", "10000000", "maxClients", 10_000_000],
    ["--clients-per-process", "0", "clientsPerProcess", 0],
    ["--clients-per-process", "2147483647", "clientsPerProcess", 2147483647],
    ["--max-clients-per-thread", "1", "maxClientsPerThread", 1],
    ["--max-clients-per-thread", "1000000", "maxClientsPerThread", 1000000],
    ["--max-line-bytes", "64", "maxLineBytes", 64],
    ["--max-line-bytes", "65536", "maxLineBytes", 65536],
    ["--grace", "0", "grace", 0],
    ["--grace", "3600", "grace", 3600],
    ["--grace", "0.25", "grace", 0.25],
    ["--join-timeout", "0.01", "joinTimeout", 0.01],
    ["--join-timeout", "86400", "joinTimeout", 86400],
    ["--rate", "0", "rate", 0],
    ["--rate", "1000000", "rate", 1000000],
    ["--rate", "0.5", "rate", 0.5],
    ["--burst", "1", "burst", 1],
    ["--burst", "1000000", "burst", 1000000],
    ["--max-send-queue", "4096", "maxSendQueue", 4096],
    ["--max-send-queue", "2147483647", "maxSendQueue", 2147483647],
    ["--watchdog", "0.1", "watchdog", 0.1],
    ["--watchdog", "3600", "watchdog", 3600],
  ];
  for (const [flag, value, key, expected] of cases) {
    await t.step(`${flag} ${value}`, () => {
      assert.deepEqual(serveConfig([flag, value]), { ...DEFAULTS, [key]: expected });
    });
  }
});

Deno.test("parseInvocation accepts every log level", () => {
  for (const level of ["trace", "debug", "info", "warning", "error", "fatal"]) {
    assert.equal(serveConfig(["--log-level", level]).logLevel, level);
  }
});

Deno.test("parseInvocation rejects numbers out of range with the flag's bounds", async (t) => {
  const cases: [string, string, string][] = [
    ["--port", "65536", "Invalid --port 65536: must be between 0 and 65535"],
    ["--processes", "0", "Invalid --processes 0: must be between 1 and 64"],
    ["--processes", "65", "Invalid --processes 65: must be between 1 and 64"],
    ["--threads", "0", "Invalid --threads 0: must be between 1 and 64"],
    ["--threads", "65", "Invalid --threads 65: must be between 1 and 64"],
    [
      "--clients-per-process",
      "2147483648",
      "Invalid --clients-per-process 2147483648: must be between 0 and 2147483647",
    ],
    [
      "--max-clients-per-thread",
      "0",
      "Invalid --max-clients-per-thread 0: must be between 1 and 1000000",
    ],
    [
      "--max-clients-per-thread",
      "1000001",
      "Invalid --max-clients-per-thread 1000001: must be between 1 and 1000000",
    ],
    ["--max-line-bytes", "63", "Invalid --max-line-bytes 63: must be between 64 and 65536"],
    ["--max-line-bytes", "65537", "Invalid --max-line-bytes 65537: must be between 64 and 65536"],
    ["--grace", "3600.5", "Invalid --grace 3600.5: must be between 0 and 3600"],
    ["--join-timeout", "0", "Invalid --join-timeout 0: must be between 0.01 and 86400"],
    ["--join-timeout", "86401", "Invalid --join-timeout 86401: must be between 0.01 and 86400"],
    ["--rate", "1000001", "Invalid --rate 1000001: must be between 0 and 1000000"],
    ["--burst", "0", "Invalid --burst 0: must be between 1 and 1000000"],
    ["--burst", "1000001", "Invalid --burst 1000001: must be between 1 and 1000000"],
    [
      "--max-send-queue",
      "4095",
      "Invalid --max-send-queue 4095: must be between 4096 and 2147483647",
    ],
    [
      "--max-send-queue",
      "2147483648",
      "Invalid --max-send-queue 2147483648: must be between 4096 and 2147483647",
    ],
    ["--watchdog", "0.05", "Invalid --watchdog 0.05: must be between 0.1 and 3600"],
    ["--watchdog", "3601", "Invalid --watchdog 3601: must be between 0.1 and 3600"],
  ];
  for (const [flag, value, message] of cases) {
    await t.step(`${flag} ${value}`, () => assertUsageError([flag, value], message));
  }
});

Deno.test("parseInvocation rejects values that are not numbers", async (t) => {
  const cases: [string, string][] = [
    ["--port", "http"],
    ["--port", ""],
    ["--port", "+1"],
    ["--port", "0x10"],
    ["--port", "1e3"],
    ["--port", " 80"],
    ["--processes", "two"],
    ["--threads", "1."],
    ["--grace", ".5"],
    ["--max-line-bytes", "Infinity"],
  ];
  for (const [flag, value] of cases) {
    await t.step(`${flag}=${JSON.stringify(value)}`, () => {
      assertUsageError([`${flag}=${value}`], `Invalid ${flag} ${value}: not a number`);
    });
  }
});

Deno.test("parseInvocation rejects fractions for whole-number flags", async (t) => {
  const cases: [string, string][] = [
    ["--port", "1.5"],
    ["--processes", "1.5"],
    ["--threads", "1.5"],
    ["--clients-per-process", "1.5"],
    ["--max-clients-per-thread", "1.5"],
    ["--max-line-bytes", "100.5"],
    ["--burst", "1.5"],
    ["--max-send-queue", "4096.5"],
  ];
  for (const [flag, value] of cases) {
    await t.step(`${flag} ${value}`, () => {
      assertUsageError([flag, value], `Invalid ${flag} ${value}: not a whole number`);
    });
  }
});

Deno.test("parseInvocation rejects a bad host, log level or flag", async (t) => {
  await t.step("empty host", () => assertUsageError(["--host", ""], "Invalid --host: empty"));
  await t.step("unknown log level", () => {
    assertUsageError(
      ["--log-level", "loud"],
      "Invalid --log-level loud: use trace, debug, info, warn, warning, error or fatal",
    );
  });
  await t.step("unknown long flag", () => {
    assertUsageError(["--prot", "1"], "Unknown option '--prot'");
  });
  await t.step("unknown short flag", () => assertUsageError(["-x"], "Unknown option '-x'"));
  await t.step("missing value", () => {
    assertUsageError(["--port"], "Option '--port <value>' argument missing");
  });
  await t.step("a value that looks like a flag", () => {
    assertUsageError(
      ["--port", "-1"],
      "Invalid --port -1: must be between 0 and 65535",
    );
  });
  await t.step("a value for a boolean flag", () => {
    assertUsageError(["--help=yes"], "Option '-h, --help' does not take an argument");
  });
  await t.step("a positional argument", () => {
    assertUsageError(
      ["serve"],
      "Unexpected argument 'serve'. This command does not take positional arguments",
    );
  });
  await t.step("the internal --p-id outside a child", () => {
    assertUsageError(["--p-id", "0"], "--p-id and --instance are internal flags");
  });
  await t.step("the internal --instance outside a child", () => {
    assertUsageError(["--instance", "0"], "--p-id and --instance are internal flags");
  });
});

Deno.test("parseInvocation answers --help and --version, long and short", () => {
  const help = { kind: "help", text: HELP_TEXT };
  assert.deepEqual(parseInvocation(["--help"]), help);
  assert.deepEqual(parseInvocation(["-h"]), help);
  assert.deepEqual(parseInvocation(["--version"]), { kind: "version", text: "chatd 0.1.0" });
  assert.deepEqual(parseInvocation(["-V"]), { kind: "version", text: "chatd 0.1.0" });
  assert.equal(VERSION, "0.1.0");
  // --help wins over --version and over values that would be refused.
  assert.deepEqual(parseInvocation(["--version", "--help"]), help);
  assert.deepEqual(parseInvocation(["--port", "99999", "--help"]), help);
});

Deno.test("the help text documents every flag with its default", () => {
  assert.ok(
    HELP_TEXT.startsWith("chatd 0.1.0: a multi-process chat server you can talk to with nc\n"),
  );
  for (
    const line of [
      "  --host HOST                address to listen on (default 127.0.0.1)",
      "  --port PORT                TCP port, 0 = a free one (0-65535, default 4321)",
      "  --processes N|auto         worker processes (1-64, default auto: about one\n" +
      "                             per core, see the README)",
      "  --threads T|auto           threads per process (1-64, default auto)",
      "  --max-clients N|auto       clients the whole server serves at once; auto or 0\n" +
      "                             = what the descriptor limit and memory allow\n" +
      "                             (0-10000000, default auto)",
      "  --clients-per-process N    recycle a process after N clients, 0 = never\n" +
      "                             (0-2147483647, default 0)",
      "  --max-clients-per-thread N a further cap on the clients of one thread\n" +
      "                             (1-1000000, default 1000000)",
      "  --max-line-bytes N         longest line a client may send, in bytes\n" +
      "                             (64-65536, default 4096)",
      "  --grace SECONDS            shutdown grace period (0-3600, default 5)",
      "  --log-level LEVEL          trace, debug, info, warn (= warning), error or\n" +
      "                             fatal (default info)",
    ]
  ) {
    assert.ok(HELP_TEXT.includes(`\n${line}\n`), `missing from --help: ${line}`);
  }
});

Deno.test("parseInvocation reads a child's command line", async (t) => {
  await t.step("with every setting", () => {
    assert.deepEqual(
      parseInvocation([
        "__child",
        "--p-id",
        "2",
        "--instance",
        "17",
        "--processes",
        "3",
        "--port",
        "5000",
        "--runtime-dir",
        "/run/chatd",
      ]),
      {
        kind: "child",
        config: { ...DEFAULTS, processes: 3, port: 5000, runtimeDir: "/run/chatd" },
        pId: 2,
        instance: 17,
      },
    );
  });
  await t.step("with the largest instance", () => {
    const invocation = parseInvocation([
      "__child",
      "--p-id",
      "0",
      "--instance",
      "2147483648",
      "--runtime-dir",
      "/r",
    ]);
    assert.equal(invocation.kind === "child" && invocation.instance, 2147483648);
  });
  await t.step("asking for --help", () => {
    assert.deepEqual(parseInvocation(["__child", "--help"]), { kind: "help", text: HELP_TEXT });
  });
});

Deno.test("parseInvocation refuses a child command line that lacks or breaks a child flag", async (t) => {
  await t.step("no --p-id", () => {
    assertUsageError(["__child", "--instance", "1", "--runtime-dir", "/r"], "Missing --p-id");
  });
  await t.step("no --instance", () => {
    assertUsageError(["__child", "--p-id", "0", "--runtime-dir", "/r"], "Missing --instance");
  });
  await t.step("no --runtime-dir", () => {
    assertUsageError(["__child", "--p-id", "0", "--instance", "1"], "a child needs --runtime-dir");
  });
  await t.step("an empty --runtime-dir", () => {
    assertUsageError([...CHILD, "--runtime-dir", ""], "a child needs --runtime-dir");
  });
  await t.step("--p-id not below --processes", () => {
    assertUsageError(
      [...CHILD, "--processes", "2", "--p-id", "2"],
      "Invalid --p-id 2: must be between 0 and 1",
    );
    assertUsageError(
      [...CHILD, "--processes", "3", "--p-id", "3"],
      "Invalid --p-id 3: must be between 0 and 2",
    );
  });
  await t.step("--p-id not a number", () => {
    assertUsageError([...CHILD, "--p-id", "one"], "Invalid --p-id one: not a number");
  });
  await t.step("--instance too large", () => {
    assertUsageError(
      [...CHILD, "--instance", "2147483649"],
      "Invalid --instance 2147483649: must be between 0 and 2147483648",
    );
  });
  await t.step("a bad server flag", () => {
    assertUsageError([...CHILD, "--threads", "0"], "Invalid --threads 0: must be between 1 and 64");
  });
  await t.step("`__child` anywhere but first", () => {
    assertUsageError(
      ["--port", "1", "__child"],
      "Unexpected argument '__child'. This command does not take positional arguments",
    );
  });
});

Deno.test("parseInvocation reads the client subcommand", async (t) => {
  await t.step("with no flags", () => {
    assert.deepEqual(parseInvocation(["client"]), {
      kind: "client",
      host: "127.0.0.1",
      port: 4321,
      name: undefined,
    });
  });
  await t.step("with every flag", () => {
    assert.deepEqual(
      parseInvocation(["client", "--host", "example.org", "--port", "6000", "--name", "alice"]),
      { kind: "client", host: "example.org", port: 6000, name: "alice" },
    );
  });
  await t.step("asking for help", () => {
    const help = { kind: "help", text: CLIENT_HELP_TEXT };
    assert.deepEqual(parseInvocation(["client", "--help"]), help);
    assert.deepEqual(parseInvocation(["client", "-h"]), help);
  });
  await t.step("with port 0, which a client cannot connect to", () => {
    assertUsageError(["client", "--port", "0"], "Invalid --port 0: must be between 1 and 65535");
  });
  await t.step("with a server flag", () => {
    assertUsageError(["client", "--processes", "2"], "Unknown option '--processes'");
  });
  await t.step("with a missing name", () => {
    assertUsageError(["client", "--name"], "Option '--name <value>' argument missing");
  });
  await t.step("with a positional argument", () => {
    assertUsageError(
      ["client", "alice"],
      "Unexpected argument 'alice'. This command does not take positional arguments",
    );
  });
});

/** The `--flag=value` arguments of `args`, checking that it holds nothing else and no repeats. */
function flagPairs(args: string[]): Map<string, string> {
  const pairs = new Map<string, string>();
  for (const arg of args) {
    const match = /^(--[a-z]+(?:-[a-z]+)*)=(.*)$/s.exec(arg);
    assert.ok(match, `not --flag=value: ${arg}`);
    const [, flag, value] = match;
    assert.equal(pairs.has(flag!), false, `${flag} twice`);
    pairs.set(flag!, value!);
  }
  return pairs;
}

Deno.test("configToArgs writes every setting as --flag=value", () => {
  const pairs = flagPairs(configToArgs({
    ...DEFAULTS,
    host: "::",
    port: 4000,
    processes: 4,
    threads: 8,
    clientsPerProcess: 1000,
    maxClientsPerThread: 50,
    maxLineBytes: 1024,
    grace: 0.5,
    joinTimeout: 2.5,
    rate: 0,
    burst: 7,
    maxSendQueue: 65536,
    watchdog: 3,
    logLevel: "warning",
    runtimeDir: "/run/chatd",
  }));
  assert.equal(pairs.get("--host"), "::");
  assert.equal(pairs.get("--port"), "4000");
  assert.equal(pairs.get("--processes"), "4");
  assert.equal(pairs.get("--threads"), "8");
  assert.equal(pairs.get("--clients-per-process"), "1000");
  assert.equal(pairs.get("--max-clients-per-thread"), "50");
  assert.equal(pairs.get("--max-line-bytes"), "1024");
  assert.equal(pairs.get("--grace"), "0.5");
  assert.equal(pairs.get("--join-timeout"), "2.5");
  assert.equal(pairs.get("--rate"), "0");
  assert.equal(pairs.get("--burst"), "7");
  assert.equal(pairs.get("--max-send-queue"), "65536");
  assert.equal(pairs.get("--watchdog"), "3");
  assert.equal(pairs.get("--log-level"), "warning");
  assert.equal(pairs.get("--runtime-dir"), "/run/chatd");
  assert.equal(pairs.has("--p-id"), false);
  assert.equal(pairs.has("--instance"), false);
});

Deno.test("configToArgs round-trips through parseInvocation as a child", async (t) => {
  const configs: Config[] = [
    { ...DEFAULTS, runtimeDir: "/tmp/chatd-abc" },
    {
      ...DEFAULTS,
      host: "0.0.0.0",
      port: 65535,
      processes: 64,
      threads: 64,
      clientsPerProcess: 2147483647,
      maxClientsPerThread: 1000000,
      maxLineBytes: 65536,
      grace: 3600,
      joinTimeout: 86400,
      rate: 1000000,
      burst: 1000000,
      maxSendQueue: 2147483647,
      watchdog: 3600,
      logLevel: "trace",
      runtimeDir: "/var/run/chat d/ünïcode",
    },
    {
      ...DEFAULTS,
      host: "::1",
      port: 0,
      processes: 1,
      threads: 1,
      clientsPerProcess: 0,
      maxClientsPerThread: 1,
      maxLineBytes: 64,
      grace: 0.125,
      joinTimeout: 0.01,
      rate: 0,
      burst: 1,
      maxSendQueue: 4096,
      watchdog: 0.1,
      logLevel: "fatal",
      runtimeDir: "relative/dir",
    },
  ];
  for (const config of configs) {
    await t.step(`${config.host} ${config.port} ${config.runtimeDir}`, () => {
      const args = ["__child", "--p-id", "0", "--instance", "3", ...configToArgs(config)];
      assert.deepEqual(parseInvocation(args), { kind: "child", config, pId: 0, instance: 3 });
    });
  }
  await t.step("a config that came from the supervisor's own command line", () => {
    // Two processes whatever the machine's auto shape, so that there is a child 1.
    const flags = ["--port", "7000", "--grace", "1.5", "--processes", "2", "--runtime-dir", "/r"];
    const config = serveConfig(flags);
    const args = ["__child", "--p-id", "1", "--instance", "9", ...configToArgs(config)];
    assert.deepEqual(parseInvocation(args), { kind: "child", config, pId: 1, instance: 9 });
  });
});

// node:util's parseArgs refuses a separate value starting with "-" as ambiguous, so
// configToArgs must write `--runtime-dir=VALUE`, or every child of `chatd --runtime-dir=-dir`
// would exit with a usage error.
Deno.test("configToArgs round-trips a runtime dir that starts with a dash", () => {
  const config = serveConfig(["--runtime-dir=-chatd"]);
  assert.equal(config.runtimeDir, "-chatd");
  const args = ["__child", "--p-id", "0", "--instance", "1", ...configToArgs(config)];
  assert.deepEqual(parseInvocation(args), { kind: "child", config, pId: 0, instance: 1 });
});

Deno.test("parseInvocation reads the web flags, and a child gets them back", async (t) => {
  await t.step("defaults: the web port 8080, no other origins", () => {
    const { config } = parseInvocation([]) as { config: Config };
    assert.deepEqual([config.web, config.webPort, config.webOrigins], [true, 8080, []]);
  });
  await t.step("--web-port, --no-web, and --web-origin repeated and as a comma list", () => {
    const { config } = parseInvocation([
      "--web-port",
      "0",
      "--no-web",
      "--web-origin",
      "https://chat.example, http://localhost:3000/",
      "--web-origin=http://a.example:81",
    ]) as { config: Config };
    assert.deepEqual([config.web, config.webPort, config.webOrigins], [false, 0, [
      "https://chat.example",
      "http://localhost:3000",
      "http://a.example:81",
    ]]);
    const withDir = { ...config, runtimeDir: "/tmp/x" };
    const child = parseInvocation([
      "__child",
      ...configToArgs(withDir),
      "--p-id=0",
      "--instance=1",
    ]);
    assert.deepEqual((child as { config: Config }).config, withDir);
  });
  await t.step("bad values", () => {
    assertUsageError(
      ["--web-port", "70000"],
      "Invalid --web-port 70000: must be between 0 and 65535",
    );
    assertUsageError(
      ["--web-origin", "ftp://x"],
      "Invalid --web-origin ftp://x: not an http(s) origin",
    );
    assertUsageError(
      ["--web-origin", "nonsense"],
      "Invalid --web-origin nonsense: not an http(s) origin",
    );
  });
});

Deno.test("parseInvocation reads the TLS flags, and a child gets them back", async (t) => {
  await t.step("none by default", () => {
    const { config } = parseInvocation([]) as { config: Config };
    assert.deepEqual([config.tlsCert, config.tlsKey, config.tlsPort], ["", "", -1]);
  });
  await t.step("--tls-cert, --tls-key and --tls-port", () => {
    const { config } = parseInvocation([
      "--tls-cert",
      "/c.pem",
      "--tls-key",
      "/k.pem",
      "--tls-port",
      "0",
      "--runtime-dir",
      "/tmp/x",
    ]) as { config: Config };
    assert.deepEqual([config.tlsCert, config.tlsKey, config.tlsPort], ["/c.pem", "/k.pem", 0]);
    const child = parseInvocation(["__child", ...configToArgs(config), "--p-id=0", "--instance=1"]);
    assert.deepEqual((child as { config: Config }).config, config);
  });
  await t.step("a certificate needs its key, and --tls-port both", () => {
    assertUsageError(["--tls-cert", "/c.pem"], "--tls-cert and --tls-key go together");
    assertUsageError(["--tls-key", "/k.pem"], "--tls-cert and --tls-key go together");
    assertUsageError(["--tls-port", "4433"], "--tls-port needs --tls-cert and --tls-key");
  });
  await t.step("chatd client --tls and --ca", () => {
    assert.deepEqual(parseInvocation(["client", "--tls", "--ca", "/ca.pem"]), {
      kind: "client",
      host: "127.0.0.1",
      port: 4321,
      name: undefined,
      tls: { caFile: "/ca.pem" },
    });
    assertUsageError(["client", "--ca", "/ca.pem"], "--ca needs --tls");
  });
});
