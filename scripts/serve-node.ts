/**
 * Build and start the Node GPU host (workers/hosts/node/server.ts): the Worker's API and
 * playground, with models on WebGPU through Dawn where the machine has a GPU, else on WASM.
 *
 *   npm run serve:node -- [--port 8788] [--env staging|production] [--build-only]
 *
 * Vars come from wrangler.toml (the environment chosen) and secrets from .dev.vars, read by
 * wrangler as `wrangler dev` reads them; API_KEYS and CLASSIFY_KEYS in the process environment
 * override them.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { build, type Plugin } from "esbuild";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { ROOT } from "./model-repository.ts";

const { values } = parseArgs({
  options: { port: { type: "string", default: "8788" }, env: { type: "string" }, "build-only": { type: "boolean", default: false } },
});

/**
 * The module types wrangler gives the Worker, for Node: .wasm as a compiled WebAssembly.Module
 * (CompiledWasm), .onnx/.bin as an ArrayBuffer (Data), read from their files at start-up; and
 * `cloudflare:workers`, of which the app only names DurableObject.
 */
const workerModules: Plugin = {
  name: "worker-modules",
  setup(bundler) {
    bundler.onResolve({ filter: /\.(wasm|onnx|bin)(\?module)?$/ }, async (args) => {
      if (args.pluginData === "resolving") return undefined;
      const resolved = await bundler.resolve(args.path.replace(/\?module$/, ""), { resolveDir: args.resolveDir, kind: args.kind, pluginData: "resolving" });
      return resolved.errors.length ? { errors: resolved.errors } : { path: resolved.path, namespace: "worker-module" };
    });
    bundler.onLoad({ filter: /.*/, namespace: "worker-module" }, (args) => {
      const file = JSON.stringify(args.path);
      const contents = args.path.endsWith(".wasm")
        ? `import { readFileSync } from "node:fs"; export default new WebAssembly.Module(readFileSync(${file}));`
        : `import { readFileSync } from "node:fs"; const b = readFileSync(${file}); export default b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);`;
      return { contents, loader: "js" };
    });
    bundler.onResolve({ filter: /^cloudflare:workers$/ }, () => ({ path: "cloudflare:workers", namespace: "workers-runtime" }));
    bundler.onLoad({ filter: /.*/, namespace: "workers-runtime" }, () => ({
      contents: "export class DurableObject { constructor(ctx, env) { this.ctx = ctx; this.env = env; } }",
      loader: "js",
    }));
  },
};

const outfile = join(ROOT, "workers", "hosts", "node", "dist", "server.mjs");
await build({
  entryPoints: [join(ROOT, "workers", "hosts", "node", "server.ts")],
  outfile,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node22",
  external: ["webgpu"], // Dawn's native addon, loaded from node_modules
  plugins: [workerModules],
  // esbuild's CommonJS shims need `require` in an ES module.
  banner: { js: 'import { createRequire as __cnnEdgeRequire } from "node:module"; const require = __cnnEdgeRequire(import.meta.url);' },
  logLevel: "warning",
});
if (values["build-only"]) process.exit(0);

const { workerOptions } = unstable_getMiniflareWorkerOptions(join(ROOT, "wrangler.toml"), values.env);
const vars = { ...(workerOptions.bindings as Record<string, string>) };
for (const name of ["API_KEYS", "CLASSIFY_KEYS"]) if (process.env[name] !== undefined) vars[name] = process.env[name]!;

// Typed here rather than imported: the host's own types need the Workers' (tsconfig in its folder).
type StartNodeHost = (options: { port: number; root: string; vars: Record<string, string> }) => Promise<{ url: string }>;
const { startNodeHost } = (await import(outfile)) as { startNodeHost: StartNodeHost };
await startNodeHost({ port: Number(values.port), root: ROOT, vars });
