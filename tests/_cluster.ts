/**
 * The multi-node tests' common set-up: a nats-server and two chatd nodes joined through it;
 * and the wait those tests need before they act on one node on news from the other, which
 * crosses NATS a moment after the reply that caused it (README, "Running several nodes").
 *
 * @module
 */
import assert from "node:assert/strict";
import { type LineClient, TestServer } from "./test_util.ts";
import { NatsServer } from "./_nats.ts";

/** The flags that make a chatd node named `node` of the cluster at `url`. */
export function nodeArgs(url: string, node: string, options: NodeShape = {}): string[] {
  return [
    "--processes",
    String(options.processes ?? 2),
    "--threads",
    String(options.threads ?? 2),
    "--cluster",
    url,
    "--node-name",
    node,
  ];
}

/** The size of a node. */
export interface NodeShape {
  /** Processes per node; default 2. */
  processes?: number;
  /** Threads per process; default 2. */
  threads?: number;
}

/** Options of {@linkcode TwoNodes.start}. */
export interface TwoNodesOptions extends NodeShape {
  /** Flags added to both nodes' (`--history 5`, `--rate 0`, ...); default none. */
  args?: string[];
  /**
   * A nats-server the caller started and stops itself; default: one of the nodes' own, with
   * JetStream, stopped with them.
   */
  nats?: NatsServer;
  /** The URL the nodes join (one with a token or a password in it); default `nats.url`. */
  url?: string;
  /** Environment variables added for both nodes. */
  env?: Record<string, string>;
}

/**
 * Two chatd nodes, `na` (`a`) and `nb` (`b`), joined through one nats-server. `await using`
 * stops node b, then node a, then the nats-server if it started it.
 *
 * @example
 * ```ts
 * await using nodes = await TwoNodes.start({ args: ["--rate", "0"] });
 * await using alice = await joinAs(nodes.a, "alice");
 * ```
 */
export class TwoNodes implements AsyncDisposable {
  readonly nats: NatsServer;
  readonly a: TestServer;
  readonly b: TestServer;
  readonly #resources: AsyncDisposableStack;

  private constructor(
    nats: NatsServer,
    servers: [TestServer, TestServer],
    resources: AsyncDisposableStack,
  ) {
    this.nats = nats;
    [this.a, this.b] = servers;
    this.#resources = resources;
  }

  /**
   * Starts a nats-server (unless `options.nats` is given), then node a, then node b, each
   * waited for until it serves.
   *
   * @throws Error when one of them does not start; those started are stopped.
   */
  static async start(options: TwoNodesOptions = {}): Promise<TwoNodes> {
    await using resources = new AsyncDisposableStack();
    const nats = options.nats ?? resources.use(await NatsServer.start());
    const url = options.url ?? nats.url;
    const node = async (name: string) =>
      resources.use(
        await TestServer.start([...nodeArgs(url, name, options), ...options.args ?? []], {
          env: options.env,
        }),
      );
    const a = await node("na");
    const b = await node("nb");
    return new TwoNodes(nats, [a, b], resources.move());
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.#resources.disposeAsync();
  }
}

/** Options of {@linkcode untilReply}. */
export interface UntilReplyOptions {
  /**
   * Lines that may arrive before a reply, each at most once: the notice of the very news
   * waited for (`JOINED alice` to bob, when his node applies alice's claim after his own).
   * Any other line fails the wait. Default none.
   */
  notices?: string[];
  /** How long to ask; default 5 s. */
  timeoutMs?: number;
}

/** Time between two questions, so that asking does not take the CPU the news needs. */
const POLL_MS = 20;

/**
 * Sends `command` (`WHO`, `WHO #room`, `ROOMS`) until its reply is `expected`: for a test
 * that acts on one node on what a user did on another node, whose news reaches this node a
 * moment after the reply there. Each reply is read with a timeout; asking stops after
 * `timeoutMs`.
 *
 * @throws AssertionError when the last reply within `timeoutMs` is not `expected`, or
 * Error when a line that is neither a reply nor one of `notices` arrives.
 */
export async function untilReply(
  client: LineClient,
  command: string,
  expected: string,
  options: UntilReplyOptions = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const deadline = performance.now() + timeoutMs;
  const replyWord = expected.slice(0, expected.indexOf(" ") + 1); // "USERS ", "ROOMS "
  const notices = [...options.notices ?? []];
  let reply = "";
  for (;;) {
    await client.send(command);
    for (;;) {
      const line = await client.readLine();
      const notice = notices.indexOf(line);
      if (notice !== -1) {
        notices.splice(notice, 1);
        continue;
      }
      if (!line.startsWith(replyWord)) {
        throw new Error(`${JSON.stringify(line)} while waiting for ${JSON.stringify(expected)}`);
      }
      reply = line;
      break;
    }
    if (reply === expected || performance.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  assert.equal(reply, expected, `${command}: still not ${expected} after ${timeoutMs} ms`);
}

/**
 * Kills a node at once, as `kill -9` of its machine would: its supervisor and every child
 * (each would otherwise see its supervisor go and exit by itself, a moment later).
 */
export async function killNode(server: TestServer): Promise<void> {
  const children = [...server.childPids().values()].flat();
  server.process.kill("SIGKILL");
  for (const pid of children) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* gone with its supervisor */ }
  }
  await server.status;
}
