/**
 * The models this Worker serves, discovered at build time from models/<id>/<version>/ by
 * scripts/build-model-catalog.ts (the newest version of each id is served, as in Triton's
 * default "latest 1" policy).
 */
import { ModelNotServableError, UnknownModelError } from "../problems/problems";
import { servedModels } from "./catalog.generated";
import type { ServedModel } from "./manifest";

const byId = new Map(servedModels.map((model) => [model.manifest.id, model]));

/** Ids of every served model, in catalog order. */
export function modelIds(): string[] {
  return [...byId.keys()];
}

/** Every served model, in catalog order. */
export function listModels(): ServedModel[] {
  return [...byId.values()];
}

/**
 * The smallest servable model bundled with the code (no fetch to load it): the one that warms
 * up a host's runtime.
 */
export function smallestBundledModel(): ServedModel | undefined {
  return listModels()
    .filter((model) => model.source.kind === "bundle" && model.manifest.serving.servable)
    .sort((a, b) => a.manifest.artifact.bytes - b.manifest.artifact.bytes)[0];
}

/**
 * The served model with this id, or undefined.
 *
 * @example
 * if (findModel("pets")) throw new ClassifierExistsError("pets");
 */
export function findModel(id: string): ServedModel | undefined {
  return byId.get(id);
}

/**
 * The served model with this id.
 *
 * @throws UnknownModelError when no such model is served
 * @example
 * const { manifest } = getModel("lenet");
 */
export function getModel(id: string): ServedModel {
  const model = findModel(id);
  if (!model) throw new UnknownModelError(id, modelIds());
  return model;
}

/**
 * The served model with this id, provided it fits a Worker isolate (its manifest's `serving`).
 *
 * @throws UnknownModelError when no such model is served
 * @throws ModelNotServableError when it is listed but too large to load
 * @example
 * const model = getServableModel("vggish-int4");
 */
export function getServableModel(id: string): ServedModel {
  const model = getModel(id);
  const { serving } = model.manifest;
  if (!serving.servable) {
    const alternatives = listModels()
      .filter((other) => other.manifest.serving.servable && other.manifest.quantization?.from.startsWith(`${id} v`))
      .map((other) => other.manifest.id);
    throw new ModelNotServableError(id, serving.memoryBytes, serving.budgetBytes, alternatives);
  }
  return model;
}
