/**
 * Small byte arrays cut from a shared slab instead of allocated one by one: a typed array of
 * its own costs several times what filling it does (V8 allocates each backing store outside
 * its heap, about 0.7 µs here), and the per-message path makes several. What is cut from a
 * slab is never handed out again: a full slab is left to the garbage collector once nothing
 * points into it. Each thread has its own (a module instance per worker).
 *
 * @module
 */

/** Slab size. */
const SLAB_BYTES = 64 * 1024;
/** Anything larger gets an array of its own: a few of them would fill a slab. */
const LARGEST_CUT = SLAB_BYTES / 4;

let slab = new Uint8Array(SLAB_BYTES);
let used = 0;

/** A zero-filled `Uint8Array` of `size` bytes, possibly a view of a shared slab. */
export function allocate(size: number): Uint8Array {
  if (size > LARGEST_CUT) return new Uint8Array(size);
  if (used + size > SLAB_BYTES) {
    slab = new Uint8Array(SLAB_BYTES);
    used = 0;
  }
  const bytes = slab.subarray(used, used + size);
  used += size;
  return bytes;
}
