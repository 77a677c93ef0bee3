/**
 * History on disk, for `--data-dir DIR`: an SQLite database `DIR/history.db` (Deno's
 * built-in `node:sqlite`, WAL mode), written by the supervisor only.
 *
 * Writes are batched: a line is queued in memory and written with the others of the next
 * {@linkcode BATCH_MS} in one transaction, so no client waits for the disk and a busy room
 * costs one commit per batch. Lines beyond the last `--history N` of a room are deleted in
 * the same transaction. A crash of the server (`kill -9`) loses at most the batch not yet
 * written; a power cut may also lose the last commits the OS had not yet put on disk
 * (`synchronous=NORMAL`), never the database's consistency.
 *
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import type { HistoryLine } from "./history.ts";

/** How long a line may wait in memory before its batch is written. */
export const BATCH_MS = 100;

/** The database cannot be opened, read or written; the message is for the user. */
export class HistoryStoreError extends Error {
  override name = "HistoryStoreError";
}

/** The lines of one room, as loaded. */
export interface StoredRoom {
  /** `*` or the room's key (lower case). */
  room: string;
  /** Oldest first. */
  lines: HistoryLine[];
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS lines (
    id INTEGER PRIMARY KEY,
    room TEXT NOT NULL,
    time INTEGER NOT NULL,
    sender TEXT NOT NULL,
    text TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS lines_by_room ON lines (room, id);
`;

/** Options of {@linkcode HistoryStore.open}. */
export interface HistoryStoreOptions {
  /** Lines kept per room. */
  lines: number;
  /** Called after each batch is written, with the number of lines written so far. */
  onWritten?: (total: number) => void;
  /** Called when a batch could not be written; the lines of that batch are lost. */
  onError?: (error: unknown) => void;
}

/** The history database. */
export class HistoryStore {
  readonly #db: DatabaseSync;
  readonly #limit: number;
  readonly #insert: StatementSync;
  readonly #prune: StatementSync;
  readonly #options: HistoryStoreOptions;
  #queue: { room: string; line: HistoryLine }[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #written = 0;
  #closed = false;

  private constructor(db: DatabaseSync, options: HistoryStoreOptions) {
    this.#db = db;
    this.#limit = options.lines;
    this.#options = options;
    this.#insert = db.prepare("INSERT INTO lines (room, time, sender, text) VALUES (?, ?, ?, ?)");
    // Everything of `room` but its last `limit` lines.
    this.#prune = db.prepare(
      "DELETE FROM lines WHERE room = ?1 AND id <= " +
        "(SELECT id FROM lines WHERE room = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
    );
  }

  /**
   * Opens (or creates) `dir/history.db` and checks it.
   *
   * @throws {HistoryStoreError} when the directory or database cannot be made, read or
   *   written, or the database is corrupt.
   */
  static open(dir: string, options: HistoryStoreOptions): HistoryStore {
    const path = `${dir}/history.db`;
    let db: DatabaseSync | undefined;
    try {
      Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
      db = new DatabaseSync(path);
      db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
      const check = db.prepare("PRAGMA quick_check").all();
      const verdict = check.map((row) => String(Object.values(row)[0])).join("; ");
      if (verdict !== "ok") throw new Error(`integrity check failed: ${verdict}`);
      db.exec(SCHEMA);
      // A write now, so that a read-only database fails here and not at the first batch.
      db.exec("BEGIN IMMEDIATE; COMMIT;");
      return new HistoryStore(db, options);
    } catch (error: unknown) {
      try {
        db?.close();
      } catch { /* not open */ }
      const reason = error instanceof Error ? error.message : String(error);
      throw new HistoryStoreError(`Cannot open history database ${path}: ${reason}`, {
        cause: error,
      });
    }
  }

  /** Every room's last lines, oldest first. */
  load(): StoredRoom[] {
    const rows = this.#db.prepare(
      "SELECT room, time, sender, text FROM (" +
        "SELECT *, ROW_NUMBER() OVER (PARTITION BY room ORDER BY id DESC) AS age FROM lines" +
        ") WHERE age <= ? ORDER BY room, id",
    ).all(this.#limit) as { room: string; time: number; sender: string; text: string }[];
    const rooms: StoredRoom[] = [];
    for (const row of rows) {
      let last = rooms[rooms.length - 1];
      if (last?.room !== row.room) rooms.push(last = { room: row.room, lines: [] });
      last.lines.push({ time: row.time, sender: row.sender, text: row.text });
    }
    return rooms;
  }

  /** Queues a line of `room` (`*` or a room key); written with the next batch. */
  add(room: string, line: HistoryLine): void {
    if (this.#closed) return;
    this.#queue.push({ room, line });
    this.#timer ??= setTimeout(() => this.flush(), BATCH_MS);
  }

  /** Writes what is queued now, in one transaction. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const queue = this.#queue;
    if (queue.length === 0) return;
    this.#queue = [];
    const rooms = new Set<string>();
    try {
      this.#db.exec("BEGIN");
      for (const { room, line } of queue) {
        this.#insert.run(room, line.time, line.sender, line.text);
        rooms.add(room);
      }
      for (const room of rooms) this.#prune.run(room, this.#limit);
      this.#db.exec("COMMIT");
      this.#written += queue.length;
      this.#options.onWritten?.(this.#written);
    } catch (error: unknown) {
      try {
        this.#db.exec("ROLLBACK");
      } catch { /* no transaction */ }
      this.#options.onError?.(error);
    }
  }

  /** Writes what is queued and closes the database. */
  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    this.#db.close();
  }
}
