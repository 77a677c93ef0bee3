/**
 * What Linux's /proc tells about processes and the machine: CPU time, resident memory, child
 * processes, cores and memory.
 *
 * @module
 */

/** Clock ticks per second of utime/stime in /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** Fields of /proc/<pid>/stat after the command name, which may itself hold spaces. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/** User + system CPU time of a process (all its threads), in ms; 0 once it is gone. */
export function cpuMs(pid: number): number {
  const fields = statFields(pid);
  if (fields === undefined) return 0;
  // stat(5) numbers utime and stime 14 and 15; fields[0] here is field 3 (state).
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks * 1000 / TICKS_PER_SECOND;
}

/** Summed CPU time of `pids`, in ms, and when it was read. */
export interface CpuSample {
  ms: number;
  at: number;
}

/** Reads the CPU time of every process in `pids`. */
export function sampleCpu(pids: readonly number[]): CpuSample {
  let ms = 0;
  for (const pid of pids) ms += cpuMs(pid);
  return { ms, at: performance.now() };
}

/** CPU time all processes of the machine have used since boot, in ms (from /proc/stat). */
export function machineBusyMs(): number {
  const line = readOr("/proc/stat").split("\n", 1)[0] ?? "";
  // cpu user nice system idle iowait irq softirq steal ...: all but idle and iowait.
  const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
  const ticks = (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) +
    (steal ?? 0);
  return ticks * 1000 / TICKS_PER_SECOND;
}

/** Cores the machine may use for it to count as quiet. */
const QUIET_CORES = 0.2;

/**
 * Waits until the machine's CPUs were nearly idle for half a second, or `maxMs` passed: on a
 * shared machine, someone's test suite would otherwise take cores from a run.
 *
 * @returns undefined once quiet, else the cores still in use when it gave up.
 */
export async function waitForQuiet(maxMs: number): Promise<number | undefined> {
  const deadline = performance.now() + maxMs;
  for (;;) {
    const before = machineBusyMs();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const cores = (machineBusyMs() - before) / 500;
    if (cores < QUIET_CORES) return undefined;
    if (performance.now() > deadline) return cores;
  }
}

/** VmRSS of a process in KiB; 0 once it is gone. */
export function rssKiB(pid: number): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** The pids of the live processes whose parent is `parent`. */
export function childrenOf(parent: number): number[] {
  const children: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const fields = statFields(Number(entry.name));
    // fields[0] is the state (Z = zombie), fields[1] the parent pid.
    if (fields?.[1] === String(parent) && fields[0] !== "Z") children.push(Number(entry.name));
  }
  return children.sort((a, b) => a - b);
}

/** The machine a run happened on. */
export interface MachineInfo {
  cores: number;
  cpuModel: string;
  memoryMiB: number;
  os: string;
  kernel: string;
  deno: string;
  v8: string;
}

/** Cores, CPU model, memory, kernel and Deno version of this machine. */
export function machineInfo(): MachineInfo {
  const meminfo = readOr("/proc/meminfo");
  const cpuinfo = readOr("/proc/cpuinfo");
  return {
    cores: navigator.hardwareConcurrency,
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? "unknown",
    memoryMiB: Math.round(Number(/MemTotal:\s+(\d+) kB/.exec(meminfo)?.[1] ?? 0) / 1024),
    os: Deno.build.os,
    kernel: Deno.osRelease(),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
  };
}

function readOr(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}
