/** Fashion-MNIST from Debian's `dataset-fashion-mnist` package (gzipped IDX files; .ci/run installs it). */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import type { Digits } from "./mnist";

export const FASHION_DIR = process.env.FASHION_MNIST_DIR ?? "/usr/share/datasets/fashion-mnist";
export const FASHION_LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

/** The 'train' (60,000) or 't10k' (10,000) split, as uint8 [count, 28, 28] and labels. */
export function fashionMnist(split: "train" | "t10k"): Digits {
  const images = gunzipSync(readFileSync(join(FASHION_DIR, `${split}-images-idx3-ubyte.gz`)));
  const labels = gunzipSync(readFileSync(join(FASHION_DIR, `${split}-labels-idx1-ubyte.gz`)));
  const count = labels.readUInt32BE(4);
  return { count, pixels: new Uint8Array(images.subarray(16, 16 + count * 784)), labels: new Uint8Array(labels.subarray(8, 8 + count)) };
}
