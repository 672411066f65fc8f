/**
 * The built Worker (wrangler's deploy bundle) running in workerd through Miniflare, with the
 * bindings wrangler.toml declares, reached over real HTTP, without wrangler dev's proxy or file
 * watcher. Its R2 bucket holds the repository's R2-served artifacts, as `npm start` uploads
 * them. The test suite and `npm run soak` start it; `buildWorker` makes the bundle.
 */
import { execFileSync } from "node:child_process";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { readFileSync, readdirSync } from "node:fs";
import { delimiter, dirname, extname, join } from "node:path";
import { Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { ROOT, discoverModels, r2Objects } from "./model-repository.ts";

export interface LocalWorker {
  url: URL;
  /** The Worker's MODELS bucket. */
  bucket: Awaited<ReturnType<Miniflare["getR2Bucket"]>>;
  /** The Worker's request log lines (workers/observability/access-log.ts), parsed, oldest first: the last LOG_LINES_KEPT. */
  requestLog(): Record<string, unknown>[];
  dispose(): Promise<void>;
}

/** How many request log lines a LocalWorker keeps: enough for a test's requests, bounded under a soak. */
export const LOG_LINES_KEPT = 5_000;

export interface LocalWorkerOptions {
  /** The bundle's folder (buildWorker's `outDir`). */
  dir: string;
  /** The wrangler.toml environment whose configuration to use ("" for the top level). */
  env?: string;
  /** Vars and secrets over wrangler.toml's (undefined removes one). */
  bindings?: Record<string, string | undefined>;
  /** A deployment that forgot to upload its R2 artifacts. */
  emptyBucket?: boolean;
  /** Keep Durable Objects here, so that a second start finds what the first stored. */
  persistDir?: string;
  /** The model repository the bundle was built from (buildWorker's `modelsDir`), whose R2 files to upload. */
  modelsDir?: string;
  /** Serve the playground's static assets in front of the Worker as Cloudflare does (default true). */
  assets?: boolean;
  /** Rate limits (requests per period) over wrangler.toml's, by binding name: a test's small limit. */
  rateLimits?: Record<string, number>;
  name?: string;
}

const MODULE_TYPES = { ".js": "ESModule", ".wasm": "CompiledWasm", ".onnx": "Data", ".bin": "Data" } as const;

function bundleModules(dir: string) {
  return readdirSync(dir)
    .filter((file) => extname(file) in MODULE_TYPES)
    .sort((a, b) => Number(b === "index.js") - Number(a === "index.js")) // the entry comes first
    .map((file) => ({ type: MODULE_TYPES[extname(file) as keyof typeof MODULE_TYPES], path: join(dir, file) }));
}

/**
 * Bundle the Worker exactly as `wrangler deploy` would, into `outDir` (serving the models under
 * `modelsDir` when given, instead of models/).
 *
 * @example
 * buildWorker("test/.build/worker");
 */
export function buildWorker(outDir: string, env = "", modelsDir?: string): void {
  // With this process's Node (the project's 22, which wrangler needs), whatever `node` is on PATH.
  execFileSync(process.execPath, [join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js"), "deploy", `--env=${env}`, "--dry-run", "--outdir", outDir], {
    cwd: ROOT,
    // wrangler's [build] command runs `node scripts/...ts` too: the same Node first on PATH.
    env: { ...process.env, ...(modelsDir ? { CNN_EDGE_MODELS_DIR: modelsDir } : {}), PATH: [dirname(process.execPath), join(ROOT, "node_modules", ".bin"), process.env.PATH].join(delimiter), WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" },
    stdio: ["ignore", "ignore", "inherit"],
  });
}

/** A request log line of the Worker's, parsed; undefined for any other output. */
export function requestLogEntry(line: string): Record<string, unknown> | undefined {
  const start = line.indexOf('{"message":"request"');
  if (start < 0) return undefined;
  try {
    return JSON.parse(line.slice(start)) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/**
 * Start the built Worker (Durable Objects in memory unless `persistDir`).
 *
 * @example
 * const worker = await startLocalWorker({ dir: "test/.build/worker", bindings: { API_KEYS: "k" } });
 * await fetch(new URL("/healthz", worker.url));
 */
export async function startLocalWorker({ dir, env, bindings: overrides = {}, emptyBucket = false, persistDir, assets = true, name = "cnn-edge-local", modelsDir, rateLimits = {} }: LocalWorkerOptions): Promise<LocalWorker> {
  const { workerOptions } = unstable_getMiniflareWorkerOptions(join(ROOT, "wrangler.toml"), env || undefined);
  const requestLog: Record<string, unknown>[] = [];
  // Only what wrangler.toml declares plus the overrides: a developer's .dev.vars stays out.
  const vars = Object.fromEntries(Object.entries(workerOptions.bindings ?? {}).filter(([key]) => key !== "API_KEYS" && key !== "CLASSIFY_KEYS"));
  const bindings = Object.fromEntries(Object.entries({ ...vars, ...overrides }).filter(([, value]) => value !== undefined));
  type RateLimitConfig = { simple: { limit: number; period: number } };
  const ratelimits = Object.fromEntries(
    Object.entries((workerOptions.ratelimits ?? {}) as Record<string, RateLimitConfig>).map(([binding, config]) => [binding, binding in rateLimits ? { ...config, simple: { ...config.simple, limit: rateLimits[binding]! } } : config]),
  );
  const mf = new Miniflare({
    ...workerOptions,
    ...(assets ? {} : { assets: undefined }),
    ratelimits,
    bindings,
    name,
    // The bundle's modules as wrangler wrote them; listed rather than discovered, since
    // onnxruntime-web holds dynamic imports that Miniflare's import walker cannot follow.
    modules: bundleModules(dir),
    modulesRoot: dir,
    host: "127.0.0.1",
    port: 0,
    cf: false,
    ...(persistDir ? { durableObjectsPersist: persistDir } : {}),
    // The Worker's one line per request is kept for the tests to read, not printed; the rest passes through.
    handleRuntimeStdio: (stdout: Readable, stderr: Readable) => {
      createInterface({ input: stdout }).on("line", (line) => {
        const entry = requestLogEntry(line);
        if (!entry) return void process.stdout.write(`${line}\n`);
        requestLog.push(entry);
        if (requestLog.length > LOG_LINES_KEPT) requestLog.splice(0, requestLog.length - LOG_LINES_KEPT);
      });
      stderr.pipe(process.stderr);
    },
  } as ConstructorParameters<typeof Miniflare>[0]);
  const url = await mf.ready;
  const bucket = await mf.getR2Bucket("MODELS");
  for (const { key, path } of emptyBucket ? [] : discoverModels(modelsDir).flatMap(r2Objects)) await bucket.put(key, readFileSync(path));
  return { url, bucket, requestLog: () => [...requestLog], dispose: () => mf.dispose() };
}
