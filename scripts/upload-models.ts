/**
 * Put every file the Worker reads from R2 (model artifacts, heads) into the MODELS bucket (models
 * too large to serve are skipped): the local one that
 * `wrangler dev` uses (default; `npm start` runs this first) or, with --remote, the bucket on
 * Cloudflare. Local uploads are skipped when the same sha256 was uploaded before.
 *
 *   node scripts/upload-models.ts [--remote] [--env staging|production] [--dry-run]
 *
 * --dry-run lists what would be uploaded, and where, without touching any bucket.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { unstable_readConfig } from "wrangler";
import { ROOT, discoverModels, r2Objects } from "./model-repository.ts";

const { values } = parseArgs({
  options: { remote: { type: "boolean", default: false }, env: { type: "string" }, "dry-run": { type: "boolean", default: false } },
});
const config = unstable_readConfig({ config: join(ROOT, "wrangler.toml"), env: values.env });
const bucket = config.r2_buckets.find((b: { binding: string }) => b.binding === "MODELS")?.bucket_name;
if (!bucket) throw new Error("wrangler.toml declares no R2 bucket bound as MODELS");

// What this machine's local bucket already holds, so that `npm start` stays quick; kept inside
// the bucket's own folder so that deleting local R2 state forgets it too.
const stampFile = join(ROOT, ".wrangler", "state", "v3", "r2", "cnn-edge-uploaded.json");
const uploaded: Record<string, string> = !values.remote && existsSync(stampFile) ? JSON.parse(readFileSync(stampFile, "utf8")) : {};

const wrangler = join(ROOT, "node_modules", ".bin", "wrangler");
for (const { key, path, sha256, bytes } of discoverModels().flatMap(r2Objects)) {
  if (uploaded[key] === sha256) {
    console.log(`models: r2://${bucket}/${key} is up to date`);
    continue;
  }
  console.log(`models: ${values["dry-run"] ? "would upload" : "uploading"} ${key} (${(bytes / 1e6).toFixed(1)} MB) to ${values.remote ? "remote" : "local"} r2://${bucket}`);
  if (values["dry-run"]) continue;
  execFileSync(
    wrangler,
    ["r2", "object", "put", `${bucket}/${key}`, "--file", path, "--content-type", "application/octet-stream",
      values.remote ? "--remote" : "--local", ...(values.env ? ["--env", values.env] : [])],
    { cwd: ROOT, stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, WRANGLER_SEND_METRICS: "false" } },
  );
  uploaded[key] = sha256;
}
if (!values.remote && !values["dry-run"]) {
  mkdirSync(dirname(stampFile), { recursive: true });
  writeFileSync(stampFile, JSON.stringify(uploaded, null, 2));
}
