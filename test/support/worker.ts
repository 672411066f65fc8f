/**
 * The built Worker (wrangler's deploy bundle, see global-setup.ts) running in workerd through
 * Miniflare, with the bindings wrangler.toml declares, reached over real HTTP.
 */
import { readdirSync } from "node:fs";
import { extname, join } from "node:path";
import { Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { BUILD_DIR, ROOT } from "./paths";

export interface RunningWorker {
  url: URL;
  fetch(path: string, init?: RequestInit): Promise<Response>;
  dispose(): Promise<void>;
}

const MODULE_TYPES = { ".js": "ESModule", ".wasm": "CompiledWasm", ".onnx": "Data" } as const;

function bundleModules() {
  return readdirSync(BUILD_DIR)
    .filter((file) => extname(file) in MODULE_TYPES)
    .sort((a, b) => Number(b === "index.js") - Number(a === "index.js")) // the entry comes first
    .map((file) => ({ type: MODULE_TYPES[extname(file) as keyof typeof MODULE_TYPES], path: join(BUILD_DIR, file) }));
}

export async function startWorker(): Promise<RunningWorker> {
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
  } as ConstructorParameters<typeof Miniflare>[0]);
  const url = await mf.ready;
  return {
    url,
    fetch: (path, init) => fetch(new URL(path, url), init),
    dispose: () => mf.dispose(),
  };
}
