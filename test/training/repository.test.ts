/** Every model the Worker serves, as committed: its artifact is what its manifest and state_dict say. */
import { existsSync } from "node:fs";
import { dirname } from "node:path";
import { describe, expect, it } from "vitest";
import { discoverModels } from "../../scripts/model-repository.ts";
import { expectOnnxMatchesTorch, onnxTolerance } from "../support/onnx";

describe.each(discoverModels().map((model) => [`${model.id} v${model.version}`, model] as const))("models/%s", (_, model) => {
  const cifar = model.manifest.dataset === "CIFAR-10";
  // fp32 models too large to serve are committed as manifests only (see .gitignore)
  it.skipIf(!existsSync(model.artifactPath))(`is the ONNX export of its own state_dict: equal to PyTorch within ${onnxTolerance(model.manifest)}${cifar ? " (relative)" : ""}`, async () => {
    const { logitsDiff } = await expectOnnxMatchesTorch(dirname(model.artifactPath), { relative: cifar });
    console.log(`${model.id}: max |ONNX - PyTorch| logits ${logitsDiff.toExponential(2)}`);
  });

  it("is a full training run, not a smoke run", () => {
    expect(model.manifest.training).toMatchObject({ smoke: false });
  });

  it("has its serving cost measured against the model memory budget", () => {
    const { serving } = model.manifest;
    expect(serving.servable).toBe(serving.memoryBytes <= 96 * 2 ** 20);
    expect(serving.runBatch).toBeGreaterThanOrEqual(1);
    if (!existsSync(model.artifactPath)) expect(serving.servable).toBe(false);
  });
});
