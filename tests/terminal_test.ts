/**
 * The terminal client's line editing under a real terminal: `chatd client` runs in a detached
 * tmux pane of fixed size, keys go in with `send-keys`/`paste-buffer`, and every wait polls
 * `capture-pane` until the screen shows what it must, or times out.
 */
import assert from "node:assert/strict";
import { advance, cellWidth } from "../src/_client_format.ts";
import { LineEditor } from "../src/_line_editor.ts";
import { joinAs, type LineClient, TestServer } from "./test_util.ts";
import { TmuxPane, type TmuxPaneOptions } from "./_tmux.ts";

const COLUMNS = 80;
const ROWS = 24;

/** The pane the client runs in: COLUMNS × ROWS. */
const PANE: TmuxPaneOptions = { columns: COLUMNS, rows: ROWS, label: "terminal-test" };

/** `text` cut into rows of `COLUMNS` cells, the way the terminal wraps it (one cell a char). */
function wrapped(text: string, columns = COLUMNS): string[] {
  const rows: string[] = [];
  for (let i = 0; i < text.length; i += columns) rows.push(text.slice(i, i + columns));
  return rows;
}

/** Starts the client as alice in a pane, and bob beside her; both are joined. */
async function aliceAndBob(
  server: TestServer,
): Promise<{ pane: TmuxPane; bob: LineClient }> {
  const pane = await TmuxPane.start(["--port", String(server.port), "--name", "alice"], PANE);
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
    await pane.waitForTail(["bob: message 3", "bob: message 4", ...wrapped(`> ${typed}`)]);
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
    const before = wrapped(`> ${typed.slice(0, 60)}!${typed.slice(60)}`);
    await pane.waitForTail([...before, "bob: message 5", `> ${wide.slice(0, 39)}`, wide.slice(39)]);
    await pane.press("Enter");
    assert.equal(await bob.readLine(), `ALL alice ${wide}`);
  });

  await t.step("a line that fills its row to the last cell", async () => {
    const full = "f".repeat(COLUMNS - 2);
    await pane.type(full);
    await pane.waitForTail([`> ${full}`]);
    await bob.send("CHAT * message 6");
    await pane.waitForTail(["語語", "bob: message 6", `> ${full}`]);
    await pane.type("z");
    await pane.waitForTail(["bob: message 6", `> ${full}`, "z"]);
    await pane.press("Enter");
    assert.equal(await bob.readLine(), `ALL alice ${full}z`);
  });
});

Deno.test("in a terminal, Backspace, Ctrl-U and Up edit the line and Ctrl-C leaves", async () => {
  await using server = await TestServer.start();
  const { pane, bob } = await aliceAndBob(server);
  await using _pane = pane;
  await using _bob = bob;
  await pane.type("hello wrldd");
  await pane.press("BSpace", "Left", "Left", "Left");
  await pane.type("o");
  await pane.waitForTail(["> hello world"]);
  await pane.press("Enter");
  assert.equal(await bob.readLine(), "ALL alice hello world");
  await pane.type("junk");
  await pane.press("C-u", "Up", "End");
  await pane.type("!");
  await pane.press("Enter");
  assert.equal(await bob.readLine(), "ALL alice hello world!");
  await pane.press("C-c");
  assert.equal(await bob.readLine(), "LEFT alice");
  await pane.waitForTail(["* bye", "EXIT=0"]);
});

Deno.test("after the terminal narrows, the input is redrawn and lines show above it", async () => {
  await using server = await TestServer.start();
  const { pane, bob } = await aliceAndBob(server);
  await using _pane = pane;
  await using _bob = bob;
  const typed = "0123456789".repeat(10);
  await pane.type(typed);
  await pane.waitForTail(wrapped(`> ${typed}`));
  await pane.resize(30);
  await pane.waitForTail(wrapped(`> ${typed}`, 30));
  await bob.send("CHAT * after resize");
  await pane.waitForTail(["* bob joined", "bob: after resize", ...wrapped(`> ${typed}`, 30)]);
  await pane.type("!");
  await pane.press("Enter");
  assert.equal(await bob.readLine(), `ALL alice ${typed}!`);
  await pane.waitForTail(["bob: after resize", ...wrapped(`> ${typed}!`, 30), ">"]);
});

Deno.test("in a terminal, Ctrl-D on an empty line leaves", async () => {
  await using server = await TestServer.start();
  const { pane, bob } = await aliceAndBob(server);
  await using _pane = pane;
  await using _bob = bob;
  await pane.type("x");
  await pane.press("BSpace", "C-d");
  assert.equal(await bob.readLine(), "LEFT alice");
  await pane.waitForTail(["* bye", "EXIT=0"]);
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

/**
 * Enough of a terminal to check what {@linkcode LineEditor} writes: printable text with
 * wide characters and deferred wrapping at the last column, CR, LF, cursor up/down/forward,
 * clear to the end of the screen, home and clear screen. Unknown sequences throw.
 */
class FakeScreen {
  readonly columns: number;
  /** Each row as cells; a wide character's second cell is "". */
  rows: string[][] = [[]];
  row = 0;
  column = 0;
  #wrapPending = false;

  constructor(columns: number) {
    this.columns = columns;
  }

  write(text: string): void {
    for (let i = 0; i < text.length;) {
      // deno-lint-ignore no-control-regex
      const sequence = /^\x1b\[(\d*)([ABCJH])/.exec(text.slice(i, i + 12));
      if (sequence) {
        this.#control(Number(sequence[1] || "1"), sequence[2]!, sequence[1] ?? "");
        i += sequence[0].length;
        continue;
      }
      const char = String.fromCodePoint(text.codePointAt(i)!);
      i += char.length;
      if (char === "\x1b") throw new Error(`unknown sequence ${JSON.stringify(text.slice(i))}`);
      if (char === "\r") [this.column, this.#wrapPending] = [0, false];
      else if (char === "\n") this.#lineFeed();
      else this.#put(char);
    }
  }

  /** The rows as text, trailing blanks removed. */
  text(): string[] {
    const rows = this.rows.map((cells) => cells.join("").trimEnd());
    while (rows.length > 1 && rows.at(-1) === "") rows.pop();
    return rows;
  }

  #control(n: number, final: string, raw: string): void {
    this.#wrapPending = false;
    if (final === "A") this.row = Math.max(0, this.row - n);
    else if (final === "B") this.row += n;
    else if (final === "C") this.column = Math.min(this.columns - 1, this.column + n);
    else if (final === "H") [this.row, this.column] = [0, 0];
    else if (final === "J" && raw === "2") this.rows = [[]];
    else if (final === "J") {
      this.rows.length = Math.min(this.rows.length, this.row + 1);
      (this.rows[this.row] ??= []).length = Math.min(this.#cells().length, this.column);
    }
  }

  #cells(): string[] {
    while (this.rows.length <= this.row) this.rows.push([]);
    return this.rows[this.row]!;
  }

  #lineFeed(): void {
    this.row++;
    this.#cells();
  }

  #put(char: string): void {
    const width = cellWidth(char);
    if (this.#wrapPending || (width === 2 && this.column === this.columns - 1)) {
      this.#lineFeed();
      [this.column, this.#wrapPending] = [0, false];
    }
    const cells = this.#cells();
    while (cells.length < this.column) cells.push(" ");
    cells[this.column] = char;
    if (width === 2) cells[this.column + 1] = "";
    this.column += width;
    if (this.column >= this.columns) [this.column, this.#wrapPending] = [this.columns - 1, true];
  }
}

/** An editor on a fake screen 20 columns wide, showing `> `. */
function editorOnScreen(columns = 20) {
  const editor = new LineEditor(columns);
  const screen = new FakeScreen(columns);
  screen.write(editor.show("> "));
  const feed = (keys: string) => {
    const { output, events } = editor.feed(keys);
    screen.write(output);
    return events;
  };
  return { editor, screen, feed, print: (text: string) => screen.write(editor.print(text)) };
}

Deno.test("cellWidth counts wide characters two cells and combining marks none", () => {
  assert.equal(cellWidth("a"), 1);
  assert.equal(cellWidth("日"), 2);
  assert.equal(cellWidth("한"), 2);
  assert.equal(cellWidth("😀"), 2);
  assert.equal(cellWidth("\u0301"), 0);
  assert.equal(cellWidth("é"), 1);
});

Deno.test("advance wraps a full row and moves a wide character that does not fit", () => {
  assert.deepEqual(advance({ row: 0, column: 0 }, "x".repeat(100), 80), { row: 1, column: 20 });
  assert.deepEqual(advance({ row: 0, column: 0 }, "x".repeat(80), 80), { row: 1, column: 0 });
  assert.deepEqual(advance({ row: 0, column: 0 }, "x".repeat(79) + "日", 80), {
    row: 1,
    column: 2,
  });
  assert.deepEqual(advance({ row: 2, column: 5 }, "e\u0301", 80), { row: 2, column: 6 });
});

Deno.test("LineEditor prints above an input of three rows and redraws it whole", () => {
  const { screen, feed, print } = editorOnScreen();
  feed("a".repeat(45));
  assert.deepEqual(screen.text(), ["> " + "a".repeat(18), "a".repeat(20), "a".repeat(7)]);
  assert.equal(screen.row, 2);
  print("one\n");
  feed("\x02".repeat(30)); // Ctrl-B back to the input's first row
  assert.equal(screen.row, 1);
  print("two\n");
  assert.deepEqual(screen.text(), [
    "one",
    "two",
    "> " + "a".repeat(18),
    "a".repeat(20),
    "a".repeat(7),
  ]);
  assert.deepEqual([screen.row, screen.column], [2, 17]);
});

Deno.test("LineEditor handles an input that fills its last row exactly", () => {
  const { screen, feed, print } = editorOnScreen();
  feed("b".repeat(38));
  assert.deepEqual([screen.row, screen.column], [2, 0]);
  print("msg\n");
  assert.deepEqual(screen.text(), ["msg", "> " + "b".repeat(18), "b".repeat(20)]);
  assert.deepEqual([screen.row, screen.column], [3, 0]);
  feed("c");
  assert.deepEqual(screen.text(), ["msg", "> " + "b".repeat(18), "b".repeat(20), "c"]);
  feed("\x7f\r"); // sent while it fills its rows exactly: the next prompt right below
  assert.deepEqual(screen.text(), ["msg", "> " + "b".repeat(18), "b".repeat(20), ">"]);
});

Deno.test("LineEditor wraps wide characters where the terminal does", () => {
  const { screen, feed, print } = editorOnScreen(10);
  feed("日本語日本"); // 2 + 10 cells: the fifth moves to the second row
  assert.deepEqual(screen.text(), ["> 日本語日", "本"]);
  print("x\n");
  assert.deepEqual(screen.text(), ["x", "> 日本語日", "本"]);
  assert.deepEqual([screen.row, screen.column], [2, 2]);
});

Deno.test("LineEditor edits: Backspace, Delete, Home, End, Ctrl-U, Ctrl-K, Ctrl-W", () => {
  const { editor, screen, feed } = editorOnScreen();
  feed("hello wide world");
  feed("\x7f\x7f");
  assert.equal(editor.line, "hello wide wor");
  feed("\x1b[H\x1b[3~");
  assert.equal(editor.line, "ello wide wor");
  feed("\x1b[F\x17");
  assert.equal(editor.line, "ello wide ");
  feed("\x01\x06\x0b");
  assert.equal(editor.line, "e");
  feed("\x15");
  assert.equal(editor.line, "");
  feed("😀x\x1b[D\x7f");
  assert.equal(editor.line, "x");
  assert.deepEqual(screen.text(), ["> x"]);
  assert.deepEqual([screen.row, screen.column], [0, 2]);
});

Deno.test("LineEditor sends lines on Enter, recalls them with Up, and reports Ctrl-C and Ctrl-D", () => {
  const { editor, screen, feed } = editorOnScreen();
  assert.deepEqual(feed("first\rsecond\r\nthird"), [
    { kind: "typed", line: "first" },
    { kind: "typed", line: "second" },
  ]);
  assert.deepEqual(screen.text(), ["> first", "> second", "> third"]);
  feed("\x1b[A");
  assert.equal(editor.line, "second");
  feed("\x1b[A\x1b[B\x1b[B");
  assert.equal(editor.line, "third");
  assert.deepEqual(feed("\x03"), [{ kind: "interrupted" }]);
  assert.deepEqual(feed("\x04"), []); // deletes right of the cursor, at the end: nothing
  assert.deepEqual(feed("\x15\x04"), [{ kind: "typing-ended" }]);
});

Deno.test("LineEditor keeps an escape sequence cut between two chunks", () => {
  const { editor, feed } = editorOnScreen();
  feed("ab\x1b[");
  feed("Dc");
  assert.equal(editor.line, "acb");
  feed("\x1b"); // the Escape key alone: nothing, and the next key is not lost
  feed("d");
  assert.equal(editor.line, "acdb");
});

Deno.test("LineEditor keeps keys typed while hidden and shows them with the next prompt", () => {
  const editor = new LineEditor(20);
  const screen = new FakeScreen(20);
  assert.deepEqual(editor.feed("early").output, "");
  screen.write(editor.print("notice\n"));
  screen.write(editor.show("> "));
  assert.deepEqual(screen.text(), ["notice", "> early"]);
});

Deno.test("LineEditor writes each key typed at the end once: a long paste costs its length", () => {
  const { editor, screen, feed } = editorOnScreen(80);
  const outputs: string[] = [];
  const started = performance.now();
  for (let i = 0; i < 40_000; i++) outputs.push(editor.feed("x").output);
  const elapsed = performance.now() - started;
  // Each key once, plus " \r" each time a row fills up.
  assert.equal(outputs.join("").length, 40_000 + 2 * Math.floor(40_002 / 80));
  for (const output of outputs) screen.write(output);
  // Linear work takes a few ms; the per-key measuring of the whole line took minutes.
  assert.ok(elapsed < 2_000, `40,000 keys took ${elapsed} ms`);
  feed("y".repeat(5000));
  assert.equal(editor.line.length, 45_000);
  const shown = screen.text();
  assert.ok(shown.join("") === `> ${editor.line}`, `the screen shows ${shown.length} rows`);
  assert.equal(shown.at(-1), "y".repeat(45_002 % 80 || 80));
});
