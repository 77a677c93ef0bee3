/**
 * `chatd client` under a real terminal: a detached tmux pane of fixed size on a tmux server of
 * its own, keys sent with `send-keys`/`paste-buffer`, the screen read with `capture-pane`.
 * Every wait polls the pane until it shows what it must, or times out.
 *
 * @module
 */
import { CHILD_DENO_FLAGS } from "../src/child_command.ts";
import { ROOT, withTimeout } from "./test_util.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const decoder = new TextDecoder();

/** Quotes `word` for `sh`. */
function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** Options of {@linkcode TmuxPane.start}. */
export interface TmuxPaneOptions {
  /** The pane's width in cells. */
  columns: number;
  /** The pane's height in rows. */
  rows: number;
  /** Part of the tmux socket's name, so that a leftover server tells which test left it. */
  label: string;
  /** Deno flags for the client besides the child's own; default none. */
  denoFlags?: string[];
}

let panes = 0;

/** `chatd client` running in a detached tmux pane; `await using` kills its tmux server. */
export class TmuxPane implements AsyncDisposable {
  readonly #socket: string;
  readonly #rows: number;
  /** The tmux server's socket file, which `kill-server` leaves behind. */
  #socketPath = "";

  private constructor(socket: string, rows: number) {
    this.#socket = socket;
    this.#rows = rows;
  }

  /**
   * Starts `chatd client ...args`; once it exits the pane shows `EXIT=<code>` and stays open
   * so that it can still be read.
   *
   * @throws Error when tmux fails or does not answer within 10 s.
   */
  static async start(args: string[], options: TmuxPaneOptions): Promise<TmuxPane> {
    const pane = new TmuxPane(`chatd-${options.label}-${Deno.pid}-${panes++}`, options.rows);
    const command = [
      Deno.execPath(),
      "run",
      "--quiet",
      ...CHILD_DENO_FLAGS,
      ...options.denoFlags ?? [],
      MAIN,
      "client",
      ...args,
    ].map(shellQuote).join(" ");
    await pane.#tmux([
      "new-session",
      "-d",
      "-x",
      String(options.columns),
      "-y",
      String(options.rows),
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
      throw new Error(`tmux ${args.join(" ")} failed: ${decoder.decode(output.stderr)}`);
    }
    return decoder.decode(output.stdout);
  }

  /** What the pane shows now, trailing blank lines removed. */
  async screen(): Promise<string> {
    return (await this.#tmux(["capture-pane", "-p"])).trimEnd();
  }

  /** The pane's rows now, trailing blank rows and trailing spaces removed. */
  async rows(): Promise<string[]> {
    return (await this.screen()).split("\n").map((row) => row.trimEnd());
  }

  /** Types `text` as it is, key by key, without Enter. */
  async type(text: string): Promise<void> {
    await this.#tmux(["send-keys", "-l", text]);
  }

  /** Presses the named keys (`Enter`, `Left`, ...). */
  async press(...keys: string[]): Promise<void> {
    await this.#tmux(["send-keys", ...keys]);
  }

  /** Types `line` and Enter. */
  async enter(line: string): Promise<void> {
    if (line !== "") await this.type(line);
    await this.press("Enter");
  }

  /** Makes the pane `columns` wide, as a user resizing the window does. */
  async resize(columns: number): Promise<void> {
    await this.#tmux(["resize-window", "-x", String(columns), "-y", String(this.#rows)]);
  }

  /** Pastes `text` the way a terminal does: all of it written to the pane at once. */
  async paste(text: string): Promise<void> {
    await this.#tmux(["set-buffer", "-b", "paste", text]);
    await this.#tmux(["paste-buffer", "-d", "-b", "paste"]);
  }

  /**
   * Polls the pane until `pattern` matches its screen; returns the screen.
   *
   * @throws Error when the pane has not shown it within `timeoutMs`.
   */
  async waitForScreen(pattern: RegExp, timeoutMs = 15_000): Promise<string> {
    const rows = await this.waitFor((rows) => pattern.test(rows.join("\n")), `${pattern}`, {
      timeoutMs,
      trimRows: false,
    });
    return rows.join("\n");
  }

  /**
   * Polls the pane until its last rows are `tail`; returns all rows.
   *
   * @throws Error when the pane has not shown them within `timeoutMs`.
   */
  async waitForTail(tail: string[], timeoutMs = 15_000): Promise<string[]> {
    return await this.waitFor(
      (rows) =>
        rows.length >= tail.length && tail.every((row, i) => rows.at(i - tail.length) === row),
      `the last rows ${JSON.stringify(tail)}`,
      { timeoutMs },
    );
  }

  /**
   * Polls the pane until `check` accepts its rows; returns them.
   *
   * @throws Error naming `what` when the pane has not shown it within the timeout.
   */
  async waitFor(
    check: (rows: string[]) => boolean,
    what: string,
    options: WaitOptions = {},
  ): Promise<string[]> {
    const { timeoutMs = 15_000, trimRows = true } = options;
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const rows = trimRows ? await this.rows() : (await this.screen()).split("\n");
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

/** Options of {@linkcode TmuxPane.waitFor}. */
export interface WaitOptions {
  /** How long to poll; default 15 s. */
  timeoutMs?: number;
  /** Whether trailing spaces are cut from each row; default true. */
  trimRows?: boolean;
}
