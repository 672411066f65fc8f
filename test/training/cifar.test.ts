/** scripts/train_cifar.py --smoke for every architecture: the pipeline, not the accuracy. */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { expectOnnxMatchesTorch } from "../support/onnx";
import { PYTHON, ROOT } from "../support/paths";
import { smokeRun, type SmokeRun } from "../support/training";

const ARCHITECTURES = [
  ["resnet-edge", 1_972_802, 256],
  ["vggish", 35_340_234, 4096],
  ["resnet50", 23_520_842, 2048],
] as const;

// One smoke run per architecture, shared by the export and the quantisation tests.
const runs = new Map<string, SmokeRun>();
const smokeArch = (arch: string) => runs.get(arch) ?? runs.set(arch, smokeRun("train_cifar.py", "--arch", arch)).get(arch)!;
const MiB = 2 ** 20;

describe.each(ARCHITECTURES)("train_cifar.py --arch %s --smoke", (arch, parameters, embeddingSize) => {
  it("trains, reports and exports a one-pass model, mirrorable, whose ONNX equals PyTorch (relative 1e-4)", async () => {
    const run = smokeArch(arch);
    expect(run.log).toMatch(/^epoch {2}1\/1 {2}loss \d+\.\d+ {2}train +\d+\.\d+% {2}val +\d+\.\d+%/m);
    expect(run.log).toMatch(/^final: validation accuracy \d+\.\d+% flip-averaged, \d+\.\d+% single pass, on 250 images; training \d+\.\ds on .+$/m);
    expect(run.manifest).toMatchObject({
      id: arch,
      architecture: { name: arch },
      dataset: "CIFAR-10",
      labels: ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
      input: { layout: "NCHW", channels: 3, height: 32, width: 32, resize: "center-crop", mirrorable: true },
      metrics: { validationAccuracy: expect.any(Number), singlePassValidationAccuracy: expect.any(Number) },
      embeddingSize,
      parameters,
      artifact: { opset: 17 },
      training: { smoke: true, recipeComplete: false, device: "cpu" },
    });
    expect(run.manifest.input.mean).toHaveLength(3);
    expect(run.manifest.architecture.flipAverage).toBeUndefined(); // the mirror pass is the Worker's, per request
    await expectOnnxMatchesTorch(run.dir, { relative: true });
  }, 600_000); // the smoke run itself: ResNet-50's took 146 s on a slower 2-core machine

  it("measures what serving it costs: only the edge model fits a Worker isolate in fp32", () => {
    const { serving } = smokeArch(arch).manifest;
    expect(serving).toMatchObject({ budgetBytes: 96 * MiB, servable: arch === "resnet-edge" });
    expect(serving.memoryBytes).toBeGreaterThanOrEqual(serving.loadBytes);
    expect(serving.memoryBytes).toBeGreaterThanOrEqual(serving.heapBytes);
    console.log(`${arch} fp32: ${(serving.memoryBytes / MiB).toFixed(1)} MiB at run batch ${serving.runBatch}`);
  });
});

const SCHEMES = [
  // arch, scheme, layers by bits, largest size as a fraction of fp32
  ["resnet-edge", "int8", { int8: 8 }, 0.3],
  ["resnet-edge", "int8-static", { int8: 8 }, 0.3],
  ["vggish", "int4", { int4: 2, int8: 8 }, 0.17],
] as const;

/**
 * Of a graph's Conv nodes, how many form the QDQ group onnxruntime fuses into a QLinearConv:
 * input, weight and bias each from a DequantizeLinear (the bias int32), the output read only by
 * a QuantizeLinear.
 */
function qdqConvs(onnxPath: string): { convs: number; fusable: number } {
  const script = `
import json, sys, onnx
g = onnx.load(sys.argv[1]).graph
producer = {o: n for n in g.node for o in n.output}
consumers = {}
for n in g.node:
    for i in n.input: consumers.setdefault(i, []).append(n)
types = {t.name: t.data_type for t in g.initializer}
convs = [n for n in g.node if n.op_type == "Conv"]
def fusable(n):
    dq = [producer.get(i) for i in n.input]
    return len(dq) == 3 and all(d is not None and d.op_type == "DequantizeLinear" for d in dq) \
        and types.get(dq[2].input[0]) == onnx.TensorProto.INT32 \
        and [c.op_type for c in consumers.get(n.output[0], [])] == ["QuantizeLinear"]
print(json.dumps({"convs": len(convs), "fusable": sum(map(fusable, convs))}))`;
  return JSON.parse(execFileSync(PYTHON, ["-c", script, onnxPath], { encoding: "utf8" }));
}

describe.each(SCHEMES)("quantize_model.py on %s --scheme %s", (arch, scheme, layers, sizeRatio) => {
  it("writes a servable variant whose ONNX equals its PyTorch (relative 1e-4), with accuracy and delta to fp32", async () => {
    const source = smokeArch(arch);
    const out = mkdtempSync(join(tmpdir(), `${scheme}-`));
    const log = execFileSync(PYTHON, [join(ROOT, "scripts", "quantize_model.py"), source.dir, "--scheme", scheme, "--out", out, "--smoke"], {
      cwd: ROOT,
      encoding: "utf8",
    });
    expect(log).toMatch(new RegExp(`^final: ${scheme} validation accuracy \\d+\\.\\d+% \\(fp32 \\d+\\.\\d+%, delta [+-]\\d+\\.\\d+ points\\)`, "m"));
    const manifest = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
    expect(manifest).toMatchObject({
      id: `${arch}-${scheme}`,
      quantization: { scheme, layers, from: `${arch} v1`, fp32Bytes: source.manifest.artifact.bytes },
      metrics: {
        fp32ValidationAccuracy: expect.any(Number),
        deltaToFp32: expect.any(Number),
        singlePassValidationAccuracy: expect.any(Number),
        fp32SinglePassValidationAccuracy: expect.any(Number),
      },
      serving: { servable: true },
    });
    expect(manifest.artifact.bytes).toBeLessThan(sizeRatio * source.manifest.artifact.bytes);
    await expectOnnxMatchesTorch(out, { relative: true });
    // Only int8-static quantises activations: every one of its convolutions runs in integers.
    expect(qdqConvs(join(out, "model.onnx"))).toEqual({ convs: 7, fusable: scheme === "int8-static" ? 7 : 0 });
  });
});

describe("train_cifar.py checkpoints", () => {
  it("saves each epoch, resumes from it instead of training again, and plots the curves beside the model", () => {
    const checkpoints = mkdtempSync(join(tmpdir(), "checkpoints-"));
    const first = smokeRun("train_cifar.py", "--arch", "resnet-edge", "--checkpoints", checkpoints);
    expect(first.log).toMatch(/^epoch {2}1\/1 .* images\/s/m);
    const resumed = smokeRun("train_cifar.py", "--arch", "resnet-edge", "--checkpoints", checkpoints, "--resume");
    expect(resumed.log).toMatch(/^resuming .*checkpoint\.pt after epoch 1 /m);
    expect(resumed.log).not.toMatch(/^epoch {2}1\/1/m);
    expect(resumed.manifest.training.history).toEqual(first.manifest.training.history);
    expect(resumed.manifest.metrics.validationAccuracy).toBe(first.manifest.metrics.validationAccuracy);
    const curves = readFileSync(join(resumed.dir, "training-curves.svg"), "utf8");
    expect(curves).toMatch(/^<svg /);
    expect(curves).toContain("validation");
  }, 300_000);
});
