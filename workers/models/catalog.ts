/**
 * The models this Worker serves: those discovered at build time from models/<id>/<version>/ by
 * scripts/build-model-catalog.ts (the newest version of each id is bundled, as in Triton's
 * default "latest 1" policy), and those registered through the API since (workers/registry),
 * every version of them, the latest by default.
 */
import type { Env } from "../env";
import { ModelNotServableError, UnknownModelError, UnknownModelVersionError } from "../problems/problems";
import { registeredModels } from "../registry/registry-client";
import { servedModels } from "./catalog.generated";
import type { ServedModel } from "./manifest";

const builtIn = new Map(servedModels.map((model) => [model.manifest.id, model]));

/** Ids of the models built into this deployment, in catalog order. */
export function builtInIds(): string[] {
  return [...builtIn.keys()];
}

/**
 * The built-in model with this id, or undefined: no I/O, for what must be known before any
 * (an id a registration may not take).
 */
export function findBuiltIn(id: string): ServedModel | undefined {
  return builtIn.get(id);
}

/**
 * The smallest servable model bundled with the code (no fetch to load it): the one that warms
 * up a host's runtime.
 */
export function smallestBundledModel(): ServedModel | undefined {
  return [...builtIn.values()]
    .filter((model) => model.source.kind === "bundle" && model.manifest.serving.servable)
    .sort((a, b) => a.manifest.artifact.bytes - b.manifest.artifact.bytes)[0];
}

/**
 * Every served model, built-in first in catalog order, then each registered id's latest
 * version (`allVersions`: every version, newest first).
 *
 * @example
 * const ids = (await listModels(env)).map((model) => model.manifest.id);
 */
export async function listModels(env: Pick<Env, "MODEL_REGISTRY">, allVersions = false): Promise<ServedModel[]> {
  const registered = await registeredModels(env);
  const seen = new Set<string>();
  const chosen = registered.filter((model) => allVersions || (!seen.has(model.manifest.id) && seen.add(model.manifest.id)));
  return [...builtIn.values(), ...chosen];
}

/**
 * The served model with this id (at `version`, default its latest), or undefined. Built-in
 * ids are answered without I/O; others from the registry, read through a cache of a few seconds.
 *
 * @example
 * if (await findModel(env, "pets")) throw new ClassifierExistsError("pets");
 */
export async function findModel(env: Pick<Env, "MODEL_REGISTRY">, id: string, version?: number): Promise<ServedModel | undefined> {
  const model = builtIn.get(id);
  if (model) return version === undefined || version === model.manifest.version ? model : undefined;
  const versions = (await registeredModels(env)).filter((registered) => registered.manifest.id === id);
  return version === undefined ? versions[0] : versions.find((registered) => registered.manifest.version === version);
}

/**
 * The served model with this id, at `version` (default its latest).
 *
 * @throws UnknownModelError when no such model is served
 * @throws UnknownModelVersionError when it is, but not at that version
 * @example
 * const { manifest } = await getModel(env, "lenet");
 */
export async function getModel(env: Pick<Env, "MODEL_REGISTRY">, id: string, version?: number): Promise<ServedModel> {
  const model = await findModel(env, id, version);
  if (model) return model;
  const versions = (await listModels(env, true)).filter((other) => other.manifest.id === id).map((other) => other.manifest.version);
  if (versions.length) throw new UnknownModelVersionError(id, version!, versions);
  throw new UnknownModelError(id, [...new Set((await listModels(env)).map((other) => other.manifest.id))]);
}

/**
 * The served model with this id (at `version`), provided it fits a Worker isolate (its manifest's `serving`).
 *
 * @throws UnknownModelError when no such model is served
 * @throws UnknownModelVersionError when it is, but not at that version
 * @throws ModelNotServableError when it is listed but too large to load
 * @example
 * const model = await getServableModel(env, "vggish-int4");
 */
export async function getServableModel(env: Pick<Env, "MODEL_REGISTRY">, id: string, version?: number): Promise<ServedModel> {
  const model = await getModel(env, id, version);
  const { serving } = model.manifest;
  if (!serving.servable) {
    const alternatives = [...builtIn.values()]
      .filter((other) => other.manifest.serving.servable && other.manifest.quantization?.from.startsWith(`${id} v`))
      .map((other) => other.manifest.id);
    throw new ModelNotServableError(id, serving.memoryBytes, serving.budgetBytes, alternatives);
  }
  return model;
}
