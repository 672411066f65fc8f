/** Build the Worker once for the whole run, exactly as `wrangler deploy` would bundle it. */
import { rmSync } from "node:fs";
import { bundleSize, describeBundle } from "../../scripts/bundle-size.ts";
import { buildWorker } from "../../scripts/local-worker.ts";
import { BUILD_DIR } from "./paths";

export default function setup(): void {
  rmSync(BUILD_DIR, { recursive: true, force: true });
  buildWorker(BUILD_DIR);
  console.log(`worker bundle: ${describeBundle(bundleSize(BUILD_DIR))}`);
}
