/**
 * A PNG's chunk structure, checked before its pixels are decoded. The PNG codec decodes what it
 * can of a damaged file (a wrong CRC, a stream cut short before IEND) and returns pixels; libpng
 * (sharp) and PIL refuse such a file, and so does this Worker: a damaged upload is the client's
 * to fix, not something to classify as if it were whole.
 */
import { ImageDecodeError } from "../problems/problems";

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/**
 * CRC-32 (ISO 3309, as PNG uses it) of `bytes`.
 *
 * @example
 * crc32(new TextEncoder().encode("IEND")); // 0xae426082
 */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * Check that a PNG (signature already sniffed) is a whole chunk stream: IHDR first, every
 * chunk's length inside the file and its CRC right, at least one IDAT, and IEND last.
 *
 * @throws ImageDecodeError naming the first fault found
 * @example
 * checkPngChunks(bytes); // throws on a file whose IDAT CRC is wrong or whose IEND is missing
 */
export function checkPngChunks(bytes: Uint8Array): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 8;
  let index = 0;
  let sawData = false;
  for (;;) {
    if (at + 12 > bytes.length) throw new ImageDecodeError(`The PNG is truncated: it ends ${index === 0 ? "before its IHDR chunk" : "before its IEND chunk"}.`);
    const length = view.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    if (!/^[A-Za-z]{4}$/.test(type)) throw new ImageDecodeError(`The PNG's chunk ${index} at byte ${at} has no valid type.`);
    if (index === 0 && type !== "IHDR") throw new ImageDecodeError("The PNG does not start with an IHDR chunk.");
    if (length > bytes.length - at - 12) throw new ImageDecodeError(`The PNG is truncated: its ${type} chunk at byte ${at} claims ${length} bytes that are not there.`);
    const expected = view.getUint32(at + 8 + length);
    if (crc32(bytes.subarray(at + 4, at + 8 + length)) !== expected) throw new ImageDecodeError(`The PNG's ${type} chunk at byte ${at} fails its CRC check.`);
    if (type === "IDAT") sawData = true;
    at += 12 + length;
    index++;
    if (type === "IEND") break;
  }
  if (!sawData) throw new ImageDecodeError("The PNG has no IDAT chunk.");
}
