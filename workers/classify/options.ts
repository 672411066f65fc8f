/** The query parameters of a classify request. */
import type { OutputName } from "../models/manifest";
import { InvalidParameterError } from "../problems/problems";

export interface ClassifyOptions {
  topK: number;
  /** Raw outputs to return beside the predictions. */
  include: OutputName[];
}

const INCLUDABLE: readonly OutputName[] = ["logits", "embedding"];

/**
 * Parse ?top_k= and ?include= (a comma list of logits, embedding).
 *
 * @example
 * classifyOptions({ top_k: "3", include: "logits" }); // { topK: 3, include: ["logits"] }
 */
export function classifyOptions(query: Record<string, string | undefined>): ClassifyOptions {
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
  return { topK: k, include: include as OutputName[] };
}
