/**
 * The built Worker (wrangler's deploy bundle, see global-setup.ts) running in workerd through
 * Miniflare, with the bindings wrangler.toml declares, reached over real HTTP. Its R2 bucket
 * is in memory and holds the repository's R2-served artifacts, as `npm start` would upload them.
 * Its API_KEYS secret is TEST_API_KEY, and `fetch` sends that key, as an operator's client would.
 */
import { readFileSync, readdirSync } from "node:fs";
import { extname, join } from "node:path";
import { Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { discoverModels, r2Objects } from "../../scripts/model-repository.ts";
import { BUILD_DIR, ROOT } from "./paths";

/** The full-access key of a test Worker (its API_KEYS secret). */
export const TEST_API_KEY = "test-admin-key";
/** Its classify-only key (CLASSIFY_KEYS). */
export const TEST_CLASSIFY_KEY = "test-classify-key";

export interface RunningWorker {
  url: URL;
  /** The Worker's MODELS bucket. */
  bucket: Awaited<ReturnType<Miniflare["getR2Bucket"]>>;
  /** A request with `Authorization: Bearer TEST_API_KEY` unless `init` sets its own. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  dispose(): Promise<void>;
}

const MODULE_TYPES = { ".js": "ESModule", ".wasm": "CompiledWasm", ".onnx": "Data", ".bin": "Data" } as const;

function bundleModules(dir: string) {
  return readdirSync(dir)
    .filter((file) => extname(file) in MODULE_TYPES)
    .sort((a, b) => Number(b === "index.js") - Number(a === "index.js")) // the entry comes first
    .map((file) => ({ type: MODULE_TYPES[extname(file) as keyof typeof MODULE_TYPES], path: join(dir, file) }));
}

export interface WorkerOptions {
  /** A deployment that forgot to upload its R2 artifacts. */
  emptyBucket?: boolean;
  /** Keep Durable Objects here, so that a second start finds what the first stored. */
  persistDir?: string;
  /** A bundle other than the test run's (e.g. one built for --env production), with that environment's config. */
  build?: { dir: string; env: string };
  /** Vars and secrets over wrangler.toml's and the test keys (undefined removes one). */
  bindings?: Record<string, string | undefined>;
}

/** Start the built Worker (Durable Objects in memory unless `persistDir`). */
export async function startWorker({ emptyBucket = false, persistDir, build, bindings: overrides = {} }: WorkerOptions = {}): Promise<RunningWorker> {
  const { workerOptions } = unstable_getMiniflareWorkerOptions(join(ROOT, "wrangler.toml"), build?.env);
  const dir = build?.dir ?? BUILD_DIR;
  // Only what wrangler.toml declares plus the test keys: a developer's .dev.vars stays out.
  const vars = Object.fromEntries(Object.entries(workerOptions.bindings ?? {}).filter(([name]) => name !== "API_KEYS" && name !== "CLASSIFY_KEYS"));
  const bindings = Object.fromEntries(
    Object.entries({ ...vars, API_KEYS: TEST_API_KEY, CLASSIFY_KEYS: TEST_CLASSIFY_KEY, ...overrides }).filter(([, value]) => value !== undefined),
  );
  const mf = new Miniflare({
    ...workerOptions,
    bindings,
    name: "cnn-edge-test",
    // The bundle's modules as wrangler wrote them; listed rather than discovered, since
    // onnxruntime-web holds dynamic imports that Miniflare's import walker cannot follow.
    modules: bundleModules(dir),
    modulesRoot: dir,
    host: "127.0.0.1",
    port: 0,
    cf: false,
    ...(persistDir ? { durableObjectsPersist: persistDir } : {}),
  } as ConstructorParameters<typeof Miniflare>[0]);
  const url = await mf.ready;
  const bucket = await mf.getR2Bucket("MODELS");
  for (const { key, path } of emptyBucket ? [] : discoverModels().flatMap(r2Objects)) await bucket.put(key, readFileSync(path));
  return {
    url,
    bucket,
    fetch: (path, init = {}) => {
      const headers = new Headers(init.headers);
      if (!headers.has("authorization")) headers.set("authorization", `Bearer ${TEST_API_KEY}`);
      return fetch(new URL(path, url), { ...init, headers });
    },
    dispose: () => mf.dispose(),
  };
}
