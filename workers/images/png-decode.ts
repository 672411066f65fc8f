/**
 * PNG decoding in plain TypeScript, on the runtime's own zlib (DecompressionStream), to RGBA.
 *
 * The Worker used to decode PNGs with a Rust codec compiled to WASM (@jsquash/png). Every file
 * that codec refused leaked part of its instance's stack (its error unwinds through the WASM
 * frames), and after some 740 refused files every PNG failed to decode, for the isolate's life:
 * a client could break PNG decoding for everyone by sending broken files. A decode here shares
 * no state between requests; a broken file is one exception.
 *
 * Supported: every PNG colour type and bit depth (1-16), palettes with tRNS, Adam7 interlacing.
 * 16-bit samples keep their high byte, as PIL and libpng's strip-16 do.
 */
import { ImageDecodeError } from "../problems/problems";
import { checkPngChunks } from "./png-chunks";
import type { RgbaImage } from "./preprocess";

interface Header {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  interlaced: boolean;
}

/** Channels per colour type: gray, -, RGB, palette index, gray+alpha, -, RGBA. */
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };

function fail(detail: string): never {
  throw new ImageDecodeError(`The PNG data is corrupt (${detail}).`);
}

function readChunks(bytes: Uint8Array): { header: Header; palette?: Uint8Array; transparency?: Uint8Array; data: Uint8Array } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let header: Header | undefined;
  let palette: Uint8Array | undefined;
  let transparency: Uint8Array | undefined;
  const data: Uint8Array[] = [];
  for (let at = 8; at + 12 <= bytes.length; ) {
    const length = view.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    const body = bytes.subarray(at + 8, at + 8 + length);
    if (type === "IHDR") {
      if (length !== 13) fail("IHDR is not 13 bytes");
      const [bitDepth, colorType, compression, filter, interlace] = body.subarray(8, 13);
      if (!DEPTHS[colorType!]?.includes(bitDepth!)) fail(`colour type ${colorType} with bit depth ${bitDepth}`);
      if (compression !== 0 || filter !== 0 || interlace! > 1) fail("unknown compression, filter or interlace method");
      header = { width: view.getUint32(at + 8), height: view.getUint32(at + 12), bitDepth: bitDepth!, colorType: colorType!, interlaced: interlace === 1 };
    } else if (type === "PLTE") {
      if (length % 3 !== 0 || length === 0 || length > 768) fail("a palette that is not 1-256 RGB entries");
      palette = body;
    } else if (type === "tRNS") {
      transparency = body;
    } else if (type === "IDAT") {
      data.push(body);
    } else if (type === "IEND") {
      break;
    }
    at += 12 + length;
  }
  if (!header) fail("no IHDR");
  if (header.colorType === 3 && !palette) fail("a palette image without PLTE");
  const joined = new Uint8Array(data.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of data) {
    joined.set(part, offset);
    offset += part.length;
  }
  return { header, palette, transparency, data: joined };
}

/** The zlib stream inflated to exactly `expected` bytes, or an ImageDecodeError. */
async function inflate(data: Uint8Array<ArrayBuffer>, expected: number): Promise<Uint8Array> {
  const out = new Uint8Array(expected);
  let filled = 0;
  const reader = new Blob([data]).stream().pipeThrough(new DecompressionStream("deflate")).getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (filled + value.length > expected) fail("more image data than its size holds");
      out.set(value, filled);
      filled += value.length;
    }
  } catch (err) {
    if (err instanceof ImageDecodeError) throw err;
    fail(`its compressed data does not inflate: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  if (filled !== expected) fail(`${filled} bytes of image data where its size needs ${expected}`);
  return out;
}

/** Adam7 passes: [x start, y start, x step, y step]; a plain image is one pass of step 1. */
const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]] as const;

function passes({ width, height, interlaced }: Header): { x0: number; y0: number; dx: number; dy: number; w: number; h: number }[] {
  const all = interlaced ? ADAM7 : ([[0, 0, 1, 1]] as const);
  return all
    .map(([x0, y0, dx, dy]) => ({ x0, y0, dx, dy, w: Math.ceil((width - x0) / dx), h: Math.ceil((height - y0) / dy) }))
    .filter((p) => p.w > 0 && p.h > 0);
}

const rowBytes = (w: number, h: Header) => Math.ceil((w * CHANNELS[h.colorType]! * h.bitDepth) / 8);

/** Undo the scanline filters of one pass in place; returns the offset after it. */
function unfilter(raw: Uint8Array, at: number, w: number, rows: number, h: Header): number {
  const stride = rowBytes(w, h);
  const bpp = Math.max(1, (CHANNELS[h.colorType]! * h.bitDepth) >> 3);
  for (let y = 0; y < rows; y++) {
    const filter = raw[at]!;
    const row = at + 1;
    const prior = row - stride - 1; // the previous row's first byte (skipping its filter byte)
    const hasPrior = y > 0;
    for (let i = 0; i < stride; i++) {
      const left = i >= bpp ? raw[row + i - bpp]! : 0;
      const up = hasPrior ? raw[prior + i]! : 0;
      const upLeft = hasPrior && i >= bpp ? raw[prior + i - bpp]! : 0;
      let add: number;
      switch (filter) {
        case 0: add = 0; break;
        case 1: add = left; break;
        case 2: add = up; break;
        case 3: add = (left + up) >> 1; break;
        case 4: {
          const p = left + up - upLeft;
          const pa = Math.abs(p - left), pb = Math.abs(p - up), pc = Math.abs(p - upLeft);
          add = pa <= pb && pa <= pc ? left : pb <= pc ? up : upLeft;
          break;
        }
        default: fail(`unknown scanline filter ${filter}`);
      }
      raw[row + i] = (raw[row + i]! + add) & 0xff;
    }
    at = row + stride;
  }
  return at;
}

/** One row of 8-bit gray, gray+alpha, RGB or RGBA samples into RGBA (the common case, without per-pixel closures). */
function copyRow8(raw: Uint8Array, at: number, rgba: Uint8ClampedArray, out: number, step: number, w: number, colorType: number): void {
  for (let x = 0; x < w; x++, out += step) {
    switch (colorType) {
      case 6:
        rgba[out] = raw[at++]!;
        rgba[out + 1] = raw[at++]!;
        rgba[out + 2] = raw[at++]!;
        rgba[out + 3] = raw[at++]!;
        break;
      case 2:
        rgba[out] = raw[at++]!;
        rgba[out + 1] = raw[at++]!;
        rgba[out + 2] = raw[at++]!;
        rgba[out + 3] = 255;
        break;
      case 4:
        rgba[out] = rgba[out + 1] = rgba[out + 2] = raw[at++]!;
        rgba[out + 3] = raw[at++]!;
        break;
      default:
        rgba[out] = rgba[out + 1] = rgba[out + 2] = raw[at++]!;
        rgba[out + 3] = 255;
    }
  }
}

/**
 * Decode a PNG whose header has been probed (and checked against the size limits) to RGBA.
 *
 * @throws ImageDecodeError for a damaged or malformed file
 * @example
 * const { width, height, data } = await decodePng(bytes);
 */
export async function decodePng(bytes: Uint8Array): Promise<RgbaImage> {
  checkPngChunks(bytes);
  const { header, palette, transparency, data } = readChunks(bytes);
  const { width, height, bitDepth, colorType } = header;
  const layout = passes(header);
  const raw = await inflate(new Uint8Array(data), layout.reduce((sum, p) => sum + p.h * (rowBytes(p.w, header) + 1), 0));
  const rgba = new Uint8ClampedArray(width * height * 4);
  const channels = CHANNELS[colorType]!;
  const maxSample = (1 << bitDepth) - 1;
  const view = new DataView(raw.buffer);
  // The transparent colour of a gray or RGB image, at full bit depth.
  const key = transparency && (colorType === 0 || colorType === 2) && transparency.length >= 2 * channels ? Array.from({ length: channels }, (_, c) => (transparency[2 * c]! << 8) | transparency[2 * c + 1]!) : undefined;

  let at = 0;
  for (const pass of layout) {
    const start = at;
    at = unfilter(raw, at, pass.w, pass.h, header);
    const stride = rowBytes(pass.w, header) + 1;
    for (let y = 0; y < pass.h; y++) {
      const row = start + y * stride + 1;
      if (bitDepth === 8 && colorType !== 3 && !key) {
        copyRow8(raw, row, rgba, ((pass.y0 + y * pass.dy) * width + pass.x0) * 4, pass.dx * 4, pass.w, colorType);
        continue;
      }
      for (let x = 0; x < pass.w; x++) {
        const sample = (c: number): number => {
          const index = x * channels + c;
          if (bitDepth === 8) return raw[row + index]!;
          if (bitDepth === 16) return view.getUint16(row + 2 * index);
          const bit = index * bitDepth;
          return (raw[row + (bit >> 3)]! >> (8 - bitDepth - (bit & 7))) & maxSample;
        };
        const to8 = (v: number) => (bitDepth === 16 ? v >> 8 : bitDepth === 8 ? v : Math.round((v * 255) / maxSample));
        const out = ((pass.y0 + y * pass.dy) * width + pass.x0 + x * pass.dx) * 4;
        if (colorType === 3) {
          const i = sample(0);
          if (3 * i + 2 >= palette!.length) fail(`palette index ${i} past its ${palette!.length / 3} entries`);
          rgba[out] = palette![3 * i]!;
          rgba[out + 1] = palette![3 * i + 1]!;
          rgba[out + 2] = palette![3 * i + 2]!;
          rgba[out + 3] = transparency && i < transparency.length ? transparency[i]! : 255;
          continue;
        }
        const values = Array.from({ length: channels }, (_, c) => sample(c));
        const gray = colorType === 0 || colorType === 4;
        const [r, g, b] = gray ? [values[0]!, values[0]!, values[0]!] : [values[0]!, values[1]!, values[2]!];
        rgba[out] = to8(r);
        rgba[out + 1] = to8(g);
        rgba[out + 2] = to8(b);
        const alpha = colorType === 4 ? values[1]! : colorType === 6 ? values[3]! : key && values.every((v, c) => v === key[c]) ? 0 : maxSample;
        rgba[out + 3] = to8(alpha);
      }
    }
  }
  return { width, height, data: rgba };
}
