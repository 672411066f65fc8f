/**
 * The models this Worker serves, discovered at build time from models/<id>/<version>/ by
 * scripts/build-model-catalog.ts (the newest version of each id is served, as in Triton's
 * default "latest 1" policy).
 */
import { UnknownModelError } from "../problems/problems";
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
 * The served model with this id.
 *
 * @throws UnknownModelError when no such model is served
 * @example
 * const { manifest } = getModel("lenet");
 */
export function getModel(id: string): ServedModel {
  const model = byId.get(id);
  if (!model) throw new UnknownModelError(id, modelIds());
  return model;
}
