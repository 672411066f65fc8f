/**
 * Damaged copies of an encoded image, for fuzzing the decoders: cut at every structural
 * boundary (PNG chunk, JPEG marker, WebP RIFF chunk) and at regular steps, a byte flipped at
 * sampled positions, length fields made wrong, and (PNG) checksums broken.
 */
import { sniffFormat } from "../../workers/images/probe";

export interface Mutation {
  name: string;
  bytes: Uint8Array<ArrayBuffer>;
}

/** Offsets where a structural unit starts, and the offsets of its length fields (big- or little-endian). */
function structure(bytes: Uint8Array): { boundaries: number[]; lengths: { at: number; size: 2 | 4; littleEndian: boolean }[]; checksums: number[] } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const boundaries: number[] = [];
  const lengths: { at: number; size: 2 | 4; littleEndian: boolean }[] = [];
  const checksums: number[] = [];
  const format = sniffFormat(bytes);
  if (format === "png") {
    for (let at = 8; at + 8 <= bytes.length; ) {
      const length = view.getUint32(at);
      boundaries.push(at, at + 8, at + 8 + length);
      lengths.push({ at, size: 4, littleEndian: false });
      if (at + 12 + length <= bytes.length) checksums.push(at + 8 + length);
      at += 12 + length;
    }
  } else if (format === "jpeg") {
    for (let at = 2; at + 1 < bytes.length; at++) {
      if (bytes[at] !== 0xff || bytes[at + 1] === 0x00 || bytes[at + 1] === 0xff) continue;
      boundaries.push(at);
      const marker = bytes[at + 1]!;
      if (marker !== 0x01 && !(marker >= 0xd0 && marker <= 0xd9) && at + 4 <= bytes.length) lengths.push({ at: at + 2, size: 2, littleEndian: false });
    }
  } else if (format === "webp") {
    lengths.push({ at: 4, size: 4, littleEndian: true });
    for (let at = 12; at + 8 <= bytes.length; ) {
      const length = view.getUint32(at + 4, true);
      boundaries.push(at, at + 8);
      lengths.push({ at: at + 4, size: 4, littleEndian: true });
      at += 8 + length + (length & 1);
    }
  }
  return { boundaries: [...new Set(boundaries)].filter((b) => b > 0 && b < bytes.length), lengths, checksums };
}

/**
 * Every mutation of `bytes` this fuzzer makes; `flips` caps the single-byte flips (spread evenly).
 *
 * @example
 * for (const { name, bytes } of mutations(png, 200)) await post(bytes);
 */
export function mutations(bytes: Uint8Array<ArrayBuffer>, flips = 256): Mutation[] {
  const { boundaries, lengths, checksums } = structure(bytes);
  const out: Mutation[] = [];
  const cuts = new Set([...boundaries, ...boundaries.map((b) => b + 1), ...Array.from({ length: Math.ceil(bytes.length / 64) }, (_, i) => i * 64)]);
  for (const at of [...cuts].sort((a, b) => a - b)) if (at > 0 && at < bytes.length) out.push({ name: `cut at ${at}`, bytes: bytes.slice(0, at) });
  const step = Math.max(1, Math.floor(bytes.length / flips));
  for (let at = 0; at < bytes.length; at += step) {
    const flipped = bytes.slice();
    flipped[at] = flipped[at]! ^ 0xff;
    out.push({ name: `byte ${at} flipped`, bytes: flipped });
  }
  for (const { at, size, littleEndian } of lengths) {
    for (const [label, change] of [["+1", 1], ["-1", -1], ["huge", 0x7fff0000]] as const) {
      const changed = bytes.slice();
      const view = new DataView(changed.buffer);
      if (size === 2) view.setUint16(at, label === "huge" ? 0xffff : (view.getUint16(at, littleEndian) + change) & 0xffff, littleEndian);
      else view.setUint32(at, label === "huge" ? 0x7fffffff : (view.getUint32(at, littleEndian) + change) >>> 0, littleEndian);
      out.push({ name: `length at ${at} ${label}`, bytes: changed });
    }
  }
  for (const at of checksums) {
    const broken = bytes.slice();
    broken[at] = broken[at]! ^ 0x5a;
    out.push({ name: `CRC at ${at} wrong`, bytes: broken });
  }
  return out;
}
