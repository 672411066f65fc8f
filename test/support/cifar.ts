/** CIFAR-10 validation JPEGs (the last 500 of each class in ../shared/data), as uploaded files. */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./paths";

export const CIFAR_LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];
const ARCHIVE = join(ROOT, "..", "shared", "data", "cifar10", "train.tar.gz");
const EXTRACTED = join(ROOT, ".cache", "cifar10");

export interface LabelledFile {
  name: string;
  label: number;
  bytes: Uint8Array<ArrayBuffer>;
}

/**
 * `perClass` images of each class from the start of the validation slice (files 4500 on),
 * the same images scripts/training/cifar.py holds out from training.
 */
export function cifarValidation(perClass: number): LabelledFile[] {
  if (!existsSync(join(EXTRACTED, "train"))) {
    mkdirSync(EXTRACTED, { recursive: true });
    execFileSync("tar", ["-xzf", ARCHIVE, "-C", EXTRACTED]);
  }
  return CIFAR_LABELS.flatMap((label, index) =>
    Array.from({ length: perClass }, (_, i) => {
      const name = `${label}/${String(4500 + i).padStart(4, "0")}.jpg`;
      return { name, label: index, bytes: new Uint8Array(readFileSync(join(EXTRACTED, "train", name))) };
    }),
  );
}
