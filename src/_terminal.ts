/**
 * The client's terminal: a readline prompt above which incoming lines are printed, so that
 * a line arriving while the user types does not garble the input.
 *
 * @module
 */
import process from "node:process";
import * as readline from "node:readline";

/** What the user does at the terminal. */
export type TerminalEvent =
  | { kind: "typed"; line: string }
  /** Standard input ended: Ctrl-D, or the end of a pipe. */
  | { kind: "typing-ended" }
  /** Ctrl-C at the terminal. */
  | { kind: "interrupted" };

/**
 * The terminal on standard input and output: a readline prompt above which incoming lines
 * are printed. Without a TTY on both, no prompt is drawn and typed lines are read as they come.
 */
export class Terminal {
  readonly #rl: readline.Interface;
  readonly #interactive: boolean;
  #prompting = false;

  /** Starts reading standard input; each line, its end and Ctrl-C go to `onEvent`. */
  constructor(onEvent: (event: TerminalEvent) => void) {
    this.#interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY);
    this.#rl = readline.createInterface({
      input: process.stdin,
      output: process.stdout,
      terminal: this.#interactive,
    });
    this.#rl.on("line", (line) => {
      // Now, not when the line is handled: keys typed meanwhile must land after a prompt.
      if (this.#prompting && this.#interactive) this.#rl.prompt();
      onEvent({ kind: "typed", line });
    });
    this.#rl.on("close", () => onEvent({ kind: "typing-ended" }));
    this.#rl.on("SIGINT", () => onEvent({ kind: "interrupted" }));
  }

  /** Shows `prompt` and keeps redrawing it, with any half-typed input, below new lines. */
  prompt(prompt: string): void {
    this.#rl.setPrompt(prompt);
    this.#prompting = true;
    if (this.#interactive) this.#rl.prompt(true);
  }

  /** Takes the prompt away until the next {@linkcode prompt}. */
  stopPrompting(): void {
    this.#clearInputLine();
    this.#prompting = false;
  }

  /** Prints `text` on its own line(s) above the prompt and the input being typed. */
  show(text: string): void {
    this.#clearInputLine();
    process.stdout.write(text + "\n");
    if (this.#prompting && this.#interactive) this.#rl.prompt(true);
  }

  /** Prints `message` on stderr, as the last thing before exiting. */
  fail(message: string): void {
    this.#clearInputLine();
    process.stderr.write(`chatd client: ${message}\n`);
  }

  /** Stops reading standard input. */
  close(): void {
    this.#rl.close();
  }

  #clearInputLine(): void {
    if (!this.#interactive || !this.#prompting) return;
    readline.clearLine(process.stdout, 0);
    readline.cursorTo(process.stdout, 0);
  }
}
