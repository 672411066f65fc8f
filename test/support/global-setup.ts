/** Build the Worker once for the whole run, exactly as `wrangler deploy` would bundle it. */
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { BUILD_DIR, ROOT } from "./paths";

export default function setup(): void {
  rmSync(BUILD_DIR, { recursive: true, force: true });
  execFileSync(join(ROOT, "node_modules", ".bin", "wrangler"), ["deploy", "--dry-run", "--outdir", BUILD_DIR], {
    cwd: ROOT,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const files = readdirSync(BUILD_DIR).filter((f) => !f.endsWith(".map") && f !== "README.md");
  const gzip = files.reduce((sum, f) => sum + gzipSync(readFileSync(join(BUILD_DIR, f))).byteLength, 0);
  console.log(`worker bundle: ${files.length} modules, ${(gzip / 1024 / 1024).toFixed(2)} MiB gzipped (limit 10 MiB)`);
}
