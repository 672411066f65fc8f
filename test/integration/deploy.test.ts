/**
 * `npm run deploy` without Cloudflare: its --dry-run builds the production bundle exactly as a
 * deploy would upload it, which must fit the 10 MiB limit and, run in workerd with the
 * production environment's bindings, serve /classify behind its keys.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { unstable_readConfig } from "wrangler";
import { discoverModels, r2Objects } from "../../scripts/model-repository.ts";
import { RATE_LIMIT_PERIOD_S } from "../../workers/admission/rate-limit-period";
import { digit, encodeGray, mnistTest } from "../support/mnist";
import { ROOT } from "../support/paths";
import { TEST_CLASSIFY_KEY, startWorker, type RunningWorker } from "../support/worker";

const outdir = mkdtempSync(join(tmpdir(), "cnn-edge-deploy-"));
let output = "";
let worker: RunningWorker;

beforeAll(async () => {
  output = execFileSync(process.execPath, ["scripts/deploy.ts", "--env", "production", "--dry-run", "--outdir", outdir], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  worker = await startWorker({ build: { dir: outdir, env: "production" } });
});
afterAll(async () => {
  await worker?.dispose();
  rmSync(outdir, { recursive: true, force: true });
});

it("the production bundle is under 10 MiB gzipped", () => {
  const match = /deploy: bundle ([\d.]+) MiB gzipped in (\d+) modules/.exec(output);
  expect(match, output).not.toBeNull();
  console.log(`production bundle: ${match![1]} MiB gzipped, ${match![2]} modules`);
  expect(Number(match![1])).toBeLessThan(10);
});

it("lists every R2-served artifact for the production bucket, uploading nothing", () => {
  const objects = discoverModels().flatMap(r2Objects);
  expect(objects.length).toBeGreaterThan(0);
  for (const { key } of objects) expect(output).toContain(`would upload ${key} `);
  expect(output).toContain("to remote r2://cnn-edge-models");
});

it("the built production Worker, in workerd, classifies with a key and refuses without one", async () => {
  const png = await encodeGray(digit(mnistTest(1), 0), 28, 28, "png");
  const anonymous = await fetch(new URL("/classify", worker.url), { method: "POST", headers: { "content-type": "image/png" }, body: png });
  expect(anonymous.status).toBe(401);
  const res = await worker.fetch("/classify", { method: "POST", headers: { "content-type": "image/png", authorization: `Bearer ${TEST_CLASSIFY_KEY}` }, body: png });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { results: { predictions: { label: string }[] }[] };
  expect(body.results[0]!.predictions[0]!.label).toBe("7");
  const finetune = await worker.fetch("/finetune?classifier=x", { method: "POST", headers: { authorization: `Bearer ${TEST_CLASSIFY_KEY}` }, body: new FormData() });
  expect(finetune.status).toBe(403);
  // /metrics follows the classify rule, and counted the classification (its Analytics Engine write did not fail it).
  expect((await fetch(new URL("/metrics", worker.url))).status).toBe(401);
  const metrics = await worker.fetch("/metrics", { headers: { authorization: `Bearer ${TEST_CLASSIFY_KEY}` } });
  expect(metrics.status).toBe(200);
  expect(await metrics.text()).toContain('cnn_edge_requests_total{route="/classify",model="lenet",status_class="2xx"} 1');
});

it("every environment declares the same bindings and required secrets (wrangler does not inherit them)", () => {
  const shape = (env?: string) => {
    const config = unstable_readConfig({ config: join(ROOT, "wrangler.toml"), env });
    return {
      r2: config.r2_buckets.map((b: { binding: string }) => b.binding),
      durableObjects: config.durable_objects.bindings.map((b: { name: string; class_name: string }) => `${b.name}:${b.class_name}`),
      vars: Object.keys(config.vars).sort(),
      secrets: config.secrets?.required,
      rateLimits: config.ratelimits.map((r: { name: string }) => r.name),
    };
  };
  for (const env of ["staging", "production"]) expect(shape(env), env).toEqual(shape());
  // Analytics Engine is bound in the deployed environments only (local runs read /metrics).
  const analytics = (env?: string) => unstable_readConfig({ config: join(ROOT, "wrangler.toml"), env }).analytics_engine_datasets.map((d: { binding: string }) => d.binding);
  expect(analytics()).toEqual([]);
  for (const env of ["staging", "production"]) expect(analytics(env), env).toEqual(["REQUEST_EVENTS"]);
  // Every rate limit counts over the period the Worker's Retry-After assumes, in a namespace of its own.
  const limits = ["", "staging", "production"].flatMap((env) => unstable_readConfig({ config: join(ROOT, "wrangler.toml"), env: env || undefined }).ratelimits as { namespace_id: string; simple: { period: number } }[]);
  expect(limits.map((r) => r.simple.period)).toEqual(limits.map(() => RATE_LIMIT_PERIOD_S));
  expect(new Set(limits.map((r) => r.namespace_id)).size).toBe(limits.length);
});

it("refuses to deploy without naming an environment", () => {
  const run = spawnSync(process.execPath, ["scripts/deploy.ts"], { cwd: ROOT, encoding: "utf8" });
  expect(run.status).toBe(2);
  expect(run.stderr).toContain("--env staging|production");
});
