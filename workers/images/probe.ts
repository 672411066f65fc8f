/**
 * Read an image's format and dimensions from its first bytes, without decoding it, so that size
 * limits are enforced before any pixel memory is allocated.
 */
import { ImageDecodeError, UnsupportedMediaTypeError } from "../problems/problems";

export type ImageFormat = "png" | "jpeg" | "webp";

export const IMAGE_MEDIA_TYPES: Record<ImageFormat, string> = {
  png: "image/png",
  jpeg: "image/jpeg",
  webp: "image/webp",
};

export interface ImageHeader {
  format: ImageFormat;
  width: number;
  height: number;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function ascii(bytes: Uint8Array, at: number, length: number): string {
  return String.fromCharCode(...bytes.subarray(at, at + length));
}

/**
 * The format named by the file's magic bytes, or undefined for anything else.
 *
 * @example
 * sniffFormat(new Uint8Array([0xff, 0xd8, 0xff, 0xe0])); // "jpeg"
 */
export function sniffFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (bytes.length >= 8 && PNG_SIGNATURE.every((b, i) => bytes[i] === b)) return "png";
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return "jpeg";
  if (bytes.length >= 12 && ascii(bytes, 0, 4) === "RIFF" && ascii(bytes, 8, 4) === "WEBP") return "webp";
  return undefined;
}

function pngSize(bytes: Uint8Array, view: DataView): [number, number] {
  if (bytes.length < 24 || ascii(bytes, 12, 4) !== "IHDR") throw new ImageDecodeError("PNG has no IHDR chunk.");
  return [view.getUint32(16), view.getUint32(20)];
}

// SOF markers carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
function isStartOfFrame(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

function jpegSize(bytes: Uint8Array, view: DataView): [number, number] {
  let at = 2;
  while (at + 4 <= bytes.length) {
    if (bytes[at] !== 0xff) throw new ImageDecodeError("JPEG marker stream is corrupt.");
    const marker = bytes[at + 1]!;
    if (marker === 0xff) {
      at += 1; // fill byte
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      at += 2; // standalone marker, no length
      continue;
    }
    const length = view.getUint16(at + 2);
    if (isStartOfFrame(marker)) {
      if (at + 9 > bytes.length) break;
      return [view.getUint16(at + 7), view.getUint16(at + 5)];
    }
    if (marker === 0xda || marker === 0xd9) break; // scan data or end before any frame header
    at += 2 + length;
  }
  throw new ImageDecodeError("JPEG has no frame header.");
}

function webpSize(bytes: Uint8Array, view: DataView): [number, number] {
  if (bytes.length < 30) throw new ImageDecodeError("WebP file is truncated.");
  const chunk = ascii(bytes, 12, 4);
  if (chunk === "VP8 ") {
    if (bytes[23] !== 0x9d || bytes[24] !== 0x01 || bytes[25] !== 0x2a) throw new ImageDecodeError("WebP VP8 frame is corrupt.");
    return [view.getUint16(26, true) & 0x3fff, view.getUint16(28, true) & 0x3fff];
  }
  if (chunk === "VP8L") {
    if (bytes[20] !== 0x2f) throw new ImageDecodeError("WebP VP8L stream is corrupt.");
    const bits = view.getUint32(21, true);
    return [(bits & 0x3fff) + 1, ((bits >>> 14) & 0x3fff) + 1];
  }
  if (chunk === "VP8X") {
    const width = (bytes[24]! | (bytes[25]! << 8) | (bytes[26]! << 16)) + 1;
    const height = (bytes[27]! | (bytes[28]! << 8) | (bytes[29]! << 16)) + 1;
    return [width, height];
  }
  throw new ImageDecodeError(`WebP has an unknown first chunk '${chunk}'.`);
}

/**
 * Format and size of an encoded PNG, JPEG or WebP image, read from its header only.
 *
 * @throws UnsupportedMediaTypeError when the bytes are none of those formats
 * @throws ImageDecodeError when the header is truncated or corrupt
 * @example
 * const { format, width, height } = probeImage(new Uint8Array(await request.arrayBuffer()));
 */
export function probeImage(bytes: Uint8Array): ImageHeader {
  const format = sniffFormat(bytes);
  if (!format) {
    throw new UnsupportedMediaTypeError("The data is not a PNG, JPEG or WebP image.", Object.values(IMAGE_MEDIA_TYPES));
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const [width, height] = format === "png" ? pngSize(bytes, view) : format === "jpeg" ? jpegSize(bytes, view) : webpSize(bytes, view);
  if (width === 0 || height === 0) throw new ImageDecodeError(`The ${format.toUpperCase()} header gives a size of ${width}x${height}.`);
  return { format, width, height };
}
