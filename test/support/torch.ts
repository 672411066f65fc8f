/** PyTorch's outputs for a model folder, from scripts/torch_reference.py. */
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PYTHON, ROOT } from "./paths";

export interface TorchOutputs {
  inputs?: number[][];
  embedding: number[][];
  logits: number[][];
}

function reference(args: string[]): TorchOutputs {
  const out = execFileSync(PYTHON, [join(ROOT, "scripts", "torch_reference.py"), ...args], {
    cwd: ROOT,
    maxBuffer: 1 << 30,
    encoding: "utf8",
  });
  return JSON.parse(out) as TorchOutputs;
}

/** Outputs for raw uint8 images at the model's input size; with `flipAverage`, each the mean with its mirror's. */
export function torchOnPixels(modelDir: string, pixels: Uint8Array, { flipAverage = false, translateAverage = false } = {}): TorchOutputs {
  const file = join(mkdtempSync(join(tmpdir(), "cnn-edge-")), "pixels.u8");
  writeFileSync(file, pixels);
  return reference([modelDir, "--pixels", file, ...(flipAverage ? ["--flip-average"] : []), ...(translateAverage ? ["--translate-average"] : [])]);
}

/** Outputs (and the inputs) for `count` fixed standard-normal inputs. */
export function torchOnRandom(modelDir: string, count: number, seed: number): TorchOutputs {
  return reference([modelDir, "--random", String(count), "--seed", String(seed)]);
}

export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}
