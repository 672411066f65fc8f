import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import { MODELS_DIR, discoverModels } from "./model-repository.ts";

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
  const [lenet] = discoverModels(repositoryWith({ dynamicBatching: { maxBatch: 8, windowMs: 5 } }));
  expect(lenet!.config).toEqual({ dynamicBatching: { maxBatch: 8, windowMs: 5 } });
});

it.each([
  [{ dynamicBatching: { maxBatch: 0 } }, "maxBatch must be an integer in [1, 256]"],
  [{ dynamicBatching: { windowMs: 2.5 } }, "windowMs must be an integer in [0, 50]"],
  [{ dynamicBatching: { maxBatchSize: 8 } }, "unknown dynamicBatching setting 'maxBatchSize'"],
  [{ batching: {} }, "unknown setting 'batching'"],
])("refuses a config.json with %j", (config, message) => {
  expect(() => discoverModels(repositoryWith(config))).toThrow(message);
});
