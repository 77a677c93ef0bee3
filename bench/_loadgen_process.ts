/**
 * The runner's handle on one loadgen process: start it, give it orders, wait for its
 * reports, and kill it (by its pid) if it outlives the run.
 *
 * @module
 */
import { type Order, parseReport, type Report, type Workload } from "./_messages.ts";

const LOADGEN = new URL("./loadgen.ts", import.meta.url).pathname;
const encoder = new TextEncoder();

/** A running loadgen. `await using` ends it. */
export class LoadgenProcess implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #reports: Report[] = [];
  #wake: (() => void) | undefined;
  #ended = false;
  readonly #stderr: string[] = [];
  readonly status: Promise<Deno.CommandStatus>;

  constructor(workload: Workload) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "--unstable-net", "--allow-all", LOADGEN, JSON.stringify(workload)],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#stdin = this.#child.stdin.getWriter();
    this.status = this.#child.status;
    this.#readReports();
    this.#readStderr();
  }

  /** The OS pid, for /proc. */
  get pid(): number {
    return this.#child.pid;
  }

  async #readReports(): Promise<void> {
    for await (const line of lines(this.#child.stdout)) {
      try {
        this.#reports.push(parseReport(line));
      } catch {
        this.#stderr.push(`(stdout) ${line}`);
      }
      this.#wake?.();
    }
    this.#ended = true;
    this.#wake?.();
  }

  async #readStderr(): Promise<void> {
    for await (const line of lines(this.#child.stderr)) this.#stderr.push(line);
  }

  /** Writes one order to the loadgen's stdin. */
  async order(order: Order): Promise<void> {
    await this.#stdin.write(encoder.encode(JSON.stringify(order) + "\n"));
  }

  /**
   * Waits for the next report, which must be of `kind`.
   *
   * @throws {Error} on another report, when the loadgen exits first, or after `timeoutMs`.
   */
  async expect<K extends Report["kind"]>(
    kind: K,
    timeoutMs: number,
  ): Promise<Extract<Report, { kind: K }>> {
    const deadline = performance.now() + timeoutMs;
    while (this.#reports.length === 0) {
      if (this.#ended) throw this.#failure(`exited before reporting ${kind}`);
      const left = deadline - performance.now();
      if (left <= 0) throw this.#failure(`did not report ${kind} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
    const report = this.#reports.shift()!;
    if (report.kind !== kind) throw this.#failure(`reported ${report.kind}, not ${kind}`);
    return report as Extract<Report, { kind: K }>;
  }

  #failure(what: string): Error {
    const tail = this.#stderr.slice(-20).join("\n");
    return new Error(`loadgen ${this.pid} ${what}${tail ? `:\n${tail}` : ""}`);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await this.#stdin.close();
    } catch {
      // The loadgen has gone already.
    }
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // Gone.
      }
    }, 5000);
    try {
      await this.status;
    } finally {
      clearTimeout(timer);
    }
  }
}

async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of stream) {
    pending += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = pending.indexOf("\n")) !== -1) {
      yield pending.slice(0, newline);
      pending = pending.slice(newline + 1);
    }
  }
  if (pending !== "") yield pending;
}
