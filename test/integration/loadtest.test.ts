/**
 * `npm run loadtest` against the built Worker in workerd: a short run with fine-tuning mixed
 * in must finish by itself with zero errors, every answer checked and consistent, no update
 * lost, and a report and chart written. Against a server that answers fast but wrong, it must
 * fail; without --url it must refuse to start.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ROOT } from "../support/paths";
import { TEST_API_KEY, startWorker, type RunningWorker } from "../support/worker";

const out = mkdtempSync(join(tmpdir(), "cnn-edge-loadtest-"));
let worker: RunningWorker;
beforeAll(async () => {
  worker = await startWorker();
});
afterAll(async () => {
  await worker?.dispose();
  rmSync(out, { recursive: true, force: true });
});

function loadtest(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["scripts/loadtest.ts", ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk));
    child.on("exit", (code) => resolve({ code, output }));
  });
}

interface Report {
  model: string;
  durationS: number;
  requests: { total: number; perSecond: number; errors: number };
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  statusCodes: Record<string, number>;
  errorMessages: Record<string, number>;
  checks: { checked: number; correct: number; accuracy: number; inconsistent: number; referenceAccuracy: number; accuracyFloor: number };
  finetune?: { acknowledged: number; finalVersion: number; lostUpdates: number; deleted: boolean; classifier: string };
  timeline: { t: number; requests: number; errors: number; p50Ms: number; p99Ms: number }[];
  passed: boolean;
  failures: string[];
}

it("a 6 s run with 10 % fine-tuning passes: zero errors, answers checked, no update lost, report and chart written", { timeout: 120_000 }, async () => {
  const dir = join(out, "lenet");
  const { code, output } = await loadtest(["--url", worker.url.href, "--duration", "6s", "--connections", "4", "--finetune-ratio", "0.1", "--key", TEST_API_KEY, "--out", dir]);
  expect(code, output).toBe(0);
  expect(output).toMatch(/loadtest: \d+\/6s\s+\d+ responses/); // progress while it runs
  expect(output).toContain("loadtest: PASSED");

  const report = JSON.parse(readFileSync(join(dir, "report.json"), "utf8")) as Report;
  expect(report.model).toBe("lenet");
  expect(report.passed).toBe(true);
  expect(report.durationS).toBeGreaterThanOrEqual(6);
  expect(report.durationS).toBeLessThan(15);
  expect(report.requests.errors).toBe(0);
  expect(report.errorMessages).toEqual({});
  expect(report.requests.total).toBeGreaterThan(20);
  expect(report.statusCodes).toEqual({ 200: report.requests.total });
  const { p50, p90, p99, max } = report.latencyMs;
  expect(0 < p50 && p50 <= p90 && p90 <= p99 && p99 <= max).toBe(true);
  expect(report.checks.checked).toBeGreaterThan(0);
  expect(report.checks.inconsistent).toBe(0);
  expect(report.checks.accuracy).toBeGreaterThanOrEqual(report.checks.accuracyFloor);
  expect(report.finetune!.acknowledged).toBeGreaterThan(0);
  expect(report.checks.checked + report.finetune!.acknowledged).toBe(report.requests.total);
  expect(report.finetune!.lostUpdates).toBe(0);
  expect(report.finetune!.finalVersion).toBeGreaterThanOrEqual(report.finetune!.acknowledged + 1);
  expect(report.timeline.length).toBeGreaterThanOrEqual(6);
  expect(report.timeline.reduce((sum, s) => sum + s.requests, 0)).toBe(report.requests.total);
  expect(readFileSync(join(dir, "report.svg"), "utf8")).toMatch(/^<svg[\s\S]*requests\/s[\s\S]*<\/svg>\n$/);
  // The scratch classifier is gone.
  expect((await worker.fetch(`/v1/classifiers/${report.finetune!.classifier}`)).status).toBe(404);
});

it("fails a server that answers fast but wrong", { timeout: 60_000 }, async () => {
  // Stands in for a broken deployment: valid answers, always the same digit.
  const wrong: Server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.setHeader("content-type", "application/json");
      if (req.url === "/healthz") return res.end(JSON.stringify({ status: "ok", defaultModel: "lenet" }));
      if (req.url === "/v1/models/lenet") return res.end(JSON.stringify({ dataset: "MNIST", metrics: { validationAccuracy: 0.99 }, serving: { servable: true } }));
      res.end(JSON.stringify({ results: [{ predictions: [{ label: "3", probability: 1 }] }] }));
    });
  });
  await new Promise<void>((resolve) => wrong.listen(0, "127.0.0.1", resolve));
  const { port } = wrong.address() as { port: number };
  const dir = join(out, "wrong");
  const { code, output } = await loadtest(["--url", `http://127.0.0.1:${port}`, "--duration", "2s", "--connections", "2", "--out", dir]);
  wrong.close();
  expect(code, output).toBe(1);
  expect(output).toContain("loadtest: FAILED");
  const report = JSON.parse(readFileSync(join(dir, "report.json"), "utf8")) as Report;
  expect(report.passed).toBe(false);
  expect(report.checks.referenceAccuracy).toBeCloseTo(0.1, 5);
  expect(report.failures.join("\n")).toMatch(/accuracy under load 0\.100 is below the floor/);
});

it("refuses to run without --url, and writes nothing", async () => {
  const { code, output } = await loadtest(["--out", join(out, "none")]);
  expect(code).toBe(2);
  expect(output).toContain("--url is required");
  expect(existsSync(join(out, "none"))).toBe(false);
});
