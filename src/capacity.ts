/**
 * What the machine allows: the default shape (`--processes auto --threads auto`) from the
 * number of cores, and the default client cap (`--max-clients auto`) from the descriptor
 * limit and memory.
 *
 * Descriptors: Deno raises its soft RLIMIT_NOFILE to the hard limit when it starts (the
 * `raise_fd_limit` of Deno's CLI; checked with `ulimit -Sn 1024` before `deno run`: the
 * process's `/proc/<pid>/limits` shows the hard limit as its soft one), so the limit read
 * found is the hard limit the service manager or the shell gave. Raise that one
 * (`LimitNOFILE=` in deploy/chatd.service, `ulimit -Hn` as root) to serve more clients.
 * Each client costs one descriptor in the process that serves it.
 *
 * @module
 */

/** Descriptors a process keeps for itself: the runtime, listeners, bus sockets, pipes. */
export function reservedDescriptors(processes: number, threads: number): number {
  // Per thread: its TCP listener, its bus socket, one outbox socket per destination.
  return 128 + threads * (4 + processes * threads);
}

/** Memory budgeted per client for the default cap: session, queues, kernel socket. */
export const BYTES_PER_CLIENT = 64 * 1024;

/** The share of the machine's memory the default cap may use. */
export const MEMORY_SHARE = 0.5;

/** `processes × threads` for `auto`: close to the number of cores. */
export interface Shape {
  processes: number;
  threads: number;
}

/**
 * The `auto` shape for `cores` cores: processes × threads ≈ cores (nginx's
 * `worker_processes auto` is one process per core), with two threads per process from 4 cores
 * on, since threads share a process's memory and counters.
 *
 * Below 4 cores, one event loop fewer than the cores (at least one): a message between two
 * event loops waits for a turn of each, and on a small machine the kernel's network work and
 * the supervisor need a core as much as a second loop does. On 2 cores one process moved
 * about 1.8× what two did on `direct` (955k against 521k deliveries/s, README "Performance")
 * and met the latency target that two missed; it gives up crash isolation there: a crashed
 * process takes every client with it, until the supervisor has started it again.
 */
export function autoShape(cores: number): Shape {
  const n = Math.max(1, Math.floor(cores));
  if (n < 4) return { processes: Math.max(1, n - 1), threads: 1 };
  return { processes: Math.min(64, Math.floor(n / 2)), threads: 2 };
}

/** What the machine gives chatd. */
export interface MachineLimits {
  /** The soft RLIMIT_NOFILE of chatd's processes (Deno raised it to the hard limit). */
  descriptors: number;
  /** Physical memory. */
  memoryBytes: number;
  /**
   * How long a dead peer (no FIN, no RST) goes unnoticed by TCP keepalive: the system's
   * `tcp_keepalive_time + tcp_keepalive_probes × tcp_keepalive_intvl`, in seconds, since Deno
   * cannot set them per socket; undefined when unknown.
   */
  deadPeerSeconds?: number;
}

/** Used when the limits cannot be found out: Linux's usual soft limit, and 2 GiB. */
export const FALLBACK_LIMITS: Readonly<MachineLimits> = {
  descriptors: 1024,
  memoryBytes: 2 ** 31,
};

/**
 * Reads `ulimit -n`, `getconf _PHYS_PAGES` and `getconf PAGESIZE` printed one a line, then
 * optionally the keepalive time, interval and probes; undefined unless the first three are
 * there.
 */
export function parseMachineLimits(output: string): MachineLimits | undefined {
  const match = /^(\d+)\n(\d+)\n(\d+)\n(?:(\d+)\n(\d+)\n(\d+)\n)?$/.exec(output);
  if (!match) return undefined;
  const limits: MachineLimits = {
    descriptors: Number(match[1]),
    memoryBytes: Number(match[2]) * Number(match[3]),
  };
  if (match[4] !== undefined) {
    limits.deadPeerSeconds = Number(match[4]) + Number(match[6]) * Number(match[5]);
  }
  return limits;
}

/**
 * This machine's limits. Deno reads neither `/proc/self/limits` nor `/proc/meminfo` without
 * `--allow-all`, nor the memory size without `--allow-sys`, so a shell (which the supervisor
 * may start, `--allow-run`) asks: its `ulimit -n` is the limit it inherited from the
 * supervisor, the one every child inherits too. {@linkcode FALLBACK_LIMITS} when that fails.
 */
export async function machineLimits(): Promise<{ limits: MachineLimits; problem?: string }> {
  try {
    const output = await new Deno.Command("sh", {
      args: [
        "-c",
        "ulimit -n && getconf _PHYS_PAGES && getconf PAGESIZE && cd /proc/sys/net/ipv4 &&" +
        " cat tcp_keepalive_time tcp_keepalive_intvl tcp_keepalive_probes",
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    const text = new TextDecoder().decode(output.stdout);
    // Without /proc/sys the keepalive lines are missing and the status is a failure.
    const limits = parseMachineLimits(text);
    if (limits !== undefined) return { limits };
    return { limits: FALLBACK_LIMITS, problem: `unexpected output: ${JSON.stringify(text)}` };
  } catch (error: unknown) {
    return { limits: FALLBACK_LIMITS, problem: String(error) };
  }
}

/** Clients one process can hold before it runs out of descriptors. */
export function descriptorCapacity(limit: number, processes: number, threads: number): number {
  return Math.max(1, limit - reservedDescriptors(processes, threads));
}

/**
 * The `--max-clients auto` cap of the whole server: every process filled to its descriptor
 * capacity, but no more clients than {@linkcode MEMORY_SHARE} of `memoryBytes` holds at
 * {@linkcode BYTES_PER_CLIENT} each.
 */
export function autoMaxClients(
  shape: Shape,
  descriptorLimit: number,
  memoryBytes: number,
): number {
  const byDescriptors = shape.processes *
    descriptorCapacity(descriptorLimit, shape.processes, shape.threads);
  const byMemory = Math.floor((memoryBytes * MEMORY_SHARE) / BYTES_PER_CLIENT);
  return Math.max(1, Math.min(byDescriptors, byMemory));
}

/**
 * `--max-clients` resolved: `auto` (0) from `limits`; a given value as it is, but never more
 * than the descriptors of every process allow (`capped` then).
 */
export function resolveMaxClients(
  maxClients: number,
  shape: Shape,
  limits: MachineLimits,
): { maxClients: number; capped: boolean } {
  if (maxClients === 0) {
    return {
      maxClients: autoMaxClients(shape, limits.descriptors, limits.memoryBytes),
      capped: false,
    };
  }
  const most = shape.processes *
    descriptorCapacity(limits.descriptors, shape.processes, shape.threads);
  return maxClients > most ? { maxClients: most, capped: true } : { maxClients, capped: false };
}

/**
 * How many clients one process may hold: its even share of the resolved `--max-clients`,
 * rounded up (0, unresolved, means no cap). The threads of a process share this cap through
 * the process's counters; across processes the kernel's even spread of connections
 * (SO_REUSEPORT) keeps the shares filling at about the same pace.
 */
export function processCapacity(maxClients: number, processes: number): number {
  return maxClients === 0 ? Number.MAX_SAFE_INTEGER : Math.ceil(maxClients / processes);
}
