import assert from "node:assert/strict";
import { OutputChunks, Span } from "../src/_output_chunks.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

Deno.test("OutputChunks appends lines back to back, so a span can grow over them", () => {
  const chunks = new OutputChunks(64);
  chunks.append(encoder.encode("JOINED a\n"));
  const span = new Span(chunks.chunk, chunks.start, chunks.end);
  chunks.append(encoder.encode("JOINED b\n"));
  assert.equal(chunks.start, span.end, "the next line starts where the span ends");
  span.end = chunks.end;
  assert.equal(decoder.decode(span.bytes()), "JOINED a\nJOINED b\n");
  assert.equal(span.length, 18);
});

Deno.test("OutputChunks starts a new chunk when a line does not fit, leaving the old bytes alone", () => {
  const chunks = new OutputChunks(16);
  chunks.append(encoder.encode("0123456789\n"));
  const first = new Span(chunks.chunk, chunks.start, chunks.end);
  chunks.append(encoder.encode("abcdefghij\n"));
  assert.notEqual(chunks.chunk, first.chunk);
  assert.equal(chunks.start, 0);
  assert.equal(decoder.decode(first.bytes()), "0123456789\n");
  // A line longer than a chunk gets a chunk of its own size.
  const long = encoder.encode("x".repeat(40) + "\n");
  chunks.append(long);
  assert.equal(chunks.chunk.length, long.length);
  assert.deepEqual(chunks.chunk.subarray(chunks.start, chunks.end), long);
});

Deno.test("output chunks: appendText encodes lines in place, a new chunk when one may not fit", () => {
  const chunks = new OutputChunks(64);
  chunks.appendText("a".repeat(16));
  const first = chunks.chunk;
  assert.deepEqual([chunks.start, chunks.end, decoder.decode(chunks.line())], [
    0,
    16,
    "a".repeat(16),
  ]);
  chunks.appendText("😀\n");
  assert.deepEqual([chunks.start, chunks.end, decoder.decode(chunks.line())], [16, 21, "😀\n"]);
  // 30 characters, 60 bytes: 43 are left, so the line must go to a chunk of its own.
  chunks.appendText("é".repeat(30));
  assert.equal(decoder.decode(chunks.line()), "é".repeat(30));
  assert.notEqual(chunks.chunk, first);
  // What was appended before is never changed.
  assert.equal(decoder.decode(first.subarray(0, 21)), "a".repeat(16) + "😀\n");
});
