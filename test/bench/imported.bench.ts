/**
 * Models users bring (npm run bench:imported): torchvision's MobileNetV2 and ResNet-18 at
 * 224x224, exported in the run and added with `npm run models:add` (ResNet-18 also as int8,
 * since fp32 is over an isolate's budget), served by the built Worker in workerd. Per model:
 * its serving memory and run batch as models:add measured them, the first request's wall time
 * (session created from R2), the Worker's model-run ms per image (timing.inferenceMs) at batch
 * 1 and 8 against onnxruntime-node with 1 thread, and images/s over HTTP at concurrency 8 with
 * dynamic batching, on 500x375 JPEG photos (decode, Resize(256), CenterCrop(224) in the Worker);
 * and registering the same file through POST /v1/models instead: the request's wall time (the
 * rewrite, the measurement in a runtime of its own, R2 and the registry) and the memory it measured.
 * Prints a markdown table and writes it to test/.build/bench-imported.md.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import { it } from "vitest";
import { discoverModels } from "../../scripts/model-repository.ts";
import { REGISTRATION_LIMITS } from "../../workers/registry/limits";
import { cifarValidation } from "../support/cifar";
import { IMPORTED_CASES, IMPORTED_MODELS_DIR, buildImportedWorker, importedRepository, restoreCatalog } from "../support/imported-models";
import { ROOT } from "../support/paths";
import { startWorker } from "../support/worker";
import { engineMsPerImage } from "./engines";
import { loadClassify, type Upload } from "./http-load";
import { postImages, workerMsPerImage } from "./worker-timing";

const MiB = 2 ** 20;

it("imported 224x224 models in the Worker: memory, cold start, ms per image, images/s", async () => {
  const cases = [
    ...IMPORTED_CASES.filter((c) => c.id === "mobilenet-v2" || c.id === "resnet18-int8"),
    { id: "resnet18", arch: "resnet18", exportArgs: ["--opset", "13"], classes: 1000 },
  ];
  const worker = await startWorker({ build: { dir: buildImportedWorker(), env: "" }, modelsDir: IMPORTED_MODELS_DIR });
  const photos: Upload[] = await Promise.all(
    cifarValidation(1).slice(0, 8).map(async (file) => ({ bytes: new Uint8Array(await sharp(file.bytes).resize(500, 375).jpeg({ quality: 90 }).toBuffer()), type: "image/jpeg" })),
  );
  const rows = ["| model | ONNX MB | serving memory MiB (run batch) | servable | first request ms | Worker ms/image batch 1 | batch 8 | ort-node 1 thread ms/image | HTTP c=8 images/s (mean batch) | POST /v1/models ms (memory MiB the Worker measured) |", "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|"];
  const onnxOf = new Map([...(await importedRepository(cases)).entries()].map(([id, { onnx }]) => [id, onnx]));
  /** Register the exported file through the API, as a user without the repository would. */
  const registration = async (id: string): Promise<string> => {
    if (id.endsWith("-int8")) return "- (int8 is the command's)";
    const bytes = new Uint8Array(readFileSync(onnxOf.get(id)!));
    // Refused unread (413) before the upload ends: the client would see the connection close, not the answer.
    if (bytes.byteLength > REGISTRATION_LIMITS.maxModelBytes) return `- (over the API's ${REGISTRATION_LIMITS.maxModelBytes / MiB} MiB upload limit)`;
    const form = new FormData();
    form.append("model", new Blob([bytes]), `${id}.onnx`);
    form.append("id", `${id}-api`);
    form.append("labels", Array.from({ length: 1000 }, (_, i) => `class-${i}`).join("\n"));
    const started = performance.now();
    const res = await worker.fetch("/v1/models", { method: "POST", body: form });
    const ms = performance.now() - started;
    const body = (await res.json()) as { memoryBytes?: number; detail?: string };
    return res.status === 201 ? `${ms.toFixed(0)} (${(body.memoryBytes! / MiB).toFixed(1)})` : `${res.status}: ${body.detail}`;
  };
  try {
    for (const model of discoverModels(IMPORTED_MODELS_DIR).filter((m) => m.id !== "lenet")) {
      const { serving, artifact } = model.manifest;
      const memory = `${(serving.memoryBytes / MiB).toFixed(1)} (${serving.runBatch})`;
      if (!serving.servable) {
        rows.push(`| ${model.id} | ${(artifact.bytes / 1e6).toFixed(2)} | ${memory} | no: over the ${(96).toFixed(0)} MiB budget | - | - | - | ${(await engineMsPerImage("ort-node 1 thread", model, 1, 16)).toFixed(1)} | - | ${await registration(model.id)} |`);
        continue;
      }
      const first = await postImages(worker, model.id, photos.slice(0, 1));
      const one = await workerMsPerImage(worker, model, photos, 1);
      const eight = await workerMsPerImage(worker, model, photos, 8);
      const native = await engineMsPerImage("ort-node 1 thread", model, 1, 16);
      const load = await loadClassify(worker.url, model.id, photos, 8, 10);
      if (load.errors) throw new Error(`${model.id}: ${load.errors} errors under load`);
      rows.push(`| ${model.id} | ${(artifact.bytes / 1e6).toFixed(2)} | ${memory} | yes | ${first.ms.toFixed(0)} | ${one.toFixed(1)} | ${eight.toFixed(1)} | ${native.toFixed(1)} | ${load.imagesPerSecond.toFixed(1)} (${load.meanBatch.toFixed(1)}) | ${await registration(model.id)} |`);
    }
  } finally {
    await worker.dispose();
    restoreCatalog();
  }
  const table = rows.join("\n");
  console.log(`\n${table}\n`);
  writeFileSync(join(ROOT, "test", ".build", "bench-imported.md"), `${table}\n`);
});
