/**
 * The wire format of the bus: framing only. Records between threads, and between threads and
 * the supervisor; the directory's messages inside CONTROL records are `directory_messages.ts`.
 *
 * One datagram carries many records, so that a busy destination costs one `sendto` per
 * batch instead of one per message:
 *
 * ```
 * datagram := MAGIC record*
 * record   := kind:u8 length:u32le body[length]
 * DIRECT   body := conn:u32le nameLength:u8 name line      (deliver line to one client)
 * ROOM     body := line                                    (deliver line to every joined client)
 * CONTROL  body := JSON of a ControlMessage                (directory traffic)
 * NAMED    body := roomLength:u8 room line                 (deliver line to a named room's members)
 * ```
 *
 * `line` is the exact line the receiving client gets, LF included, so a receiver writes it
 * without decoding it. Everything is validated on receipt: a line must be one LF-terminated
 * line of valid UTF-8 with no control character but TAB (C0, DEL and C1 refused), whoever
 * wrote the datagram, since it goes to clients as it is. A bad record is reported and the
 * rest of its datagram dropped.
 *
 * @module
 */
import { allocate } from "./_slab.ts";
import {
  type ControlMessage,
  DirectoryMessageError,
  parseControlMessage,
} from "./directory_messages.ts";
import { roomProblem } from "./protocol.ts";

/** The largest datagram chatd sends. Every accepted line fits into one (see config.ts). */
export const MAX_DATAGRAM_BYTES = 128 * 1024;
/** First byte of every datagram: format version 1. */
export const MAGIC = 0xc1;
/** Bytes before a record's body. */
export const RECORD_HEADER_BYTES = 5;

/** The kinds of record. */
export const RecordKind = { DIRECT: 1, ROOM: 2, CONTROL: 3, NAMED: 4 } as const;

/** A decoded record. Views point into the received datagram and live only as long. */
export type DatagramRecord =
  | { kind: "direct"; conn: number; name: string; line: Uint8Array }
  | { kind: "room"; line: Uint8Array }
  | { kind: "named"; room: string; line: Uint8Array }
  | { kind: "control"; message: ControlMessage };

/** A malformed datagram or record. */
export class DatagramError extends Error {
  override name = "DatagramError";
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

function setUint32(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value & 0xff;
  bytes[offset + 1] = (value >>> 8) & 0xff;
  bytes[offset + 2] = (value >>> 16) & 0xff;
  bytes[offset + 3] = value >>> 24;
}

// Records are cut from a slab (`_slab.ts`): made on the per-message path, never changed.
// Headers are written byte by byte: a DataView per record cost 3% of a thread's time.
function record(kind: number, bodyLength: number): Uint8Array {
  const bytes = allocate(RECORD_HEADER_BYTES + bodyLength);
  bytes[0] = kind;
  setUint32(bytes, 1, bodyLength);
  return bytes;
}

/** A record that delivers `line` to connection `conn`, if it still belongs to `name`. */
export function encodeDirect(conn: number, name: string, line: Uint8Array): Uint8Array {
  // Names are ASCII (see nameProblem in protocol.ts): one byte per character, no encoder.
  const nameBytes = isAscii(name) ? undefined : encoder.encode(name);
  const nameLength = nameBytes?.length ?? name.length;
  const bytes = record(RecordKind.DIRECT, 5 + nameLength + line.length);
  setUint32(bytes, 5, conn);
  bytes[9] = nameLength;
  if (nameBytes) bytes.set(nameBytes, 10);
  else for (let i = 0; i < nameLength; i++) bytes[10 + i] = name.charCodeAt(i);
  bytes.set(line, 10 + nameLength);
  return bytes;
}

/** A record that delivers `line` to every joined client of the receiving thread. */
export function encodeRoom(line: Uint8Array): Uint8Array {
  const bytes = record(RecordKind.ROOM, line.length);
  bytes.set(line, RECORD_HEADER_BYTES);
  return bytes;
}

/**
 * A record that delivers `line` to the members of the named room `room` (`#` included,
 * ASCII, see roomProblem in protocol.ts) on the receiving thread.
 */
export function encodeNamedRoom(room: string, line: Uint8Array): Uint8Array {
  const bytes = record(RecordKind.NAMED, 1 + room.length + line.length);
  bytes[5] = room.length;
  for (let i = 0; i < room.length; i++) bytes[6 + i] = room.charCodeAt(i) & 0x7f;
  bytes.set(line, 6 + room.length);
  return bytes;
}

/** A record carrying a control message. */
export function encodeControl(message: ControlMessage): Uint8Array {
  const json = encoder.encode(JSON.stringify(message));
  const bytes = record(RecordKind.CONTROL, json.length);
  bytes.set(json, RECORD_HEADER_BYTES);
  return bytes;
}

/**
 * Decodes a datagram record by record.
 *
 * @throws {DatagramError} at the first malformed record; the records before it were yielded.
 */
export function* decodeDatagram(datagram: Uint8Array): Generator<DatagramRecord> {
  if (datagram.length === 0 || datagram[0] !== MAGIC) {
    throw new DatagramError(`Bad datagram: no magic byte (length ${datagram.length})`);
  }
  const view = new DataView(datagram.buffer, datagram.byteOffset, datagram.byteLength);
  let offset = 1;
  while (offset < datagram.length) {
    if (offset + RECORD_HEADER_BYTES > datagram.length) {
      throw new DatagramError(`Bad record at ${offset}: truncated header`);
    }
    const kind = view.getUint8(offset);
    const length = view.getUint32(offset + 1, true);
    const start = offset + RECORD_HEADER_BYTES;
    const end = start + length;
    if (end > datagram.length) {
      throw new DatagramError(`Bad record at ${offset}: length ${length} past the end`);
    }
    yield decodeRecord(kind, datagram.subarray(start, end), view, start);
    offset = end;
  }
}

function decodeRecord(
  kind: number,
  body: Uint8Array,
  view: DataView,
  start: number,
): DatagramRecord {
  switch (kind) {
    case RecordKind.DIRECT: {
      if (body.length < 5) throw new DatagramError("Bad DIRECT record: too short");
      const conn = view.getUint32(start, true);
      const nameLength = view.getUint8(start + 4);
      if (5 + nameLength > body.length) throw new DatagramError("Bad DIRECT record: name");
      const name = decodeName(body, 5, 5 + nameLength);
      return { kind: "direct", conn, name, line: checkLine(body.subarray(5 + nameLength)) };
    }
    case RecordKind.ROOM:
      return { kind: "room", line: checkLine(body) };
    case RecordKind.NAMED: {
      if (body.length < 1) throw new DatagramError("Bad NAMED record: too short");
      const roomLength = view.getUint8(start);
      if (1 + roomLength > body.length) throw new DatagramError("Bad NAMED record: room");
      const room = decodeText(body.subarray(1, 1 + roomLength));
      if (roomProblem(room) !== undefined) throw new DatagramError("Bad NAMED record: room");
      return { kind: "named", room, line: checkLine(body.subarray(1 + roomLength)) };
    }
    case RecordKind.CONTROL: {
      let value: unknown;
      try {
        value = JSON.parse(decodeText(body));
      } catch (error: unknown) {
        throw new DatagramError("Bad CONTROL record: not JSON", { cause: error });
      }
      try {
        return { kind: "control", message: parseControlMessage(value) };
      } catch (error: unknown) {
        if (!(error instanceof DirectoryMessageError)) throw error;
        throw new DatagramError(`Bad CONTROL record: ${error.message}`, { cause: error });
      }
    }
    default:
      throw new DatagramError(`Bad record: unknown kind ${kind}`);
  }
}

/**
 * `bytes[start, end)` as text: built directly when ASCII (names are; a decoder call costs
 * about 0.3 µs, several times this), decoded and checked otherwise.
 */
function decodeName(bytes: Uint8Array, start: number, end: number): string {
  let text = "";
  for (let i = start; i < end; i++) {
    const byte = bytes[i]!;
    if (byte > 0x7f) return decodeText(bytes.subarray(start, end));
    text += String.fromCharCode(byte);
  }
  return text;
}

function decodeText(bytes: Uint8Array): string {
  try {
    return decoder.decode(bytes);
  } catch (error: unknown) {
    throw new DatagramError("Bad record: invalid UTF-8", { cause: error });
  }
}

/**
 * `line` when it is one LF-terminated line of valid UTF-8 without control characters (C0,
 * DEL, C1) other than TAB: what a client may receive. One pass over the bytes, no decoding.
 */
function checkLine(line: Uint8Array): Uint8Array {
  const end = line.length - 1;
  if (end < 0 || line[end] !== 10) {
    throw new DatagramError("Bad record: the line does not end in LF");
  }
  let i = 0;
  while (i < end) {
    const b = line[i]!;
    if (b < 0x80) {
      if (b === 10) throw new DatagramError("Bad record: the line holds more than one line");
      if ((b < 0x20 && b !== 9) || b === 0x7f) throw controlCharacter();
      i++;
    } else if (b < 0xc2) {
      throw badUtf8(); // a continuation byte, or an overlong lead (0xC0, 0xC1)
    } else if (b < 0xe0) {
      if (i + 1 >= end || !isContinuation(line[i + 1]!)) throw badUtf8();
      if (b === 0xc2 && line[i + 1]! < 0xa0) throw controlCharacter(); // C1: U+0080..U+009F
      i += 2;
    } else if (b < 0xf0) {
      if (i + 2 >= end) throw badUtf8();
      const c = line[i + 1]!;
      // 0xE0 needs 0xA0.. (no overlong), 0xED at most 0x9F (no surrogates).
      if (
        b === 0xe0 ? c < 0xa0 || c > 0xbf : b === 0xed ? c < 0x80 || c > 0x9f : !isContinuation(c)
      ) {
        throw badUtf8();
      }
      if (!isContinuation(line[i + 2]!)) throw badUtf8();
      i += 3;
    } else if (b < 0xf5) {
      if (i + 3 >= end) throw badUtf8();
      const c = line[i + 1]!;
      // 0xF0 needs 0x90.. (no overlong), 0xF4 at most 0x8F (nothing past U+10FFFF).
      if (
        b === 0xf0 ? c < 0x90 || c > 0xbf : b === 0xf4 ? c < 0x80 || c > 0x8f : !isContinuation(c)
      ) {
        throw badUtf8();
      }
      if (!isContinuation(line[i + 2]!) || !isContinuation(line[i + 3]!)) throw badUtf8();
      i += 4;
    } else {
      throw badUtf8();
    }
  }
  return line;
}

function isContinuation(byte: number): boolean {
  return (byte & 0xc0) === 0x80;
}

function controlCharacter(): DatagramError {
  return new DatagramError("Bad record: the line holds a control character");
}

function badUtf8(): DatagramError {
  return new DatagramError("Bad record: the line is not valid UTF-8");
}
