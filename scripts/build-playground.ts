/**
 * Build the playground page (workers/playground) into the Worker's static assets folder,
 * workers/playground/dist, which wrangler.toml's [assets] serves at `/`:
 *   index.html, playground.js   the page and its script (engine, preprocessing, UI), bundled by esbuild
 *   ort/runtime.json, ort/*.part*  onnxruntime-web's WebGPU+WASM runtime, in parts under
 *                                  Workers Static Assets' 25 MiB per-file limit (the page joins them)
 *   docs/                          the API reference at /docs: Swagger UI (swagger-ui-dist) over /openapi.json
 * Run by wrangler's [build] command, so `npm start`, `wrangler deploy` and the tests build it.
 *
 *   node scripts/build-playground.ts
 */
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { build } from "esbuild";
import { ROOT } from "./model-repository.ts";

/** Workers Static Assets' largest file, less a margin. */
const MAX_PART_BYTES = 24 * 2 ** 20;
const RUNTIME = "ort-wasm-simd-threaded.asyncify.wasm"; // what onnxruntime-web/webgpu runs

const source = join(ROOT, "workers", "playground");
const out = join(source, "dist");
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "ort"), { recursive: true });
mkdirSync(join(out, "docs"), { recursive: true });

copyFileSync(join(source, "index.html"), join(out, "index.html"));
await build({
  entryPoints: [join(source, "page", "main.ts")],
  outfile: join(out, "playground.js"),
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  minify: true,
  sourcemap: "linked",
  logLevel: "warning",
});

const swaggerUi = dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
for (const file of ["swagger-ui-bundle.js", "swagger-ui.css"]) copyFileSync(join(swaggerUi, file), join(out, "docs", file));
copyFileSync(join(source, "docs.html"), join(out, "docs", "index.html"));
copyFileSync(join(source, "docs-reference.js"), join(out, "docs", "reference.js"));

const runtime = readFileSync(createRequire(import.meta.url).resolve(`onnxruntime-web/${RUNTIME}`));
const count = Math.ceil(runtime.length / MAX_PART_BYTES);
const size = Math.ceil(runtime.length / count);
const parts = Array.from({ length: count }, (_, i) => `${RUNTIME}.part${i}`);
parts.forEach((part, i) => writeFileSync(join(out, "ort", part), runtime.subarray(i * size, (i + 1) * size)));
const manifest = { file: RUNTIME, bytes: runtime.length, sha256: createHash("sha256").update(runtime).digest("hex"), parts };
writeFileSync(join(out, "ort", "runtime.json"), JSON.stringify(manifest, null, 2));
console.log(`playground: built ${out} (runtime ${(runtime.length / 1e6).toFixed(1)} MB in ${count} parts)`);
