/** The query parameters of a classify request. */
import { PROVIDER_PREFERENCES, parseProviderPreference, type ProviderPreference } from "../engine/engine";
import type { OutputName, ServedModel } from "../models/manifest";
import { ClassifyQuery, parseRequest } from "../openapi/schemas";
import { InvalidParameterError } from "../problems/problems";
import { flipAverageFor } from "./flip-average";
import { translateAverageFor } from "./translate-average";

export interface ClassifyOptions {
  topK: number;
  /** Raw outputs to return beside the predictions. */
  include: OutputName[];
  /** Which execution provider runs the model. */
  provider: ProviderPreference;
  /** Average in the mirror image's outputs (workers/classify/flip-average.ts); the model's default when undefined. */
  flipAverage?: boolean;
  /** Also average the one-pixel shifts (workers/classify/translate-average.ts); off when undefined. */
  translateAverage?: boolean;
}

/**
 * Parse ?top_k=, ?include= (a comma list of logits, embedding), ?provider= (auto, webgpu,
 * wasm; the deployment's EXECUTION_PROVIDER when absent), ?flip_average= and ?translate_average= (true, false), with
 * the schema the OpenAPI document describes them by (workers/openapi/schemas.ts).
 *
 * @example
 * classifyOptions({ top_k: "3", include: "logits" }); // { topK: 3, include: ["logits"], provider: "auto" }
 */
export function classifyOptions(query: Record<string, string | undefined>, deploymentProvider?: string): ClassifyOptions {
  const parsed = parseRequest(ClassifyQuery, query);
  const flipAverage = parsed.flip_average === undefined ? undefined : parsed.flip_average === "true";
  const translateAverage = parsed.translate_average === undefined ? undefined : parsed.translate_average === "true";
  return {
    topK: parsed.top_k === undefined ? 5 : Number(parsed.top_k),
    include: (parsed.include ?? "").split(",").filter(Boolean) as OutputName[],
    provider: providerPreference(parsed.provider, deploymentProvider),
    ...(flipAverage === undefined ? {} : { flipAverage }),
    ...(translateAverage === undefined ? {} : { translateAverage }),
  };
}

/**
 * A request's options for this model, its choices the model cannot honour refused: call it before
 * the body is read.
 *
 * @throws InvalidParameterError when flip_average or translate_average asks for what the model cannot do
 * @example
 * optionsFor(getModel("lenet"), classifyOptions({})); // { ..., flipAverage: false, translateAverage: false }
 */
export function optionsFor(model: ServedModel, options: ClassifyOptions): ClassifyOptions & { flipAverage: boolean; translateAverage: boolean } {
  const flipAverage = flipAverageFor(model, options.flipAverage);
  return { ...options, flipAverage, translateAverage: translateAverageFor(model, options.translateAverage, flipAverage) };
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
