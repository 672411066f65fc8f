/** The Worker's bindings, as wrangler.toml declares them. */
export interface Env {
  /** Model id that POST /classify uses when the request names none. */
  DEFAULT_MODEL: string;
}

export type AppEnv = { Bindings: Env };
