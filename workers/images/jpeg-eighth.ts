/**
 * A JPEG decoded at 1/8 scale from each 8x8 block's DC coefficient alone.
 *
 * A block's DC coefficient is 8x the mean of its 64 pixels, so the DC values are the image box-
 * filtered by 8, which is what the preprocessing's box filter would have made of them anyway.
 * Decoding them skips the inverse DCTs, never holds the full-size image (a 12-megapixel photo
 * is 48 MB of RGBA, a third of an isolate; its 1/8 image is 0.75 MB), and in progressive files
 * reads only the DC scans. Entropy decoding of baseline files still walks every coefficient.
 *
 * Huffman-coded baseline, extended and progressive frames with 1 (grayscale) or 3 (YCbCr, or
 * RGB per an Adobe marker) components; anything else (arithmetic coding, lossless, CMYK,
 * 12-bit) is left to the full decoder.
 */
import type { RgbaImage } from "./preprocess";

/** This file needs the full decoder (not an error in the file). */
export class JpegNotReducibleError extends Error {
  override name = "JpegNotReducibleError";
}

/** The file is corrupt where this decoder reads it. */
export class CorruptJpegError extends Error {
  override name = "CorruptJpegError";
}

interface HuffmanTable {
  /** code of up to LOOKAHEAD bits (left-aligned) -> (length << 8) | symbol, 0 if longer. */
  fast: Uint16Array;
  maxCode: Int32Array;
  valueOffset: Int32Array;
  values: Uint8Array;
}

interface Component {
  id: number;
  h: number;
  v: number;
  quantTable: number;
  /** Blocks of the component's own extent (what a non-interleaved scan covers). */
  blocksPerLine: number;
  blocksPerColumn: number;
  /** Blocks per line of the MCU grid (what an interleaved scan covers), the stride of `dc`. */
  paddedPerLine: number;
  dc: Int32Array;
  prediction: number;
  dcTable?: HuffmanTable;
}

interface Frame {
  progressive: boolean;
  width: number;
  height: number;
  components: Component[];
  hMax: number;
  vMax: number;
  mcusPerLine: number;
  mcusPerColumn: number;
}

const LOOKAHEAD = 9;

function buildHuffman(counts: Uint8Array, values: Uint8Array): HuffmanTable {
  const fast = new Uint16Array(1 << LOOKAHEAD);
  const maxCode = new Int32Array(18).fill(-1);
  const valueOffset = new Int32Array(18);
  let code = 0;
  let k = 0;
  for (let length = 1; length <= 16; length++) {
    valueOffset[length] = k - code;
    for (let i = 0; i < counts[length - 1]!; i++, k++, code++) {
      if (length <= LOOKAHEAD) {
        const shift = LOOKAHEAD - length;
        for (let fill = 0; fill < 1 << shift; fill++) fast[(code << shift) | fill] = (length << 8) | values[k]!;
      }
    }
    if (counts[length - 1]) maxCode[length] = code - 1;
    code <<= 1;
  }
  maxCode[17] = 0x7fffffff; // a code longer than 16 bits: corrupt data, caught by the caller
  return { fast, maxCode, valueOffset, values };
}

/** Entropy-coded data, bit by bit: byte stuffing removed, zeros fed once a marker is reached. */
class BitReader {
  pos: number;
  private readonly bytes: Uint8Array;
  private buffer = 0;
  private count = 0;

  constructor(bytes: Uint8Array, pos: number) {
    this.bytes = bytes;
    this.pos = pos;
  }

  private fill(): void {
    while (this.count <= 16) {
      let byte = 0;
      if (this.pos < this.bytes.length) {
        byte = this.bytes[this.pos]!;
        if (byte !== 0xff) this.pos++;
        else if (this.bytes[this.pos + 1] === 0x00) this.pos += 2;
        else byte = 0; // a marker: stay on it
      }
      this.buffer = ((this.buffer << 8) | byte) & 0xffffff;
      this.count += 8;
    }
  }

  bits(n: number): number {
    if (n === 0) return 0;
    this.fill();
    this.count -= n;
    return (this.buffer >>> this.count) & ((1 << n) - 1);
  }

  /** A coefficient of `size` bits, sign-extended as JPEG codes it. */
  receive(size: number): number {
    const value = this.bits(size);
    return value < 1 << (size - 1) ? value - (1 << size) + 1 : value;
  }

  decode(table: HuffmanTable): number {
    this.fill();
    const entry = table.fast[(this.buffer >>> (this.count - LOOKAHEAD)) & ((1 << LOOKAHEAD) - 1)]!;
    if (entry) {
      this.count -= entry >> 8;
      return entry & 0xff;
    }
    let code = this.bits(LOOKAHEAD);
    let length = LOOKAHEAD;
    while (code > table.maxCode[length]!) {
      code = (code << 1) | this.bits(1);
      if (++length > 16) throw new CorruptJpegError("bad Huffman code");
    }
    return table.values[table.valueOffset[length]! + code]!;
  }

  /** Drop the bits left in this byte and step over the restart marker that follows. */
  restart(): void {
    this.buffer = 0;
    this.count = 0;
    const at = nextMarker(this.bytes, this.pos, true);
    if (at + 1 < this.bytes.length && this.bytes[at + 1]! >= 0xd0 && this.bytes[at + 1]! <= 0xd7) this.pos = at + 2;
    else this.pos = at;
  }
}

/** Position of the next marker at or after `from` (restart markers included or skipped). */
function nextMarker(bytes: Uint8Array, from: number, includeRestarts: boolean): number {
  for (let at = from; at + 1 < bytes.length; at++) {
    if (bytes[at] !== 0xff) continue;
    const next = bytes[at + 1]!;
    if (next === 0x00 || next === 0xff) continue;
    if (!includeRestarts && next >= 0xd0 && next <= 0xd7) continue;
    return at;
  }
  return bytes.length;
}

function readFrame(bytes: Uint8Array, at: number, progressive: boolean): Frame {
  if (bytes[at] !== 8) throw new JpegNotReducibleError(`${bytes[at]}-bit samples`);
  const height = (bytes[at + 1]! << 8) | bytes[at + 2]!;
  const width = (bytes[at + 3]! << 8) | bytes[at + 4]!;
  const count = bytes[at + 5]!;
  if (count !== 1 && count !== 3) throw new JpegNotReducibleError(`${count} components`);
  if (!width || !height) throw new JpegNotReducibleError("frame size set by a later DNL marker");
  const raw = Array.from({ length: count }, (_, i) => {
    const base = at + 6 + i * 3;
    return { id: bytes[base]!, h: bytes[base + 1]! >> 4, v: bytes[base + 1]! & 15, quantTable: bytes[base + 2]! & 3 };
  });
  if (raw.some((c) => c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4)) throw new CorruptJpegError("bad sampling factors");
  const hMax = Math.max(...raw.map((c) => c.h));
  const vMax = Math.max(...raw.map((c) => c.v));
  const mcusPerLine = Math.ceil(width / (8 * hMax));
  const mcusPerColumn = Math.ceil(height / (8 * vMax));
  const components = raw.map((c): Component => {
    const paddedPerLine = mcusPerLine * c.h;
    return {
      ...c,
      blocksPerLine: Math.ceil(Math.ceil((width * c.h) / hMax) / 8),
      blocksPerColumn: Math.ceil(Math.ceil((height * c.v) / vMax) / 8),
      paddedPerLine,
      dc: new Int32Array(paddedPerLine * mcusPerColumn * c.v),
      prediction: 0,
    };
  });
  return { progressive, width, height, components, hMax, vMax, mcusPerLine, mcusPerColumn };
}

interface Scan {
  components: Component[];
  acTables: (HuffmanTable | undefined)[];
  spectralStart: number;
  high: number;
  low: number;
}

/** Decode one scan's DC data (skipping AC scans of progressive files); returns where the scan ends. */
function decodeScan(bytes: Uint8Array, at: number, frame: Frame, scan: Scan, restartInterval: number): number {
  if (scan.spectralStart > 0) return nextMarker(bytes, at, false); // AC only: nothing at 1/8 scale
  const reader = new BitReader(bytes, at);
  const refine = frame.progressive && scan.high > 0;
  const dcOnly = frame.progressive; // a progressive DC scan codes no AC coefficients
  const decodeBlock = (c: Component, index: number, acTable: HuffmanTable | undefined) => {
    if (refine) {
      if (reader.bits(1)) c.dc[index] = c.dc[index]! | (1 << scan.low);
      return;
    }
    const size = reader.decode(c.dcTable!);
    c.prediction += size ? reader.receive(size) : 0;
    c.dc[index] = c.prediction * (1 << scan.low);
    if (dcOnly) return;
    for (let k = 1; k < 64; ) {
      const rs = reader.decode(acTable!);
      const run = rs >> 4;
      const bits = rs & 15;
      if (bits === 0) {
        if (run !== 15) break; // end of block
        k += 16;
        continue;
      }
      k += run + 1;
      reader.bits(bits);
    }
  };
  for (const c of scan.components) {
    c.prediction = 0;
    if (!refine && !c.dcTable) throw new CorruptJpegError("scan uses an undefined Huffman table");
  }
  if (!dcOnly && scan.acTables.some((t) => !t)) throw new CorruptJpegError("scan uses an undefined Huffman table");

  const restart = (done: number, total: number) => {
    if (restartInterval && done % restartInterval === 0 && done < total) {
      reader.restart();
      for (const c of scan.components) c.prediction = 0;
    }
  };
  if (scan.components.length === 1) {
    const c = scan.components[0]!;
    const total = c.blocksPerLine * c.blocksPerColumn;
    for (let n = 0; n < total; ) {
      const row = Math.floor(n / c.blocksPerLine);
      decodeBlock(c, row * c.paddedPerLine + (n % c.blocksPerLine), scan.acTables[0]);
      restart(++n, total);
    }
  } else {
    const total = frame.mcusPerLine * frame.mcusPerColumn;
    for (let n = 0; n < total; ) {
      const mcuRow = Math.floor(n / frame.mcusPerLine);
      const mcuColumn = n % frame.mcusPerLine;
      for (const [i, c] of scan.components.entries()) {
        for (let v = 0; v < c.v; v++) {
          for (let h = 0; h < c.h; h++) decodeBlock(c, (mcuRow * c.v + v) * c.paddedPerLine + mcuColumn * c.h + h, scan.acTables[i]);
        }
      }
      restart(++n, total);
    }
  }
  return nextMarker(bytes, reader.pos, false);
}

/** For each of `size` output positions, the two blocks `factor` times coarser around it and the weight of the second. */
function axisTaps(size: number, factor: number, blocks: number): { lo: Int32Array; hi: Int32Array; t: Float32Array } {
  const lo = new Int32Array(size);
  const hi = new Int32Array(size);
  const t = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    const at = Math.min(Math.max((i + 0.5) / factor - 0.5, 0), blocks - 1);
    lo[i] = Math.floor(at);
    hi[i] = Math.min(lo[i]! + 1, blocks - 1);
    t[i] = at - lo[i]!;
  }
  return { lo, hi, t };
}

/** The 1/8-scale image from the components' DC planes. */
function toRgba(frame: Frame, quantDc: number[], adobeTransform: number | undefined): RgbaImage {
  const width = Math.ceil(frame.width / 8);
  const height = Math.ceil(frame.height / 8);
  const planes = frame.components.map((c) => {
    const q = quantDc[c.quantTable];
    if (q === undefined) throw new CorruptJpegError("component uses an undefined quantisation table");
    const plane = new Uint8ClampedArray(width * height);
    const value = (row: number, column: number) => (c.dc[row * c.paddedPerLine + column]! * q) / 8 + 128;
    // A subsampled component's blocks are centred on a coarser grid: interpolate between them.
    const ys = axisTaps(height, frame.vMax / c.v, c.blocksPerColumn);
    const xs = axisTaps(width, frame.hMax / c.h, c.blocksPerLine);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const top = value(ys.lo[y]!, xs.lo[x]!) * (1 - xs.t[x]!) + value(ys.lo[y]!, xs.hi[x]!) * xs.t[x]!;
        const bottom = value(ys.hi[y]!, xs.lo[x]!) * (1 - xs.t[x]!) + value(ys.hi[y]!, xs.hi[x]!) * xs.t[x]!;
        plane[y * width + x] = top * (1 - ys.t[y]!) + bottom * ys.t[y]!;
      }
    }
    return plane;
  });
  const data = new Uint8ClampedArray(width * height * 4);
  const ycc = planes.length === 3 && adobeTransform !== 0;
  for (let i = 0; i < width * height; i++) {
    if (planes.length === 1) {
      data[i * 4] = data[i * 4 + 1] = data[i * 4 + 2] = planes[0]![i]!;
    } else if (ycc) {
      const y = planes[0]![i]!;
      const cb = planes[1]![i]! - 128;
      const cr = planes[2]![i]! - 128;
      data[i * 4] = y + 1.402 * cr;
      data[i * 4 + 1] = y - 0.344136 * cb - 0.714136 * cr;
      data[i * 4 + 2] = y + 1.772 * cb;
    } else {
      data[i * 4] = planes[0]![i]!;
      data[i * 4 + 1] = planes[1]![i]!;
      data[i * 4 + 2] = planes[2]![i]!;
    }
    data[i * 4 + 3] = 255;
  }
  return { width, height, data };
}

/**
 * Decode a JPEG at 1/8 of its size (each side rounded up), ignoring EXIF orientation as the
 * full decoder does.
 *
 * @throws JpegNotReducibleError when the file needs the full decoder
 * @throws CorruptJpegError when the data is corrupt
 * @example
 * const small = decodeJpegEighth(bytes); // 4000x3000 photo -> 500x375 RGBA
 */
export function decodeJpegEighth(bytes: Uint8Array): RgbaImage {
  const quantDc: number[] = [];
  const dcTables: (HuffmanTable | undefined)[] = [];
  const acTables: (HuffmanTable | undefined)[] = [];
  let frame: Frame | undefined;
  let restartInterval = 0;
  let adobeTransform: number | undefined;
  let at = 2;
  let ended = false;
  while (at + 1 < bytes.length) {
    if (bytes[at] !== 0xff) throw new CorruptJpegError(`no marker at byte ${at}`);
    const marker = bytes[at + 1]!;
    if (marker === 0xff || marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      at += marker === 0xff ? 1 : 2;
      continue;
    }
    if (marker === 0xd9) {
      ended = true;
      break;
    }
    if (at + 4 > bytes.length) throw new CorruptJpegError("truncated marker");
    const length = (bytes[at + 2]! << 8) | bytes[at + 3]!;
    const start = at + 4;
    const end = at + 2 + length;
    if (length < 2 || end > bytes.length) throw new CorruptJpegError("truncated segment");
    switch (marker) {
      case 0xdb:
        for (let p = start; p < end; ) {
          const precision = bytes[p]! >> 4;
          quantDc[bytes[p]! & 3] = precision ? (bytes[p + 1]! << 8) | bytes[p + 2]! : bytes[p + 1]!;
          p += 1 + 64 * (precision ? 2 : 1);
        }
        break;
      case 0xc4:
        for (let p = start; p < end; ) {
          const cls = bytes[p]! >> 4;
          const id = bytes[p]! & 3;
          const counts = bytes.subarray(p + 1, p + 17);
          const total = counts.reduce((sum, n) => sum + n, 0);
          const table = buildHuffman(counts, bytes.subarray(p + 17, p + 17 + total));
          (cls === 0 ? dcTables : acTables)[id] = table;
          p += 17 + total;
        }
        break;
      case 0xc0:
      case 0xc1:
      case 0xc2:
        frame = readFrame(bytes, start, marker === 0xc2);
        break;
      case 0xdd:
        restartInterval = (bytes[start]! << 8) | bytes[start + 1]!;
        break;
      case 0xee:
        if (String.fromCharCode(...bytes.subarray(start, start + 5)) === "Adobe") adobeTransform = bytes[start + 11];
        break;
      case 0xda: {
        if (!frame) throw new CorruptJpegError("scan before frame header");
        const count = bytes[start]!;
        const scanComponents: Component[] = [];
        const scanAcTables: (HuffmanTable | undefined)[] = [];
        for (let i = 0; i < count; i++) {
          const id = bytes[start + 1 + i * 2]!;
          const tables = bytes[start + 2 + i * 2]!;
          const component = frame.components.find((c) => c.id === id);
          if (!component) throw new CorruptJpegError(`scan names unknown component ${id}`);
          component.dcTable = dcTables[tables >> 4] ?? component.dcTable;
          scanComponents.push(component);
          scanAcTables.push(acTables[tables & 15]);
        }
        const p = start + 1 + count * 2;
        const scan = { components: scanComponents, acTables: scanAcTables, spectralStart: bytes[p]!, high: bytes[p + 2]! >> 4, low: bytes[p + 2]! & 15 };
        at = decodeScan(bytes, end, frame, scan, restartInterval);
        continue;
      }
      default:
        if (marker >= 0xc3 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
          throw new JpegNotReducibleError(`frame type 0x${marker.toString(16)}`);
        }
    }
    at = end;
  }
  if (!frame) throw new CorruptJpegError("no frame header");
  if (!ended) throw new CorruptJpegError("the file ends before its end-of-image marker"); // cut short, as libjpeg's "premature end"
  return toRgba(frame, quantDc, adobeTransform);
}
