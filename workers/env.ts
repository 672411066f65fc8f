import type { ClassifierObject } from "./classifiers/classifier-object";

/** The Worker's bindings, as wrangler.toml declares them. */
export interface Env {
  /** Model id that POST /classify uses when the request names none. */
  DEFAULT_MODEL: string;
  /** Model artifacts too large to bundle, at models/<id>/<version>/<file> (npm run models:upload). */
  MODELS: R2Bucket;
  /** One Durable Object (SQLite storage) per fine-tunable classifier, by id. */
  CLASSIFIERS: DurableObjectNamespace<ClassifierObject>;
  /** "public" or "key": whether classify and read routes need an API key (workers/auth); any other value counts as "key". */
  CLASSIFY_ACCESS: string;
  /** Secret: full-access API keys, comma-separated. Without any, routes that change state are closed. */
  API_KEYS?: string;
  /** Secret (optional): classify-only API keys, comma-separated. */
  CLASSIFY_KEYS?: string;
}

export type AppEnv = { Bindings: Env };
