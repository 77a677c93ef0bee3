/**
 * Helpers of the room tests (`room_test.ts`, `rooms_test.ts`): users joined one by one on
 * chosen processes, users joined all at once, and the proof that nothing more is queued.
 *
 * @module
 */
import assert from "node:assert/strict";
import { connectTo, join, type LineClient, type TestServer } from "./test_util.ts";

/** Proves nothing else is queued for `client`: the next line is the answer to a PING. */
export async function expectNothingPending(client: LineClient): Promise<void> {
  const token = crypto.randomUUID();
  await client.send(`PING ${token}`);
  assert.equal(await client.readLine(), `PONG ${token}`);
}

/**
 * Joins `names` one after another, the i-th on process `i % 3` of a server of three
 * processes, into `users` (filled as they connect, so that the caller closes them however
 * this ends); each earlier user reads the later ones' `JOINED`.
 */
export async function joinUsers(
  server: TestServer,
  names: string[],
  users: LineClient[],
): Promise<void> {
  for (const [i, name] of names.entries()) {
    const client = await connectTo(server, (where) => where.pId === i % 3);
    users.push(client);
    await join(client, name);
    for (const earlier of users.slice(0, -1)) {
      assert.equal(await earlier.readLine(), `JOINED ${name}`);
    }
  }
}

/**
 * Reads every client's greeting, then sends `JOIN u<i>` from all of them at once and reads
 * each one's `OK JOIN u<i>`. The notices of the others' joins come after it and are left
 * unread.
 */
export async function joinAtOnce(clients: LineClient[]): Promise<void> {
  await Promise.all(clients.map((client) => client.hello()));
  await Promise.all(clients.map((client, i) => client.send(`JOIN u${i}`)));
  for (const [i, client] of clients.entries()) {
    assert.equal(await client.readLine(), `OK JOIN u${i}`);
  }
}

/** Reads `client`'s lines up to `last`; the set of those before it. */
export async function linesBefore(client: LineClient, last: string): Promise<Set<string>> {
  const lines = new Set<string>();
  for (let line = await client.readLine(); line !== last; line = await client.readLine()) {
    lines.add(line);
  }
  return lines;
}
