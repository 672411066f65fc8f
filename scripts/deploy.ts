/**
 * Ship the Worker to Cloudflare: build, upload the R2-served model artifacts to the
 * environment's bucket, `wrangler deploy`, then check the live /healthz.
 *
 *   npm run deploy -- --env staging|production [--dry-run] [--outdir dir]
 *
 * --dry-run builds the exact bundle `wrangler deploy` would upload (into --outdir, default
 * .wrangler/deploy-<env>), checks its gzipped size against the 10 MiB limit and lists the
 * uploads, without contacting Cloudflare. Prerequisites for a real deploy: README.md, "Deploy".
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { unstable_readConfig } from "wrangler";
import { WORKER_GZIP_LIMIT_BYTES, bundleSize, describeBundle } from "./bundle-size.ts";
import { ROOT } from "./model-repository.ts";

const ENVIRONMENTS = ["staging", "production"];
const { values } = parseArgs({
  options: { env: { type: "string" }, "dry-run": { type: "boolean", default: false }, outdir: { type: "string" } },
});
const env = values.env;
if (!env || !ENVIRONMENTS.includes(env)) {
  console.error(`deploy: name the environment: --env ${ENVIRONMENTS.join("|")} (wrangler.toml declares each)`);
  process.exit(2);
}
const dryRun = values["dry-run"];
const config = unstable_readConfig({ config: join(ROOT, "wrangler.toml"), env });
const childEnv = { ...process.env, WRANGLER_SEND_METRICS: "false" };

/** Run a command with its output passed through, resolving with its stdout. */
function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env: childEnv, stdio: ["inherit", "pipe", "inherit"] });
    let stdout = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk;
      process.stdout.write(chunk);
    });
    child.on("exit", (code) => (code === 0 ? resolve(stdout) : reject(new Error(`${command} ${args.join(" ")} exited with ${code}`))));
  });
}

console.log(`deploy: Worker ${config.name} (--env ${env})${dryRun ? ", dry run" : ""}`);
await run(process.execPath, [join(ROOT, "scripts", "upload-models.ts"), "--remote", "--env", env, ...(dryRun ? ["--dry-run"] : [])]);

const wrangler = join(ROOT, "node_modules", ".bin", "wrangler");
if (dryRun) {
  const outdir = values.outdir ?? join(ROOT, ".wrangler", `deploy-${env}`);
  await run(wrangler, ["deploy", "--env", env, "--dry-run", "--outdir", outdir]);
  const size = bundleSize(outdir);
  console.log(`deploy: bundle ${describeBundle(size)} in ${outdir}`);
  if (size.gzipBytes > WORKER_GZIP_LIMIT_BYTES) {
    console.error("deploy: the bundle is over Cloudflare's limit; move large artifacts to R2 (scripts/model-repository.ts)");
    process.exit(1);
  }
} else {
  const output = await run(wrangler, ["deploy", "--env", env]);
  const url = /https:\/\/\S+\.workers\.dev/.exec(output)?.[0];
  if (!url) {
    console.log("deploy: done; no workers.dev URL in wrangler's output (custom routes?), so /healthz was not checked");
  } else {
    const health = (await (await fetch(`${url}/healthz`)).json()) as { status: string; models: string[]; auth: { classify: string; writeKeysConfigured: boolean } };
    console.log(`deploy: ${url}/healthz -> ${health.status}; models ${health.models.join(", ")}; classify ${health.auth.classify}`);
    if (!health.auth.writeKeysConfigured) {
      console.warn(`deploy: no API_KEYS secret yet, so write routes are closed: wrangler secret put API_KEYS --env ${env}`);
    }
  }
}
