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
 * without decoding it. Everything is validated on receipt; a bad record is reported and the
 * rest of its datagram dropped.
 *
 * @module
 */
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

// Headers are written byte by byte: a DataView per record cost 3% of a thread's time.
function record(kind: number, bodyLength: number): Uint8Array {
  const bytes = new Uint8Array(RECORD_HEADER_BYTES + bodyLength);
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
      const name = decodeText(body.subarray(5, 5 + nameLength));
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

function decodeText(bytes: Uint8Array): string {
  try {
    return decoder.decode(bytes);
  } catch (error: unknown) {
    throw new DatagramError("Bad record: invalid UTF-8", { cause: error });
  }
}

function checkLine(line: Uint8Array): Uint8Array {
  if (line.length === 0 || line[line.length - 1] !== 10) {
    throw new DatagramError("Bad record: the line does not end in LF");
  }
  if (line.indexOf(10) !== line.length - 1) {
    throw new DatagramError("Bad record: the line holds more than one line");
  }
  return line;
}
