/** The query parameters of a classify request. */
import { PROVIDER_PREFERENCES, parseProviderPreference, type ProviderPreference } from "../engine/engine";
import type { OutputName } from "../models/manifest";
import { InvalidParameterError } from "../problems/problems";

export interface ClassifyOptions {
  topK: number;
  /** Raw outputs to return beside the predictions. */
  include: OutputName[];
  /** Which execution provider runs the model. */
  provider: ProviderPreference;
}

const INCLUDABLE: readonly OutputName[] = ["logits", "embedding"];

/**
 * Parse ?top_k=, ?include= (a comma list of logits, embedding) and ?provider= (auto, webgpu,
 * wasm; the deployment's EXECUTION_PROVIDER when absent).
 *
 * @example
 * classifyOptions({ top_k: "3", include: "logits" }); // { topK: 3, include: ["logits"], provider: "auto" }
 */
export function classifyOptions(query: Record<string, string | undefined>, deploymentProvider?: string): ClassifyOptions {
  let k = 5;
  if (query.top_k !== undefined) {
    if (!/^\d+$/.test(query.top_k) || Number(query.top_k) < 1) {
      throw new InvalidParameterError("top_k", `top_k must be a positive integer, not '${query.top_k}'.`);
    }
    k = Number(query.top_k);
  }
  const include = (query.include ?? "").split(",").filter(Boolean);
  for (const name of include) {
    if (!(INCLUDABLE as string[]).includes(name)) {
      throw new InvalidParameterError("include", `include takes ${INCLUDABLE.join(", ")}, not '${name}'.`);
    }
  }
  return { topK: k, include: include as OutputName[], provider: providerPreference(query.provider, deploymentProvider) };
}

/**
 * The provider preference of a request: its own (?provider=) or else the deployment's
 * (EXECUTION_PROVIDER, where an unknown value counts as "auto").
 *
 * @throws InvalidParameterError when the request names no known preference
 * @example
 * providerPreference(undefined, "wasm"); // "wasm"
 */
export function providerPreference(requested: string | undefined, deployment: string | undefined): ProviderPreference {
  if (requested === undefined) return parseProviderPreference(deployment) ?? "auto";
  const preference = parseProviderPreference(requested);
  if (!preference) throw new InvalidParameterError("provider", `provider takes ${PROVIDER_PREFERENCES.join(", ")}, not '${requested}'.`);
  return preference;
}
