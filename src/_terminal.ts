/**
 * The client's terminal: a prompt and the line being typed, kept at the bottom, with incoming
 * lines printed above them, so that a line arriving while the user types does not garble
 * the input.
 *
 * On a terminal, keys are read in raw mode and edited by {@linkcode LineEditor}, which knows
 * how many rows the prompt and the input take (wide characters count two cells) and redraws
 * them at most once for each chunk of input, so a long paste costs time in proportion to its
 * length. `node:readline` did neither: it cleared only the cursor's row, and it measured the
 * whole line again for every key. Without a terminal, lines are read with `node:readline`.
 *
 * @module
 */
import process from "node:process";
import * as readline from "node:readline";
import { LineEditor, type TerminalEvent } from "./_line_editor.ts";

export type { TerminalEvent };

const encoder = new TextEncoder();

function writeAll(file: { writeSync(bytes: Uint8Array): number }, text: string): void {
  const bytes = encoder.encode(text);
  try {
    for (let written = 0; written < bytes.length;) {
      written += file.writeSync(bytes.subarray(written));
    }
  } catch {
    // The terminal went away; the end of standard input says so too.
  }
}

function terminalColumns(): number {
  try {
    return Deno.consoleSize().columns || 80;
  } catch {
    return 80;
  }
}

/**
 * The terminal on standard input and output: a prompt above which incoming lines are
 * printed. Without a terminal on both, no prompt is drawn and typed lines are read as they
 * come, with `node:readline`.
 */
export class Terminal {
  readonly #onEvent: (event: TerminalEvent) => void;
  /** Set on a terminal; undefined when reading lines from a pipe or file. */
  readonly #editor: LineEditor | undefined;
  readonly #lines: readline.Interface | undefined;
  readonly #onResize = () => this.#write(this.#editor!.resize(terminalColumns()));
  #closed = false;

  /** Starts reading standard input; each line, its end and Ctrl-C go to `onEvent`. */
  constructor(onEvent: (event: TerminalEvent) => void) {
    this.#onEvent = onEvent;
    if (Deno.stdin.isTerminal() && Deno.stdout.isTerminal()) {
      this.#editor = new LineEditor(terminalColumns());
      Deno.stdin.setRaw(true);
      Deno.addSignalListener("SIGWINCH", this.#onResize);
      this.#readKeys();
    } else {
      this.#lines = readline.createInterface({ input: process.stdin, terminal: false });
      this.#lines.on("line", (line) => onEvent({ kind: "typed", line }));
      this.#lines.on("close", () => onEvent({ kind: "typing-ended" }));
    }
  }

  /** Shows `prompt` and keeps redrawing it, with any half-typed input, below new lines. */
  prompt(prompt: string): void {
    this.#write(this.#editor?.show(prompt) ?? "");
  }

  /** Takes the prompt away until the next {@linkcode prompt}; typed keys are kept. */
  stopPrompting(): void {
    this.#write(this.#editor?.hide() ?? "");
  }

  /** Prints `text` on its own line(s) above the prompt and the input being typed. */
  show(text: string): void {
    this.#write(this.#editor?.print(text + "\n") ?? text + "\n");
  }

  /** Prints `message` on stderr, as the last thing before exiting. */
  fail(message: string): void {
    this.#write(this.#editor?.hide() ?? "");
    writeAll(Deno.stderr, `chatd client: ${message}\n`);
  }

  /** Stops reading standard input and gives the terminal back as it was. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#editor === undefined) {
      this.#lines?.close();
      return;
    }
    this.#write(this.#editor.hide());
    Deno.removeSignalListener("SIGWINCH", this.#onResize);
    try {
      Deno.stdin.setRaw(false);
    } catch {
      // Not a terminal any more; nothing to give back.
    }
  }

  #write(text: string): void {
    if (text !== "") writeAll(Deno.stdout, text);
  }

  async #readKeys(): Promise<void> {
    const decoder = new TextDecoder();
    const buffer = new Uint8Array(65536);
    for (;;) {
      let n: number | null;
      try {
        n = await Deno.stdin.read(buffer);
      } catch {
        n = null;
      }
      if (this.#closed) return;
      if (n === null) break;
      const { output, events } = this.#editor!.feed(
        decoder.decode(buffer.subarray(0, n), { stream: true }),
      );
      this.#write(output);
      for (const event of events) this.#onEvent(event);
    }
    this.#onEvent({ kind: "typing-ended" });
  }
}
