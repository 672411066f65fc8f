/**
 * Just enough of the protobuf wire format to read an ONNX model and write it back with a few
 * fields changed: a message is split into its fields, whose bytes are kept as they came (a
 * 40 MB initializer is a view, never a copy, until the model is written out once).
 */

/** The bytes are not a protobuf message (truncated, or not one at all). */
export class ProtobufError extends Error {
  override name = "ProtobufError";
}

/** The wire types protobuf writes (groups, 3 and 4, are long deprecated). */
export const WireType = { Varint: 0, Fixed64: 1, Bytes: 2, Fixed32: 5 } as const;
export type WireType = (typeof WireType)[keyof typeof WireType];

/** One field of a message: its number, wire type and value (a varint as a bigint-safe number, or the bytes). */
export interface Field {
  number: number;
  wire: WireType;
  /** Varint fields: the value, signed as int64 (beyond 2^53 it loses precision; ONNX's dims and enums never get there). */
  int: number;
  /** Length-delimited, fixed32 and fixed64 fields: a view of the bytes. */
  bytes: Uint8Array;
}

function readVarint(buf: Uint8Array, pos: number): [number, number] {
  let value = 0;
  for (let i = 0; i < 7; i++) {
    if (pos >= buf.length) throw new ProtobufError("a varint runs past the end of the bytes");
    const byte = buf[pos++]!;
    value += (byte & 0x7f) * 2 ** (7 * i);
    if (byte < 0x80) return [value, pos];
  }
  // Past 49 bits (large or negative int64s, ten-byte two's complement): exact in BigInt.
  let big = BigInt(value);
  for (let i = 7; i < 10; i++) {
    if (pos >= buf.length) throw new ProtobufError("a varint runs past the end of the bytes");
    const byte = buf[pos++]!;
    big += BigInt(byte & 0x7f) << BigInt(7 * i);
    if (byte < 0x80) return [Number(BigInt.asIntN(64, big)), pos];
  }
  throw new ProtobufError("a varint is longer than ten bytes");
}

/**
 * The fields of one message, in the order they came.
 *
 * @throws ProtobufError on bytes that are no message
 * @example
 * const graph = fields(model).find((f) => f.number === 7)!.bytes;
 */
export function fields(buf: Uint8Array): Field[] {
  const out: Field[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const [key, afterKey] = readVarint(buf, pos);
    const number = Math.floor(key / 8);
    const wire = key % 8;
    pos = afterKey;
    if (number < 1) throw new ProtobufError(`field number ${number} at byte ${pos}`);
    if (wire === WireType.Varint) {
      const [int, next] = readVarint(buf, pos);
      out.push({ number, wire: WireType.Varint, int, bytes: buf.subarray(pos, next) });
      pos = next;
    } else if (wire === WireType.Bytes) {
      const [length, start] = readVarint(buf, pos);
      if (length < 0 || start + length > buf.length) throw new ProtobufError(`field ${number} claims ${length} bytes, past the end`);
      out.push({ number, wire: WireType.Bytes, int: length, bytes: buf.subarray(start, start + length) });
      pos = start + length;
    } else if (wire === WireType.Fixed32 || wire === WireType.Fixed64) {
      const size = wire === WireType.Fixed32 ? 4 : 8;
      if (pos + size > buf.length) throw new ProtobufError(`field ${number} runs past the end`);
      out.push({ number, wire: wire as WireType, int: 0, bytes: buf.subarray(pos, pos + size) });
      pos += size;
    } else {
      throw new ProtobufError(`wire type ${wire} of field ${number} is not one protobuf writes`);
    }
  }
  return out;
}

const utf8 = new TextDecoder();
const encoder = new TextEncoder();

/** A string field's text. */
export const text = (field: Field): string => utf8.decode(field.bytes);

/** Every value of a repeated integer field, packed or not. */
export function ints(all: Field[], number: number): number[] {
  const out: number[] = [];
  for (const field of all) {
    if (field.number !== number) continue;
    if (field.wire === WireType.Varint) out.push(field.int);
    else if (field.wire === WireType.Bytes) {
      for (let pos = 0; pos < field.bytes.length; ) {
        const [value, next] = readVarint(field.bytes, pos);
        out.push(value);
        pos = next;
      }
    }
  }
  return out;
}

/** The first field with this number, if any. */
export const first = (all: Field[], number: number): Field | undefined => all.find((field) => field.number === number);

/** Every field with this number. */
export const every = (all: Field[], number: number): Field[] => all.filter((field) => field.number === number);

function varint(value: number): number[] {
  const out: number[] = [];
  let v = BigInt.asUintN(64, BigInt(value)); // a negative int64 is its two's complement, ten bytes
  while (v >= 128n) {
    out.push(Number(v & 127n) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

/** A message being written: fields appended in order, then `finish()`ed into one buffer. */
export class MessageWriter {
  private parts: Uint8Array[] = [];

  /** A field as read (fields()), its bytes unchanged. */
  raw(field: Field): this {
    this.parts.push(Uint8Array.from(varint(field.number * 8 + field.wire)));
    if (field.wire === WireType.Bytes) this.parts.push(Uint8Array.from(varint(field.bytes.length)));
    this.parts.push(field.bytes);
    return this;
  }

  bytes(number: number, value: Uint8Array): this {
    return this.raw({ number, wire: WireType.Bytes, int: value.length, bytes: value });
  }

  string(number: number, value: string): this {
    return this.bytes(number, encoder.encode(value));
  }

  int(number: number, value: number): this {
    return this.raw({ number, wire: WireType.Varint, int: value, bytes: Uint8Array.from(varint(value)) });
  }

  /** A packed repeated integer field. */
  packed(number: number, values: number[]): this {
    return this.bytes(number, Uint8Array.from(values.flatMap(varint)));
  }

  float(number: number, value: number): this {
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setFloat32(0, value, true);
    return this.raw({ number, wire: WireType.Fixed32, int: 0, bytes });
  }

  finish(): Uint8Array<ArrayBuffer> {
    const out = new Uint8Array(this.parts.reduce((sum, part) => sum + part.length, 0));
    let pos = 0;
    for (const part of this.parts) {
      out.set(part, pos);
      pos += part.length;
    }
    return out;
  }
}
