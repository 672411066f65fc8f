/**
 * The built Worker (wrangler's deploy bundle, see global-setup.ts) running in workerd through
 * Miniflare, with the bindings wrangler.toml declares, reached over real HTTP. Its R2 bucket
 * is in memory and holds the repository's R2-served artifacts, as `npm start` would upload them.
 */
import { readFileSync, readdirSync } from "node:fs";
import { extname, join } from "node:path";
import { Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { discoverModels, r2Objects } from "../../scripts/model-repository.ts";
import { BUILD_DIR, ROOT } from "./paths";

export interface RunningWorker {
  url: URL;
  /** The Worker's MODELS bucket. */
  bucket: Awaited<ReturnType<Miniflare["getR2Bucket"]>>;
  fetch(path: string, init?: RequestInit): Promise<Response>;
  dispose(): Promise<void>;
}

const MODULE_TYPES = { ".js": "ESModule", ".wasm": "CompiledWasm", ".onnx": "Data", ".bin": "Data" } as const;

function bundleModules() {
  return readdirSync(BUILD_DIR)
    .filter((file) => extname(file) in MODULE_TYPES)
    .sort((a, b) => Number(b === "index.js") - Number(a === "index.js")) // the entry comes first
    .map((file) => ({ type: MODULE_TYPES[extname(file) as keyof typeof MODULE_TYPES], path: join(BUILD_DIR, file) }));
}

/**
 * Start the built Worker. Its MODELS bucket holds the repository's R2 artifacts, unless
 * `emptyBucket` asks for a deployment that forgot to upload them. Durable Objects live in
 * memory, or under `persistDir` when given, so that a second start finds what the first stored.
 */
export async function startWorker({ emptyBucket = false, persistDir }: { emptyBucket?: boolean; persistDir?: string } = {}): Promise<RunningWorker> {
  const { workerOptions } = unstable_getMiniflareWorkerOptions(join(ROOT, "wrangler.toml"));
  const mf = new Miniflare({
    ...workerOptions,
    name: "cnn-edge-test",
    // The bundle's modules as wrangler wrote them; listed rather than discovered, since
    // onnxruntime-web holds dynamic imports that Miniflare's import walker cannot follow.
    modules: bundleModules(),
    modulesRoot: BUILD_DIR,
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
    fetch: (path, init) => fetch(new URL(path, url), init),
    dispose: () => mf.dispose(),
  };
}
