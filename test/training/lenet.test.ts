/** scripts/train_lenet.py --smoke end to end: progress, manifest, determinism, export parity. */
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { expectOnnxMatchesTorch } from "../support/onnx";
import { smokeRun, type SmokeRun } from "../support/training";

const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

describe("scripts/train_lenet.py --smoke", () => {
  let first: SmokeRun;
  let second: SmokeRun;
  beforeAll(() => {
    first = smokeRun("train_lenet.py");
    second = smokeRun("train_lenet.py");
  });

  it("shows progress per epoch and ends with the accuracy and wall time", () => {
    expect(first.log).toMatch(/^epoch {2}1\/1 {2}loss \d+\.\d+ {2}train +\d+\.\d+% {2}val +\d+\.\d+%/m);
    expect(first.log).toMatch(/^final: test accuracy \d+\.\d+% on 500 images, validation \d+\.\d+%, training \d+\.\ds$/m);
  });

  it("writes a manifest with everything the server and a user need", () => {
    const onnx = join(first.dir, "model.onnx");
    expect(first.manifest).toMatchObject({
      id: "lenet",
      version: 1,
      architecture: { name: "lenet" },
      dataset: "MNIST",
      labels: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
      input: { layout: "NCHW", channels: 1, height: 28, width: 28, mean: [0.1307], std: [0.3081], resize: "stretch" },
      embeddingSize: 500,
      parameters: 431_080,
      artifact: { file: "model.onnx", format: "onnx", opset: 17, bytes: statSync(onnx).size, sha256: sha256(onnx) },
      training: { smoke: true, epochs: 1, seed: 0 },
      serving: { runBatch: 8, servable: true, budgetBytes: 96 * 2 ** 20 },
    });
    expect(first.manifest.metrics.testAccuracy).toBeGreaterThan(0.5);
    expect(first.manifest.serving.memoryBytes).toBeGreaterThan(statSync(onnx).size);
  });

  it("is deterministic for a given seed: two runs export the same bytes", () => {
    expect(sha256(join(second.dir, "model.onnx"))).toBe(sha256(join(first.dir, "model.onnx")));
  });

  it("exports ONNX that equals PyTorch within 1e-4, at batch 8 (dynamic batch axis)", async () => {
    await expectOnnxMatchesTorch(first.dir);
  });
});
