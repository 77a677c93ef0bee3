/**
 * The line editor of the terminal client: keys in, what to write to the terminal out. It
 * knows how many rows the prompt and the input take (wide characters count two cells) and
 * redraws them at most once for each chunk of input, so a long paste costs time in proportion
 * to its length. `node:readline` did neither: it cleared only the cursor's row, and it
 * measured the whole line again for every key. Pure: no I/O, testable without a terminal.
 *
 * @module
 */
import { advance, type ScreenPosition } from "./_client_format.ts";

/** What the user does at the terminal. */
export type TerminalEvent =
  | { kind: "typed"; line: string }
  /** Standard input ended: Ctrl-D on an empty line, or the end of a pipe. */
  | { kind: "typing-ended" }
  /** Ctrl-C at the terminal. */
  | { kind: "interrupted" };

const ESC = "\x1b";
const CLEAR_DOWN = `${ESC}[J`;
const HISTORY_SIZE = 100;
// Keys that insert themselves: everything but C0 and C1 controls and DEL; TAB becomes a space.
// deno-lint-ignore no-control-regex
const PRINTABLE_RUN = /[^\x00-\x1f\x7f-\x9f]+/y;
// A CSI sequence (ESC [ parameters final) or an SS3 one (ESC O x), as keys send them.
// deno-lint-ignore no-control-regex
const ESCAPE_SEQUENCE = /\x1b(?:\[([0-9;?]*)([\x40-\x7e])|O([\x40-\x7e]))/y;
// The start of one cut off at the end of a chunk. A lone ESC there is the Escape key.
// deno-lint-ignore no-control-regex
const PARTIAL_ESCAPE = /\x1b(?:\[[0-9;?]*|O)$/;

function up(rows: number): string {
  return rows > 0 ? `${ESC}[${rows}A` : "";
}

function down(rows: number): string {
  return rows > 0 ? `${ESC}[${rows}B` : "";
}

function toColumn(column: number): string {
  return column > 0 ? `\r${ESC}[${column}C` : "\r";
}

/** The length of the code point that ends at `index` in `text` (1, or 2 for a surrogate pair). */
function lengthBefore(text: string, index: number): number {
  const low = text.charCodeAt(index - 1);
  const high = text.charCodeAt(index - 2);
  return index >= 2 && low >= 0xdc00 && low <= 0xdfff && high >= 0xd800 && high <= 0xdbff ? 2 : 1;
}

/** The length of the code point that starts at `index` in `text`. */
function lengthAt(text: string, index: number): number {
  return (text.codePointAt(index) ?? 0) > 0xffff ? 2 : 1;
}

/** What feeding keys to a {@linkcode LineEditor} produced. */
export interface EditorOutput {
  /** Text and escape sequences to write to the terminal, in one write. */
  output: string;
  /** What the user did, in order. */
  events: TerminalEvent[];
}

/**
 * The line being typed, its prompt, and what is on the screen for them. Pure: it is given
 * keys and the terminal's width and returns what to write, so it is tested without a
 * terminal.
 *
 * The screen model: the prompt starts at column 0 of some row, and `#at` is where the
 * terminal's cursor is, counted from there (row, cell). Every redraw starts by going back
 * to the prompt's first row and clearing everything below it, however many rows the input
 * took. Keys typed at the end of the line are written as they are, without a redraw.
 */
export class LineEditor {
  #columns: number;
  #prompt = "";
  /** Whether the prompt and the input are shown; while not, keys still edit the line. */
  #visible = false;
  #line = "";
  /** Index into `#line` (UTF-16 units), always at a code point boundary. */
  #cursor = 0;
  /** Where the terminal's cursor is, relative to the start of the prompt, while visible. */
  #at: ScreenPosition = { row: 0, column: 0 };
  #history: string[] = [];
  /** Which history entry is shown: -1 for the line being written, kept in `#draft`. */
  #historyIndex = -1;
  #draft = "";
  /** The start of an escape sequence cut off at the end of the last chunk. */
  #pending = "";
  /** What {@linkcode feed} has to write so far. */
  #out = "";

  /** An editor for a terminal `columns` cells wide. */
  constructor(columns: number) {
    this.#columns = Math.max(1, columns);
  }

  /** The line being typed. */
  get line(): string {
    return this.#line;
  }

  /** Where in {@linkcode line} the cursor is (UTF-16 units). */
  get cursor(): number {
    return this.#cursor;
  }

  /** Shows `prompt` with the line typed so far; returns what to write. */
  show(prompt: string): string {
    const erase = this.hide();
    this.#prompt = prompt;
    this.#visible = true;
    return erase + this.#draw();
  }

  /**
   * Takes the prompt and the input off the screen, leaving the cursor where the prompt
   * started; returns what to write. The line is kept for the next {@linkcode show}.
   */
  hide(): string {
    if (!this.#visible) return "";
    this.#visible = false;
    const erase = `${up(this.#at.row)}\r${CLEAR_DOWN}`;
    this.#at = { row: 0, column: 0 };
    return erase;
  }

  /**
   * The terminal is now `columns` wide; returns the redraw, if anything is shown. Terminals
   * that rewrap their rows on a resize (tmux, VTE, kitty, iTerm2) have moved the cursor to
   * where the new width puts it, so the input is erased from there.
   */
  resize(columns: number): string {
    const visible = this.#visible;
    this.#columns = Math.max(1, columns);
    if (visible) this.#at = this.#position(this.#cursor);
    const erase = this.hide();
    if (!visible) return erase;
    this.#visible = true;
    return erase + this.#draw();
  }

  /**
   * Prints `text` (with its line ending) above the prompt: takes the prompt and input away,
   * writes the text where they started, and draws them again below it.
   */
  print(text: string): string {
    // CR too: in raw mode the terminal may not add it.
    const lines = text.replaceAll("\n", "\r\n");
    if (!this.#visible) return lines;
    return this.hide() + lines + this.show(this.#prompt);
  }

  /** Applies a chunk of keys as the terminal sent them; returns what to write and what happened. */
  feed(chunk: string): EditorOutput {
    const input = this.#pending + chunk;
    this.#pending = "";
    this.#out = "";
    const events: TerminalEvent[] = [];
    // Set when an edit needs the input redrawn; the redraw happens once, at the end.
    let dirty = false;
    const flush = () => {
      if (dirty && this.#visible) this.#out += this.hide() + this.show(this.#prompt);
      dirty = false;
    };
    let i = 0;
    while (i < input.length) {
      PRINTABLE_RUN.lastIndex = i;
      const run = PRINTABLE_RUN.exec(input);
      if (run !== null) {
        i += run[0].length;
        if (this.#cursor === this.#line.length && !dirty) this.#out += this.#append(run[0]);
        else dirty = this.#insert(run[0]);
        continue;
      }
      const char = input[i]!;
      if (char === ESC) {
        ESCAPE_SEQUENCE.lastIndex = i;
        const sequence = ESCAPE_SEQUENCE.exec(input);
        if (sequence !== null) {
          i += sequence[0].length;
          dirty = this.#escape(sequence[1] ?? "", sequence[2] ?? sequence[3] ?? "") || dirty;
          continue;
        }
        const rest = input.slice(i);
        if (PARTIAL_ESCAPE.test(rest)) {
          this.#pending = rest;
          break;
        }
        i += rest.length > 1 ? 2 : 1; // ESC and a key: Alt-key, which means nothing here
        continue;
      }
      i++;
      switch (char) {
        case "\r":
        case "\n":
          if (char === "\r" && input[i] === "\n") i++;
          flush();
          this.#out += this.#submit(events);
          break;
        case "\t":
          if (this.#cursor === this.#line.length && !dirty) this.#out += this.#append(" ");
          else dirty = this.#insert(" ");
          break;
        case "\x03": // Ctrl-C
          events.push({ kind: "interrupted" });
          break;
        case "\x04": // Ctrl-D: the end on an empty line, else delete right
          if (this.#line === "") events.push({ kind: "typing-ended" });
          else dirty = this.#deleteRight() || dirty;
          break;
        case "\x7f":
        case "\x08":
          dirty = this.#deleteLeft() || dirty;
          break;
        case "\x01":
          dirty = this.#moveTo(0) || dirty;
          break;
        case "\x05":
          dirty = this.#moveTo(this.#line.length) || dirty;
          break;
        case "\x02":
          dirty = this.#moveTo(this.#cursor - lengthBefore(this.#line, this.#cursor)) || dirty;
          break;
        case "\x06":
          dirty = this.#moveTo(this.#cursor + lengthAt(this.#line, this.#cursor)) || dirty;
          break;
        case "\x15": // Ctrl-U
          dirty = this.#replace(this.#line.slice(this.#cursor), 0);
          break;
        case "\x0b": // Ctrl-K
          dirty = this.#replace(this.#line.slice(0, this.#cursor), this.#cursor);
          break;
        case "\x17": { // Ctrl-W
          const before = this.#line.slice(0, this.#cursor).replace(/\S*\s*$/u, "");
          dirty = this.#replace(before + this.#line.slice(this.#cursor), before.length);
          break;
        }
        case "\x0c": // Ctrl-L
          if (this.#visible) {
            this.#out += `${ESC}[H${ESC}[2J`;
            this.#at = { row: 0, column: 0 };
            dirty = true;
          }
          break;
      }
    }
    flush();
    const output = this.#out;
    this.#out = "";
    return { output, events };
  }

  /** Typed at the end of the line: written as it is, one step per character. */
  #append(text: string): string {
    this.#line += text;
    this.#cursor = this.#line.length;
    if (!this.#visible) return "";
    this.#at = advance(this.#at, text, this.#columns);
    // A row filled to its last cell leaves the terminal waiting to wrap; a space makes it
    // wrap now, so the cursor is where #at says (the space is overwritten by the next key).
    return this.#at.column === 0 ? `${text} \r` : text;
  }

  #insert(text: string): boolean {
    return this.#replace(
      this.#line.slice(0, this.#cursor) + text + this.#line.slice(this.#cursor),
      this.#cursor + text.length,
    );
  }

  #replace(line: string, cursor: number): boolean {
    this.#line = line;
    this.#cursor = cursor;
    return true;
  }

  #deleteLeft(): boolean {
    if (this.#cursor === 0) return false;
    const size = lengthBefore(this.#line, this.#cursor);
    return this.#replace(
      this.#line.slice(0, this.#cursor - size) + this.#line.slice(this.#cursor),
      this.#cursor - size,
    );
  }

  #deleteRight(): boolean {
    if (this.#cursor === this.#line.length) return false;
    const size = lengthAt(this.#line, this.#cursor);
    return this.#replace(
      this.#line.slice(0, this.#cursor) + this.#line.slice(this.#cursor + size),
      this.#cursor,
    );
  }

  /** Moves the cursor without redrawing; never needs a redraw. */
  #moveTo(cursor: number): boolean {
    this.#cursor = Math.max(0, Math.min(this.#line.length, cursor));
    if (!this.#visible) return false;
    const to = this.#position(this.#cursor);
    this.#out += up(this.#at.row - to.row) + down(to.row - this.#at.row) + toColumn(to.column);
    this.#at = to;
    return false;
  }

  #escape(parameters: string, final: string): boolean {
    switch (`${parameters}${final}`) {
      case "A":
        return this.#recall(this.#historyIndex + 1);
      case "B":
        return this.#recall(this.#historyIndex - 1);
      case "C":
        return this.#moveTo(this.#cursor + lengthAt(this.#line, this.#cursor));
      case "D":
        return this.#moveTo(this.#cursor - lengthBefore(this.#line, this.#cursor));
      case "H":
      case "1~":
      case "7~":
        return this.#moveTo(0);
      case "F":
      case "4~":
      case "8~":
        return this.#moveTo(this.#line.length);
      case "3~":
        return this.#deleteRight();
      default:
        return false;
    }
  }

  #recall(index: number): boolean {
    if (index < -1 || index >= this.#history.length || index === this.#historyIndex) return false;
    if (this.#historyIndex === -1) this.#draft = this.#line;
    this.#historyIndex = index;
    const line = index === -1 ? this.#draft : this.#history[index]!;
    return this.#replace(line, line.length);
  }

  /** Enter: leaves the typed line on the screen and starts a new prompt below it. */
  #submit(events: TerminalEvent[]): string {
    const line = this.#line;
    if (line.trim() !== "" && this.#history[0] !== line) {
      this.#history.unshift(line);
      this.#history.length = Math.min(this.#history.length, HISTORY_SIZE);
    }
    this.#historyIndex = -1;
    this.#draft = "";
    this.#line = "";
    this.#cursor = 0;
    events.push({ kind: "typed", line });
    if (!this.#visible) return "";
    const end = this.#position(line.length, line);
    // A line that filled its last row already has the next row started (see #draw).
    const newline = end.column === 0 && end.row > 0 ? "\r" : "\r\n";
    const output = down(end.row - this.#at.row) + newline;
    this.#at = { row: 0, column: 0 };
    return output + this.#draw();
  }

  /** Where `cursor` in `line` is on the screen, relative to the start of the prompt. */
  #position(cursor: number, line = this.#line): ScreenPosition {
    return advance({ row: 0, column: 0 }, this.#prompt + line.slice(0, cursor), this.#columns);
  }

  /** Draws prompt and line from the current cursor, which is where the prompt starts. */
  #draw(): string {
    const end = this.#position(this.#line.length);
    const to = this.#position(this.#cursor);
    const wrap = end.column === 0 && end.row > 0 ? " \r" : "";
    this.#at = to;
    return this.#prompt + this.#line + wrap + up(end.row - to.row) + toColumn(to.column);
  }
}
