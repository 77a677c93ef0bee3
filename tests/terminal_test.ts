/**
 * The terminal client's line editing under a real terminal: `chatd client` runs in a detached
 * tmux pane of fixed size, keys go in with `send-keys`/`paste-buffer`, and every wait polls
 * `capture-pane` until the screen shows what it must, or times out.
 */
import assert from "node:assert/strict";
import { CHILD_DENO_FLAGS } from "../src/child_command.ts";
import { type LineClient, ROOT, TestServer, withTimeout } from "./test_util.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const decoder = new TextDecoder();
const COLUMNS = 80;
const ROWS = 24;

function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

let panes = 0;

/** `chatd client` in a detached COLUMNS × ROWS tmux pane of its own tmux server. */
class Pane implements AsyncDisposable {
  readonly #socket: string;
  #socketPath = "";

  private constructor(socket: string) {
    this.#socket = socket;
  }

  /** Starts `chatd client ...args`; after it exits the pane shows `EXIT=<code>`. */
  static async start(args: string[]): Promise<Pane> {
    const pane = new Pane(`chatd-terminal-test-${Deno.pid}-${panes++}`);
    const command = [
      Deno.execPath(),
      "run",
      "--quiet",
      ...CHILD_DENO_FLAGS,
      MAIN,
      "client",
      ...args,
    ].map(shellQuote).join(" ");
    await pane.#tmux([
      "new-session",
      "-d",
      "-x",
      String(COLUMNS),
      "-y",
      String(ROWS),
      "-c",
      ROOT,
      `${command}; echo EXIT=$?; sleep 30`,
    ]);
    try {
      pane.#socketPath = (await pane.#tmux(["display-message", "-p", "#{socket_path}"])).trim();
    } catch (error: unknown) {
      await pane[Symbol.asyncDispose]();
      throw error;
    }
    return pane;
  }

  async #tmux(args: string[]): Promise<string> {
    const output = await withTimeout(
      new Deno.Command("tmux", {
        args: ["-f", "/dev/null", "-L", this.#socket, ...args],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output(),
      10_000,
      `tmux ${args[0]}`,
    );
    if (!output.success) {
      throw new Error(`tmux ${args[0]} failed: ${decoder.decode(output.stderr)}`);
    }
    return decoder.decode(output.stdout);
  }

  /** The pane's rows now, trailing blank rows and trailing spaces removed. */
  async rows(): Promise<string[]> {
    const screen = await this.#tmux(["capture-pane", "-p"]);
    return screen.trimEnd().split("\n").map((row) => row.trimEnd());
  }

  /** Types `text` as it is, key by key. */
  async type(text: string): Promise<void> {
    await this.#tmux(["send-keys", "-l", text]);
  }

  /** Presses the named keys (`Enter`, `Left`, ...). */
  async press(...keys: string[]): Promise<void> {
    await this.#tmux(["send-keys", ...keys]);
  }

  /** Pastes `text` the way a terminal does: all of it written to the pane at once. */
  async paste(text: string): Promise<void> {
    await this.#tmux(["set-buffer", "-b", "paste", text]);
    await this.#tmux(["paste-buffer", "-d", "-b", "paste"]);
  }

  /** Polls the pane until its last rows are `tail`; returns all rows. */
  async waitForTail(tail: string[], timeoutMs = 15_000): Promise<string[]> {
    return await this.waitFor(
      (rows) =>
        rows.length >= tail.length && tail.every((row, i) => rows.at(i - tail.length) === row),
      `the last rows ${JSON.stringify(tail)}`,
      timeoutMs,
    );
  }

  /** Polls the pane until `check` accepts its rows; returns them. */
  async waitFor(check: (rows: string[]) => boolean, what: string, timeoutMs = 15_000) {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const rows = await this.rows();
      if (check(rows)) return rows;
      if (performance.now() > deadline) {
        throw new Error(`the pane never showed ${what} in ${timeoutMs} ms:\n${rows.join("\n")}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await this.#tmux(["kill-server"]);
    } catch {
      // Already gone.
    }
    if (this.#socketPath !== "") await Deno.remove(this.#socketPath).catch(() => {});
  }
}

/** `text` cut into rows of `COLUMNS` cells, the way the terminal wraps it (one cell a char). */
function wrapped(text: string): string[] {
  const rows: string[] = [];
  for (let i = 0; i < text.length; i += COLUMNS) rows.push(text.slice(i, i + COLUMNS));
  return rows;
}

async function joinAs(server: TestServer, name: string): Promise<LineClient> {
  const client = await server.connect();
  await client.hello();
  await client.send(`JOIN ${name}`);
  assert.equal(await client.readLine(), `OK JOIN ${name}`);
  return client;
}

/** Starts the client as alice in a pane, and bob beside her; both are joined. */
async function aliceAndBob(
  server: TestServer,
): Promise<{ pane: Pane; bob: LineClient }> {
  const pane = await Pane.start(["--port", String(server.port), "--name", "alice"]);
  try {
    await pane.waitForTail(["* you joined as alice; /help lists the commands", ">"]);
    const bob = await joinAs(server, "bob");
    await pane.waitForTail(["* bob joined", ">"]);
    return { pane, bob };
  } catch (error: unknown) {
    await pane[Symbol.asyncDispose]();
    throw error;
  }
}

Deno.test("incoming lines show above a typed line wider than the terminal", async (t) => {
  await using server = await TestServer.start();
  const { pane, bob } = await aliceAndBob(server);
  await using _pane = pane;
  await using _bob = bob;
  const typed = "0123456789".repeat(10);

  await t.step("three messages arrive while 100 characters span two rows", async () => {
    await pane.type(typed);
    await pane.waitForTail(wrapped(`> ${typed}`));
    for (const n of [1, 2, 3]) {
      await bob.send(`CHAT * message ${n}`);
      await pane.waitForTail([`bob: message ${n}`, ...wrapped(`> ${typed}`)]);
    }
    const rows = await pane.rows();
    assert.deepEqual(rows.slice(-5), [
      "bob: message 1",
      "bob: message 2",
      "bob: message 3",
      ...wrapped(`> ${typed}`),
    ]);
    assert.equal(rows.filter((row) => row.startsWith("> ")).length, 1, rows.join("\n"));
  });

  await t.step("with the cursor moved back to the first row, editing lands in place", async () => {
    await pane.press(...Array(40).fill("Left"));
    await bob.send("CHAT * message 4");
    await pane.waitForTail(["bob: message 4", ...wrapped(`> ${typed}`)]);
    await pane.type("!");
    const edited = `${typed.slice(0, 60)}!${typed.slice(60)}`;
    await pane.waitForTail(["bob: message 4", ...wrapped(`> ${edited}`)]);
    await pane.press("Enter");
    assert.equal(await bob.readLine(), `ALL alice ${edited}`);
    await pane.waitForTail(["bob: message 4", ...wrapped(`> ${edited}`), ">"]);
  });

  await t.step("wide characters wrap where the terminal wraps them", async () => {
    // 41 wide characters: 2 + 82 cells, so the 40th fills the first row to its last cell.
    const wide = "日本語".repeat(13) + "語語";
    await pane.type(wide);
    await pane.waitForTail([`> ${wide.slice(0, 39)}`, wide.slice(39)]);
    await bob.send("CHAT * message 5");
    await pane.waitForTail(["bob: message 5", `> ${wide.slice(0, 39)}`, wide.slice(39)]);
    await pane.press("Enter");
    assert.equal(await bob.readLine(), `ALL alice ${wide}`);
  });
});

Deno.test("a 5,000-character paste shows at once and is sent whole", async () => {
  await using server = await TestServer.start(["--max-line-bytes", "8192"]);
  const { pane, bob } = await aliceAndBob(server);
  await using _pane = pane;
  await using _bob = bob;
  const pasted = Array.from({ length: 500 }, (_, i) => `<${String(i).padStart(4, "0")}....>`)
    .join("");
  assert.equal(pasted.length, 5000);
  const started = performance.now();
  await pane.paste(pasted);
  // The old client redrew per key at a cost growing with the line: about 30 s at full CPU.
  await pane.waitForTail(wrapped(`> ${pasted}`).slice(-3), 5_000);
  const shownMs = performance.now() - started;
  await pane.press("Enter");
  assert.equal(await bob.readLine(5_000), `ALL alice ${pasted}`);
  await pane.waitForTail([...wrapped(`> ${pasted}`).slice(-2), ">"]);
  console.log(`5,000 characters pasted and shown in ${shownMs.toFixed(0)} ms`);
});
