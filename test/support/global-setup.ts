/** Build the Worker once for the whole run, exactly as `wrangler deploy` would bundle it. */
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { bundleSize, describeBundle } from "../../scripts/bundle-size.ts";
import { BUILD_DIR, ROOT } from "./paths";

export default function setup(): void {
  rmSync(BUILD_DIR, { recursive: true, force: true });
  execFileSync(join(ROOT, "node_modules", ".bin", "wrangler"), ["deploy", "--env=", "--dry-run", "--outdir", BUILD_DIR], {
    cwd: ROOT,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  console.log(`worker bundle: ${describeBundle(bundleSize(BUILD_DIR))}`);
}
