import type { ClassifierObject } from "./classifiers/classifier-object";
import type { ModelRegistry } from "./registry/registry-object";
import type { Ticket } from "./admission/admission";
import type { ClassifierChange, Refusal, Served } from "./observability/log-line";

/** The Worker's bindings, as wrangler.toml declares them. */
export interface Env {
  /** Model id that POST /classify uses when the request names none. */
  DEFAULT_MODEL: string;
  /** Model artifacts too large to bundle, at models/<id>/<version>/<file> (npm run models:upload). */
  MODELS: R2Bucket;
  /** One Durable Object (SQLite storage) per fine-tunable classifier, by id. */
  CLASSIFIERS: DurableObjectNamespace<ClassifierObject>;
  /** The Durable Object recording models registered through POST /v1/models (one for the deployment); hosts without one serve built-in models only. */
  MODEL_REGISTRY?: DurableObjectNamespace<ModelRegistry>;
  /** "public" or "key": whether classify and read routes need an API key (workers/auth); any other value counts as "key". */
  CLASSIFY_ACCESS: string;
  /** "off" runs every request on its own; anything else batches concurrent requests per models/<id>/config.json. */
  DYNAMIC_BATCHING?: string;
  /** "auto" (default; WebGPU where the host has it, else WASM), "webgpu" or "wasm": the execution provider a request gets unless it asks with ?provider=. workerd has no WebGPU. */
  EXECUTION_PROVIDER?: string;
  /** Secret: full-access API keys, comma-separated. Without any, routes that change state are closed. */
  API_KEYS?: string;
  /** Secret (optional): classify-only API keys, comma-separated. */
  CLASSIFY_KEYS?: string;
  /** Workers Rate Limiting: requests per API key to routes that change state (workers/admission/rate-limit.ts). */
  WRITE_RATE_LIMIT?: RateLimit;
  /** The same for classify routes, where CLASSIFY_ACCESS is "key". */
  CLASSIFY_RATE_LIMIT?: RateLimit;
  /** Workers Analytics Engine dataset of one data point per request (deployed environments only; workers/observability/analytics-events.ts). */
  REQUEST_EVENTS?: AnalyticsEngineDataset;
}

/** Per-request values: the request id (workers/observability), what a route served, the problem it answered, the classifier version it created. */
export interface RequestVariables {
  requestId: string;
  served?: Served;
  problem?: string;
  classifierChange?: ClassifierChange;
  /** The request's admission ticket (workers/admission), on routes that read a body. */
  admission?: Ticket;
  /** Why the request was refused to protect the service, for its log line and the metrics. */
  refusal?: Refusal;
}

export type AppEnv = { Bindings: Env; Variables: RequestVariables };

/**
 * What running a model needs from its request: the bindings, and waitUntil, which keeps the
 * request's context alive for work other requests share (a batch it leads, a session it
 * loads) even when its own client goes away: workerd cancels a request's pending work then.
 */
export interface ServingContext {
  env: Pick<Env, "MODELS" | "DYNAMIC_BATCHING" | "MODEL_REGISTRY">;
  waitUntil(promise: Promise<unknown>): void;
  /** The request's admission ticket, where the route took one (workers/admission/admit-body.ts). */
  admission?: Ticket;
}

/**
 * A request's ServingContext.
 *
 * @example
 * await classify(model, readImages(c.req.raw), options, servingContext(c));
 */
export function servingContext(c: { env: Env; executionCtx: { waitUntil(promise: Promise<unknown>): void }; get(key: "admission"): Ticket | undefined }): ServingContext {
  const admission = c.get("admission");
  return { env: c.env, waitUntil: (promise) => c.executionCtx.waitUntil(promise), ...(admission ? { admission } : {}) };
}
