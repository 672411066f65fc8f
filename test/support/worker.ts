/**
 * The built Worker (wrangler's deploy bundle, see global-setup.ts) running in workerd through
 * Miniflare (scripts/local-worker.ts), with the bindings wrangler.toml declares. Its API_KEYS
 * secret is TEST_API_KEY, and `fetch` sends that key, as an operator's client would.
 */
import { startLocalWorker, type LocalWorker, type LocalWorkerOptions } from "../../scripts/local-worker.ts";
import { BUILD_DIR } from "./paths";

/** The full-access key of a test Worker (its API_KEYS secret). */
export const TEST_API_KEY = "test-admin-key";
/** Its classify-only key (CLASSIFY_KEYS). */
export const TEST_CLASSIFY_KEY = "test-classify-key";

export interface RunningWorker extends LocalWorker {
  /** A request with `Authorization: Bearer TEST_API_KEY` unless `init` sets its own. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
}

export interface WorkerOptions extends Omit<LocalWorkerOptions, "dir" | "env"> {
  /** A bundle other than the test run's (e.g. one built for --env production), with that environment's config. */
  build?: { dir: string; env: string };
}

/** Start the built Worker (Durable Objects in memory unless `persistDir`). */
export async function startWorker({ build, bindings = {}, ...options }: WorkerOptions = {}): Promise<RunningWorker> {
  const worker = await startLocalWorker({
    ...options,
    dir: build?.dir ?? BUILD_DIR,
    env: build?.env,
    name: "cnn-edge-test",
    bindings: { API_KEYS: TEST_API_KEY, CLASSIFY_KEYS: TEST_CLASSIFY_KEY, ...bindings },
  });
  return {
    ...worker,
    fetch: (path, init = {}) => {
      const headers = new Headers(init.headers);
      if (!headers.has("authorization")) headers.set("authorization", `Bearer ${TEST_API_KEY}`);
      return fetch(new URL(path, worker.url), { ...init, headers });
    },
  };
}
