/**
 * SHA-1 (FIPS 180-4) in plain JavaScript, for the one hash the WebSocket handshake needs: the
 * `Sec-WebSocket-Accept` of 60 bytes (two blocks; `acceptKey` takes 1.7–1.9 µs here).
 *
 * Why not `crypto.subtle.digest`: Deno 2.9.6 runs each digest on a thread of the runtime's
 * blocking pool, so a burst of handshakes starts threads (40 OS threads in a 1×1 child during
 * 2000 upgrades, 8 without), and each thread leaves a malloc arena behind, memory the process
 * keeps after the threads end. `node:crypto` hashes synchronously but loads its Node
 * compatibility modules into every thread's heap (1 MiB more heap in the one run measured).
 * Nothing here is secret, so a constant-time hash is not needed.
 *
 * @module
 */

const H0 = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0];
/** The message schedule, reused: one hash runs at a time in a thread. */
const schedule = new Int32Array(80);
/**
 * The padded message when it fits (the accept key's does): a fresh array that size would be a
 * backing store of its own, outside V8's heap, per handshake.
 */
const scratch = new Uint8Array(128);

/**
 * The SHA-1 digest of `data`: 20 bytes.
 *
 * @example
 * ```ts
 * sha1(new TextEncoder().encode("abc")); // a9 99 3e 36 ... 9c d0 d8 9d
 * ```
 */
export function sha1(data: Uint8Array): Uint8Array {
  // The message, a 1 bit, zeros, and the length in bits as 64 bits: a multiple of 64 bytes.
  const size = ((data.length + 72) >>> 6) << 6;
  const padded = size <= scratch.length ? scratch.fill(0).subarray(0, size) : new Uint8Array(size);
  padded.set(data);
  padded[data.length] = 0x80;
  const view = new DataView(padded.buffer, padded.byteOffset, size);
  view.setUint32(padded.length - 8, Math.floor(data.length / 2 ** 29));
  view.setUint32(padded.length - 4, (data.length * 8) >>> 0);
  const w = schedule;
  let [h0, h1, h2, h3, h4] = H0 as [number, number, number, number, number];
  for (let block = 0; block < padded.length; block += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getInt32(block + i * 4);
    for (let i = 16; i < 80; i++) {
      const x = w[i - 3]! ^ w[i - 8]! ^ w[i - 14]! ^ w[i - 16]!;
      w[i] = (x << 1) | (x >>> 31);
    }
    let a = h0, b = h1, c = h2, d = h3, e = h4;
    for (let i = 0; i < 80; i++) {
      let f: number, k: number;
      if (i < 20) {
        f = (b & c) | (~b & d);
        k = 0x5a827999;
      } else if (i < 40) {
        f = b ^ c ^ d;
        k = 0x6ed9eba1;
      } else if (i < 60) {
        f = (b & c) | (b & d) | (c & d);
        k = 0x8f1bbcdc;
      } else {
        f = b ^ c ^ d;
        k = 0xca62c1d6;
      }
      const t = (((a << 5) | (a >>> 27)) + f + e + k + w[i]!) | 0;
      e = d;
      d = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = t;
    }
    h0 = (h0 + a) | 0;
    h1 = (h1 + b) | 0;
    h2 = (h2 + c) | 0;
    h3 = (h3 + d) | 0;
    h4 = (h4 + e) | 0;
  }
  const out = new Uint8Array(20);
  const outView = new DataView(out.buffer);
  [h0, h1, h2, h3, h4].forEach((h, i) => outView.setInt32(i * 4, h));
  return out;
}
