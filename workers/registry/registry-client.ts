/**
 * The Worker's side of the model registry (registry-object.ts): one Durable Object for the
 * deployment, read through a cache of REGISTRY_CACHE_MS in each isolate, so that a model
 * registered or deleted anywhere is served, or refused, everywhere within that time, and a
 * stream of requests costs one registry read per isolate per interval.
 */
import type { Env } from "../env";
import type { ServedModel } from "../models/manifest";
import { ModelUnavailableError } from "../problems/problems";
import type { ModelRegistry, Registration } from "./registry-object";

/** How long an isolate trusts its copy of the registry. */
export const REGISTRY_CACHE_MS = 5_000;

// The registry as this isolate last read it. Only data is shared between requests, never a
// pending read: in workerd a request's I/O belongs to its own context, so each request whose
// copy is stale reads for itself.
let cached: { readAt: number; models: ServedModel[] } | undefined;

/**
 * The registry's Durable Object.
 *
 * @example
 * const version = await registryObject(env).reserve("pets");
 */
export function registryObject(env: Pick<Env, "MODEL_REGISTRY">): DurableObjectStub<ModelRegistry> {
  const namespace = env.MODEL_REGISTRY!;
  return namespace.get(namespace.idFromName("registry"));
}

/** A registration as a model the Worker serves: its files in R2 under its prefix. */
export function servedRegistration({ manifest, prefix }: Registration): ServedModel {
  return {
    manifest,
    source: { kind: "r2", key: `${prefix}${manifest.artifact.file}` },
    ...(manifest.head ? { head: { kind: "r2", key: `${prefix}${manifest.head.file}` } } : {}),
  };
}

/**
 * Every registered version, by id then newest first; none where the host has no registry
 * (the Node host). `fresh` skips the cache (after this isolate changed the registry).
 *
 * @throws ModelUnavailableError when the registry cannot be read
 * @example
 * const latest = (await registeredModels(env)).find((model) => model.manifest.id === "pets");
 */
export async function registeredModels(env: Pick<Env, "MODEL_REGISTRY">, fresh = false): Promise<ServedModel[]> {
  if (!env.MODEL_REGISTRY) return [];
  if (!fresh && cached && Date.now() - cached.readAt < REGISTRY_CACHE_MS) return cached.models;
  let registrations: Registration[];
  try {
    registrations = (await registryObject(env).list()) as Registration[];
  } catch (error) {
    throw new ModelUnavailableError("registry", `The model registry could not be read (${(error as Error).message}); retry the request.`);
  }
  cached = { readAt: Date.now(), models: registrations.map(servedRegistration) };
  return cached.models;
}
