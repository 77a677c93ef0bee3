import assert from "node:assert/strict";
import {
  autoMaxClients,
  autoShape,
  BYTES_PER_CLIENT,
  descriptorCapacity,
  FALLBACK_LIMITS,
  machineLimits,
  parseMachineLimits,
  processCapacity,
  reservedDescriptors,
  resolveMaxClients,
} from "../src/capacity.ts";

Deno.test("autoShape: processes × threads close to the cores, one loop fewer below 4 cores", () => {
  const shapes = [0, 1, 2, 3, 4, 6, 8, 16, 200].map((cores) => [cores, autoShape(cores)]);
  assert.deepEqual(shapes, [
    [0, { processes: 1, threads: 1 }],
    [1, { processes: 1, threads: 1 }],
    [2, { processes: 1, threads: 1 }],
    [3, { processes: 2, threads: 1 }],
    [4, { processes: 2, threads: 2 }],
    [6, { processes: 3, threads: 2 }],
    [8, { processes: 4, threads: 2 }],
    [16, { processes: 8, threads: 2 }],
    [200, { processes: 64, threads: 2 }], // --processes at most 64
  ]);
});

Deno.test("parseMachineLimits reads ulimit -n, then pages and page size", () => {
  assert.deepEqual(parseMachineLimits("20000\n6000000\n4096\n"), {
    descriptors: 20000,
    memoryBytes: 6000000 * 4096,
  });
  assert.deepEqual(parseMachineLimits("20000\n6000000\n4096\n7200\n75\n9\n"), {
    descriptors: 20000,
    memoryBytes: 6000000 * 4096,
    deadPeerSeconds: 7200 + 9 * 75, // 2 h 11 min 15 s
  });
  for (const bad of ["", "unlimited\n1\n4096\n", "20000\n", "1\n2\n3\n4\n"]) {
    assert.equal(parseMachineLimits(bad), undefined, bad);
  }
});

Deno.test("machineLimits finds the descriptor limit a child process inherits", async () => {
  const { limits, problem } = await machineLimits();
  assert.equal(problem, undefined);
  const text = Deno.readTextFileSync("/proc/self/limits");
  // Deno raised this process's soft limit to the hard one at start: the shell inherits it.
  const [, soft, hard] = /^Max open files\s+(\d+)\s+(\d+)/m.exec(text)!;
  assert.equal(soft, hard);
  assert.equal(limits.descriptors, Number(soft));
  assert.ok(limits.memoryBytes > 2 ** 26, `${limits.memoryBytes}`);
  const sys = (name: string) =>
    Number(Deno.readTextFileSync(`/proc/sys/net/ipv4/tcp_keepalive_${name}`));
  assert.equal(limits.deadPeerSeconds, sys("time") + sys("probes") * sys("intvl"));
  assert.notDeepEqual(limits, FALLBACK_LIMITS);
});

Deno.test("autoMaxClients: every process filled to its descriptors, within half of memory", () => {
  const shape = { processes: 2, threads: 1 };
  const perProcess = 20000 - reservedDescriptors(2, 1);
  assert.equal(descriptorCapacity(20000, 2, 1), perProcess);
  assert.equal(autoMaxClients(shape, 20000, 64 * 2 ** 30), 2 * perProcess);
  // 1 GiB: half of it at 64 KiB a client.
  assert.equal(autoMaxClients(shape, 20000, 2 ** 30), 2 ** 29 / BYTES_PER_CLIENT);
  assert.equal(autoMaxClients(shape, 1, 2 ** 30), 2, "at least one client a process");
});

Deno.test("resolveMaxClients: auto from the limits; a given cap kept within the descriptors", () => {
  const shape = { processes: 2, threads: 1 };
  const limits = { descriptors: 20000, memoryBytes: 64 * 2 ** 30 };
  const most = 2 * descriptorCapacity(20000, 2, 1);
  assert.deepEqual(resolveMaxClients(0, shape, limits), { maxClients: most, capped: false });
  assert.deepEqual(resolveMaxClients(5, shape, limits), { maxClients: 5, capped: false });
  assert.deepEqual(resolveMaxClients(most, shape, limits), { maxClients: most, capped: false });
  assert.deepEqual(resolveMaxClients(most + 1, shape, limits), { maxClients: most, capped: true });
});

Deno.test("processCapacity: an even share of --max-clients, rounded up", () => {
  assert.equal(processCapacity(10, 3), 4);
  assert.equal(processCapacity(9, 3), 3);
  assert.equal(processCapacity(1, 2), 1);
  assert.equal(processCapacity(0, 2), Number.MAX_SAFE_INTEGER, "unresolved: no cap");
});
