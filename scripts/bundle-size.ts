/**
 * The size that counts against a Worker's 10 MiB limit: the built bundle's modules, each
 * gzipped (source maps and wrangler's README excluded: they are not uploaded as modules).
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

export const WORKER_GZIP_LIMIT_BYTES = 10 * 1024 * 1024;

/**
 * Modules and gzipped bytes of a bundle written by `wrangler deploy --dry-run --outdir dir`.
 *
 * @example
 * const { modules, gzipBytes } = bundleSize("test/.build/worker");
 */
export function bundleSize(dir: string): { modules: number; gzipBytes: number } {
  const files = readdirSync(dir).filter((f) => !f.endsWith(".map") && f !== "README.md");
  const gzipBytes = files.reduce((sum, f) => sum + gzipSync(readFileSync(join(dir, f))).byteLength, 0);
  return { modules: files.length, gzipBytes };
}

/** "7.03 MiB gzipped in 12 modules (limit 10 MiB)" */
export function describeBundle({ modules, gzipBytes }: { modules: number; gzipBytes: number }): string {
  return `${(gzipBytes / 2 ** 20).toFixed(2)} MiB gzipped in ${modules} modules (limit ${WORKER_GZIP_LIMIT_BYTES / 2 ** 20} MiB)`;
}
