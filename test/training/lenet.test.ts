/**
 * The training and export pipeline: scripts/train_lenet.py --smoke end to end, and every
 * exported graph (the smoke one and the committed one) held against PyTorch.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-web";
import { beforeAll, describe, expect, it } from "vitest";
import { PYTHON, ROOT } from "../support/paths";
import { maxAbsDiff, torchOnRandom } from "../support/torch";

ort.env.wasm.numThreads = 1;

function smokeRun(): { dir: string; log: string } {
  const dir = mkdtempSync(join(tmpdir(), "lenet-smoke-"));
  const log = execFileSync(PYTHON, [join(ROOT, "scripts", "train_lenet.py"), "--smoke", "--threads", "2", "--out", dir], {
    cwd: ROOT,
    encoding: "utf8",
  });
  return { dir, log };
}

const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");
const manifestOf = (dir: string) => JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));

async function expectOnnxMatchesTorch(dir: string) {
  const torch = torchOnRandom(dir, 8, 7);
  const manifest = manifestOf(dir);
  const session = await ort.InferenceSession.create(readFileSync(join(dir, "model.onnx")));
  expect(session.inputNames).toEqual([manifest.artifact.inputName]);
  expect(session.outputNames).toEqual(["embedding", "logits"]);
  const { channels, height, width } = manifest.input;
  const input = new ort.Tensor("float32", Float32Array.from(torch.inputs!.flat()), [8, channels, height, width]);
  const out = await session.run({ [manifest.artifact.inputName]: input });
  expect(out.embedding!.dims).toEqual([8, manifest.embeddingSize]);
  expect(out.logits!.dims).toEqual([8, manifest.labels.length]);
  const embeddingDiff = maxAbsDiff(out.embedding!.data as Float32Array, torch.embedding.flat());
  const logitsDiff = maxAbsDiff(out.logits!.data as Float32Array, torch.logits.flat());
  expect(embeddingDiff).toBeLessThan(1e-4);
  expect(logitsDiff).toBeLessThan(1e-4);
  return { embeddingDiff, logitsDiff };
}

describe("scripts/train_lenet.py --smoke", () => {
  let first: { dir: string; log: string };
  let second: { dir: string; log: string };
  beforeAll(() => {
    first = smokeRun();
    second = smokeRun();
  });

  it("shows progress per epoch and ends with the accuracy and wall time", () => {
    expect(first.log).toMatch(/^epoch {2}1\/1 {2}loss \d+\.\d+ {2}train +\d+\.\d+% {2}val +\d+\.\d+%/m);
    expect(first.log).toMatch(/^final: test accuracy \d+\.\d+% on 500 images, validation \d+\.\d+%, training \d+\.\ds$/m);
  });

  it("writes a manifest with everything the server and a user need", () => {
    const manifest = manifestOf(first.dir);
    const onnx = join(first.dir, "model.onnx");
    expect(manifest).toMatchObject({
      id: "lenet",
      version: 1,
      architecture: { name: "lenet" },
      dataset: "MNIST",
      labels: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
      input: { layout: "NCHW", channels: 1, height: 28, width: 28, mean: [0.1307], std: [0.3081] },
      embeddingSize: 500,
      parameters: 431_080,
      artifact: { file: "model.onnx", format: "onnx", opset: 17, bytes: statSync(onnx).size, sha256: sha256(onnx) },
      training: { smoke: true, epochs: 1, seed: 0 },
    });
    expect(manifest.metrics.testAccuracy).toBeGreaterThan(0.5);
  });

  it("is deterministic for a given seed: two runs export the same bytes", () => {
    expect(sha256(join(second.dir, "model.onnx"))).toBe(sha256(join(first.dir, "model.onnx")));
  });

  it("exports ONNX that equals PyTorch within 1e-4, at batch 8 (dynamic batch axis)", async () => {
    await expectOnnxMatchesTorch(first.dir);
  });
});

describe("the committed models/lenet/1", () => {
  it("is the exported graph of its own state_dict: ONNX equals PyTorch within 1e-4", async () => {
    const { logitsDiff } = await expectOnnxMatchesTorch(join(ROOT, "models", "lenet", "1"));
    console.log(`models/lenet/1: max |ONNX - PyTorch| logits ${logitsDiff.toExponential(2)}`);
  });

  it("matches the sha256 and size in its manifest", () => {
    const dir = join(ROOT, "models", "lenet", "1");
    const manifest = manifestOf(dir);
    expect(sha256(join(dir, "model.onnx"))).toBe(manifest.artifact.sha256);
    expect(statSync(join(dir, "model.onnx")).size).toBe(manifest.artifact.bytes);
  });
});
