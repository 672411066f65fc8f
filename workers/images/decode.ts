/**
 * Decode PNG, JPEG and WebP to RGBA inside the Worker: PNG in TypeScript on the runtime's zlib
 * (png-decode.ts), JPEG and WebP with Squoosh's codecs compiled to WASM (mozjpeg, libwebp).
 * Workers may not compile WASM from bytes at run time, so each codec's .wasm is imported as a
 * precompiled module (wrangler's CompiledWasm rule) and handed to the codec's init.
 */
import decodeJpeg, { init as initJpeg } from "@jsquash/jpeg/decode.js";
import jpegWasm from "@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm?module";
import decodeWebp, { init as initWebp } from "@jsquash/webp/decode.js";
import webpWasm from "@jsquash/webp/codec/dec/webp_dec.wasm?module";
import { CLASSIFY_LIMITS } from "../classify/limits";
import { ImageDecodeError, ImageTooLargeError } from "../problems/problems";
import { CorruptJpegError, JpegNotReducibleError, decodeJpegEighth } from "./jpeg-eighth";
import { decodePng } from "./png-decode";
import type { ImageFormat, ImageHeader } from "./probe";
import type { RgbaImage } from "./preprocess";

/** What the codecs return: the shape of the DOM's ImageData. */
interface DecodedPixels {
  data: Uint8ClampedArray;
  width: number;
  height: number;
}

// The codecs construct ImageData, which the Workers runtime does not provide.
const scope = globalThis as { ImageData?: unknown };
scope.ImageData ??= class implements DecodedPixels {
  constructor(
    readonly data: Uint8ClampedArray,
    readonly width: number,
    readonly height: number,
  ) {}
};

// The Emscripten codecs (jpeg, webp) take a precompiled module and options, though their
// published typings declare only the options; they build their .wasm URL from
// import.meta.url unless told where it is, and write why a decode failed to stderr, which is
// kept here for the error the client gets.
interface EmscriptenOptions {
  locateFile: (path: string) => string;
  printErr: (message: string) => void;
}
type EmscriptenInit = (module: WebAssembly.Module, options: EmscriptenOptions) => Promise<void>;
let codecMessage = "";
const emscriptenOptions: EmscriptenOptions = {
  locateFile: (path) => path,
  printErr: (message) => {
    codecMessage = message;
  },
};

type Decoder = (data: ArrayBuffer) => Promise<RgbaImage>;
const decoders = new Map<ImageFormat, Promise<Decoder>>();

function loadDecoder(format: ImageFormat): Promise<Decoder> {
  switch (format) {
    case "png":
      return Promise.resolve((data) => decodePng(new Uint8Array(data)));
    case "jpeg":
      return (initJpeg as unknown as EmscriptenInit)(jpegWasm, emscriptenOptions).then(() => (data) => decodeJpeg(data));
    case "webp":
      return (initWebp as unknown as EmscriptenInit)(webpWasm, emscriptenOptions).then(() => (data) => decodeWebp(data));
  }
}

function decoderFor(format: ImageFormat): Promise<Decoder> {
  let decoder = decoders.get(format);
  if (!decoder) {
    decoder = loadDecoder(format);
    decoders.set(format, decoder);
    decoder.catch(() => decoders.delete(format));
  }
  return decoder;
}

/** Least size, per side, a decoder may shrink an image to instead of decoding it whole. */
export interface SizeHint {
  width: number;
  height: number;
}

const reducible = (header: ImageHeader, atLeast: SizeHint | undefined) =>
  header.format === "jpeg" && atLeast !== undefined && header.width >= 8 * atLeast.width && header.height >= 8 * atLeast.height;

/**
 * The memory decoding this image takes at its peak, from its header: its RGBA pixels at the
 * scale it will be decoded at, twice for a PNG (its inflated scanlines beside them). What
 * admission control holds for a decode (workers/admission).
 *
 * @example
 * decodeBytes({ format: "jpeg", width: 4000, height: 3000 }, { width: 128, height: 128 }); // 750,000 (1/8 scale)
 */
export function decodeBytes(header: ImageHeader, atLeast?: SizeHint): number {
  if (reducible(header, atLeast)) return Math.ceil(header.width / 8) * Math.ceil(header.height / 8) * 4;
  return header.width * header.height * 4 * (header.format === "png" ? 2 : 1);
}

/** A JPEG at 1/8 scale when that still covers `atLeast`, else undefined (decode it whole). */
function decodeReduced(bytes: Uint8Array, header: ImageHeader, atLeast: SizeHint | undefined): RgbaImage | undefined {
  if (!reducible(header, atLeast)) return undefined;
  try {
    return decodeJpegEighth(bytes);
  } catch (err) {
    if (err instanceof JpegNotReducibleError) return undefined;
    if (err instanceof CorruptJpegError) throw new ImageDecodeError(`The JPEG data is corrupt or truncated (${err.message}).`);
    throw err;
  }
}

/**
 * Decode an image whose header has already been checked against the size limits: at 1/8 scale
 * when it is a JPEG that is still at least `atLeast` then (no full-size pixels are ever held),
 * else whole, with the codec's WASM instance, created on its first use and kept for the
 * isolate's life.
 *
 * @throws ImageTooLargeError when an image allowed only at reduced scale must be decoded whole
 * @example
 * const header = probeImage(bytes);
 * const image = await decodeImage(bytes, header, { width: 128, height: 128 }); // { width, height, data: RGBA bytes }
 */
export async function decodeImage(bytes: Uint8Array, header: ImageHeader, atLeast?: SizeHint): Promise<RgbaImage> {
  const reduced = decodeReduced(bytes, header, atLeast);
  if (reduced) return reduced;
  const { maxImagePixels } = CLASSIFY_LIMITS;
  if (header.width * header.height > maxImagePixels) {
    throw new ImageTooLargeError(
      `This ${header.width}x${header.height} ${header.format.toUpperCase()} cannot be decoded at reduced scale, and whole it is over the ${maxImagePixels}-pixel limit.`,
      { maxImagePixels },
    );
  }
  const decode = await decoderFor(header.format); // a failure here is the server's, not the image's
  const data = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let decoded: RgbaImage;
  codecMessage = "";
  try {
    decoded = await decode(data);
  } catch (err) {
    // The Emscripten codecs end a failed decode with exit(), which leaves their instance's
    // stack unwound: later decodes on it failed oddly ("null function") and then looped
    // forever, hanging the isolate (found by test/integration/image-fuzz.test.ts). The next
    // decode gets a fresh instance.
    decoders.delete(header.format);
    if (err instanceof ImageDecodeError) throw err;
    const reason = codecMessage || String(err);
    throw new ImageDecodeError(`The ${header.format.toUpperCase()} data is corrupt or truncated (${reason}).`);
  }
  // libjpeg decodes a file cut short as far as it goes and only warns; such a file is refused
  // here as it is by libjpeg-turbo in sharp (failOn "warning") and by PIL.
  if (/premature end/i.test(codecMessage)) throw new ImageDecodeError(`The ${header.format.toUpperCase()} data is truncated (${codecMessage}).`);
  if (decoded.data.length !== decoded.width * decoded.height * 4) {
    throw new ImageDecodeError(`The ${header.format.toUpperCase()} decoder returned no RGBA pixels.`);
  }
  return { width: decoded.width, height: decoded.height, data: decoded.data };
}
