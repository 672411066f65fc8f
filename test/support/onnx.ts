/** An exported model folder held against PyTorch: its ONNX (run by onnxruntime-web in Node) vs its state_dict. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as ort from "onnxruntime-web";
import { expect } from "vitest";
import { maxAbsDiff, torchOnRandom } from "./torch";

ort.env.wasm.numThreads = 1;

/**
 * Whether a model's graph computes its convolutions in integers (the int8-static scheme), where
 * PyTorch fake-quantises floats: an activation on a rounding tie then lands one uint8 step away,
 * so the two agree to a few hundredths instead of float precision.
 */
export const computesInIntegers = (manifest: { quantization?: { scheme: string } }): boolean => manifest.quantization?.scheme === "int8-static";

/**
 * How far `expectOnnxMatchesTorch` lets them be apart: 1e-4, or 5e-2 for a graph that computes
 * in integers, whose rounding ties PyTorch's and onnxruntime's kernels break differently by CPU:
 * measured 7e-3 relative for resnet-edge-int8-static on an AVX-512 machine, 2.4e-2 on an AVX2-only
 * AMD EPYC (Zen 2). A wrong scale or a dropped layer is off by far more.
 */
export const onnxTolerance = (manifest: { quantization?: { scheme: string } }): number => (computesInIntegers(manifest) ? 5e-2 : 1e-4);

/**
 * Runs 8 fixed standard-normal inputs (batch 8: the batch axis must be dynamic) through both and
 * asserts they agree within `onnxTolerance`: absolutely, or with `relative`, as a fraction of the
 * largest output. White noise through a patch-whitening CIFAR-10 net gives outputs in the
 * thousands, where float32 itself differs by more than 1e-4 between two correct implementations.
 */
export async function expectOnnxMatchesTorch(dir: string, { relative = false } = {}): Promise<{ embeddingDiff: number; logitsDiff: number }> {
  const torch = torchOnRandom(dir, 8, 7);
  const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
  const session = await ort.InferenceSession.create(readFileSync(join(dir, "model.onnx")));
  expect(session.inputNames).toEqual([manifest.artifact.inputName]);
  expect(session.outputNames).toEqual(["embedding", "logits"]);
  const { channels, height, width } = manifest.input;
  const input = new ort.Tensor("float32", Float32Array.from(torch.inputs!.flat()), [8, channels, height, width]);
  const out = await session.run({ [manifest.artifact.inputName]: input });
  expect(out.embedding!.dims).toEqual([8, manifest.embeddingSize]);
  expect(out.logits!.dims).toEqual([8, manifest.labels.length]);
  const scale = (values: number[]) => (relative ? Math.max(1, ...values.map(Math.abs)) : 1);
  const embeddingDiff = maxAbsDiff(out.embedding!.data as Float32Array, torch.embedding.flat()) / scale(torch.embedding.flat());
  const logitsDiff = maxAbsDiff(out.logits!.data as Float32Array, torch.logits.flat()) / scale(torch.logits.flat());
  expect(embeddingDiff).toBeLessThan(onnxTolerance(manifest));
  expect(logitsDiff).toBeLessThan(onnxTolerance(manifest));
  return { embeddingDiff, logitsDiff };
}
