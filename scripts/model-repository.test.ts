import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import { ACCURACY_FLOOR, MODELS_DIR, discoverModels, type HeldBackModel } from "./model-repository.ts";

let dir: string | undefined;
afterEach(() => dir && rmSync(dir, { recursive: true, force: true }));

/** A repository holding only LeNet, with this models/lenet/config.json (none when undefined). */
function repositoryWith(config: unknown): string {
  dir = mkdtempSync(join(tmpdir(), "models-"));
  cpSync(join(MODELS_DIR, "lenet"), join(dir, "lenet"), { recursive: true, filter: (src) => !src.endsWith("config.json") });
  if (config !== undefined) writeFileSync(join(dir, "lenet", "config.json"), JSON.stringify(config));
  return dir;
}

it("reads a model's config.json beside its version folders, and none is fine", () => {
  expect(discoverModels(repositoryWith(undefined))[0]!.config).toBeUndefined();
  const [lenet] = discoverModels(repositoryWith({ dynamicBatching: { maxBatch: 8, windowMs: 5 }, admission: { maxQueueImages: 100, maxQueueMs: 1500 }, flipAverage: false }));
  expect(lenet!.config).toEqual({ dynamicBatching: { maxBatch: 8, windowMs: 5 }, admission: { maxQueueImages: 100, maxQueueMs: 1500 }, flipAverage: false });
});

it.each([
  [{ dynamicBatching: { maxBatch: 0 } }, "maxBatch must be an integer in [1, 256]"],
  [{ dynamicBatching: { windowMs: 2.5 } }, "windowMs must be an integer in [0, 50]"],
  [{ dynamicBatching: { maxBatchSize: 8 } }, "unknown dynamicBatching setting 'maxBatchSize'"],
  [{ batching: {} }, "unknown setting 'batching'"],
  [{ admission: { maxQueueMs: 10 } }, "admission.maxQueueMs must be an integer in [50, 30000]"],
  [{ admission: { maxQueueImages: 0 } }, "admission.maxQueueImages must be an integer in [1, 4096]"],
  [{ admission: { queueLimit: 5 } }, "unknown admission setting 'queueLimit'"],
  [{ flipAverage: "yes" }, 'flipAverage must be true or false, not "yes"'],
])("refuses a config.json with %j", (config, message) => {
  expect(() => discoverModels(repositoryWith(config))).toThrow(message);
});

/** Add a copy of LeNet as model `id` whose manifest's metrics are `metrics`. */
function addLenetCopy(repository: string, id: string, metrics: unknown): void {
  cpSync(join(MODELS_DIR, "lenet"), join(repository, id), { recursive: true });
  const path = join(repository, id, "1", "manifest.json");
  const manifest = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  writeFileSync(path, JSON.stringify({ ...manifest, id, metrics }));
}

it("leaves out a model whose validation accuracy is below the floor, and serves one that states none", () => {
  const repository = repositoryWith(undefined);
  addLenetCopy(repository, "lenet-weak", { validationAccuracy: ACCURACY_FLOOR - 0.0001 });
  addLenetCopy(repository, "lenet-at-floor", { validationAccuracy: ACCURACY_FLOOR });
  addLenetCopy(repository, "lenet-unmeasured", undefined);
  const heldBack: HeldBackModel[] = [];
  expect(discoverModels(repository, heldBack).map((model) => model.id)).toEqual(["lenet", "lenet-at-floor", "lenet-unmeasured"]);
  expect(heldBack).toEqual([{ id: "lenet-weak", version: 1, validationAccuracy: ACCURACY_FLOOR - 0.0001 }]);
});
