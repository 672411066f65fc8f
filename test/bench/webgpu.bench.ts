/**
 * npm run bench:webgpu — the engine (workers/engine) on WebGPU and on WASM, per image at batch
 * 1, for every servable model, beside native onnxruntime-node with one thread, on each host this
 * machine has:
 * - Chromium (Debian's, headless) running the playground page: WebGPU on the machine's GPU, or
 *   on SwiftShader (Vulkan on the CPU) where there is none, as on the CI machines;
 * - the Node host (npm run serve:node): WebGPU through Dawn where the machine has a GPU driver.
 * Each figure is the median of RUNS timed runs after one untimed (shader compilation, kernel
 * selection), of the model run alone. Also the largest |Δ logit| between WebGPU and WASM.
 * Prints a markdown table and writes test/.build/bench-webgpu.{md,json}.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, expect, it } from "vitest";
import { discoverModels } from "../../scripts/model-repository.ts";
import { quantile } from "../../scripts/stats.ts";
import { CHROMIUM, launchChromium, openPlayground } from "../support/browser";
import { cifarValidation } from "../support/cifar";
import { startNodeHost, type RunningNodeHost } from "../support/node-host";
import { ROOT } from "../support/paths";
import { startWorker, type RunningWorker } from "../support/worker";
import { engineMsPerImage } from "./engines";

const RUNS = 5;
const models = discoverModels().filter((model) => model.manifest.serving.servable);

let worker: RunningWorker;
let nodeHost: RunningNodeHost;

beforeAll(async () => {
  worker = await startWorker();
  nodeHost = await startNodeHost();
});
afterAll(async () => {
  nodeHost?.close();
  await worker?.dispose();
});

const imageFor = async (id: string) =>
  id === "lenet" ? readFileSync(join(ROOT, "test", "fixtures", "mnist-test-0-label-7.png")) : await sharp(cifarValidation(1)[4]!.bytes).png().toBuffer();

interface Measured {
  ms: number;
  logits: number[];
}

/** The page's engine on a provider: median inference ms of RUNS after one, and the logits. */
async function inBrowser(page: import("playwright-core").Page, id: string, provider: string, png: Buffer): Promise<Measured> {
  return page.evaluate(
    async ({ id, provider, bytes, runs }) => {
      const image = new Blob([new Uint8Array(bytes)], { type: "image/png" });
      const { classifyInBrowser } = (globalThis as unknown as { cnnEdge: { classifyInBrowser: Function } }).cnnEdge;
      const first = await classifyInBrowser(id, provider, image);
      const times: number[] = [];
      for (let i = 0; i < runs; i++) times.push((await classifyInBrowser(id, provider, image)).inferenceMs);
      times.sort((a, b) => a - b);
      return { ms: times[Math.floor(runs / 2)]!, logits: first.logits as number[] };
    },
    { id, provider, bytes: [...png], runs: RUNS },
  );
}

/** The Node host's engine on a provider, through HTTP: median timing.inferenceMs, and the logits. */
async function onNodeHost(id: string, provider: string, png: Buffer): Promise<Measured | undefined> {
  const post = () => fetch(`${nodeHost.url}/v1/models/${id}/classify?include=logits&provider=${provider}`, { method: "POST", headers: { "content-type": "image/png" }, body: new Uint8Array(png) });
  const first = await post();
  if (first.status === 422) return undefined; // no such provider on this machine
  const { results } = (await first.json()) as { results: { logits: number[] }[] };
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) times.push(((await (await post()).json()) as { timing: { inferenceMs: number } }).timing.inferenceMs);
  return { ms: quantile(times, 0.5), logits: results[0]!.logits };
}

const difference = (a?: Measured, b?: Measured) => (a && b ? Math.max(...a.logits.map((x, i) => Math.abs(x - b.logits[i]!))) : undefined);
const cell = (m?: Measured) => (m ? m.ms.toFixed(2) : "—");

it("measures WebGPU against WASM and native, per host", { timeout: 1_800_000 }, async () => {
  const health = (await (await fetch(`${nodeHost.url}/healthz`)).json()) as { engine: { webgpu: { available: boolean; adapter?: string; reason?: string } } };
  const browser = existsSync(CHROMIUM) ? await launchChromium() : undefined;
  const page = browser && (await openPlayground(browser, worker.url));
  const adapter = page && (await page.evaluate(async () => {
    const found = await navigator.gpu?.requestAdapter();
    return found ? [found.info.vendor, found.info.architecture, found.info.description].filter(Boolean).join(" ") || "unnamed adapter" : "none";
  }));

  const rows = [];
  for (const model of models) {
    const { id } = model;
    const png = await imageFor(id);
    const browserGpu = page && (await inBrowser(page, id, "webgpu", png).catch(() => undefined));
    const browserWasm = page && (await inBrowser(page, id, "wasm", png));
    const nodeGpu = await onNodeHost(id, "webgpu", png);
    const nodeWasm = await onNodeHost(id, "wasm", png);
    const native = await engineMsPerImage("ort-node 1 thread", model, 1, 32);
    const row = { id, browserGpu, browserWasm, nodeGpu, nodeWasm, nativeMs: native, browserDiff: difference(browserGpu, browserWasm), nodeDiff: difference(nodeGpu, nodeWasm) };
    console.log(`${id}: browser webgpu ${cell(browserGpu)} / wasm ${cell(browserWasm)} ms; node webgpu ${cell(nodeGpu)} / wasm ${cell(nodeWasm)} ms; native ${native.toFixed(2)} ms`);
    rows.push(row);
  }
  await browser?.close();

  const exp = (value?: number) => (value === undefined ? "—" : value.toExponential(1));
  const md = [
    `Per image, batch 1, median of ${RUNS} runs after one (ms). Browser: Chromium ${browser ? `with WebGPU adapter "${adapter}"` : "not installed"}. ` +
      `Node host: WebGPU ${health.engine.webgpu.available ? `on "${health.engine.webgpu.adapter}"` : `unavailable (${health.engine.webgpu.reason})`}.`,
    "",
    "| model | browser WebGPU | browser WASM | max Δ logit | Node host WebGPU | Node host WASM | max Δ logit | onnxruntime-node 1 thread |",
    "|---|---|---|---|---|---|---|---|",
    ...rows.map((r) => `| ${r.id} | ${cell(r.browserGpu)} | ${cell(r.browserWasm)} | ${exp(r.browserDiff)} | ${cell(r.nodeGpu)} | ${cell(r.nodeWasm)} | ${exp(r.nodeDiff)} | ${r.nativeMs.toFixed(2)} |`),
  ].join("\n");
  console.log(`\n${md}\n`);
  mkdirSync(join(ROOT, "test", ".build"), { recursive: true });
  writeFileSync(join(ROOT, "test", ".build", "bench-webgpu.md"), `${md}\n`);
  writeFileSync(join(ROOT, "test", ".build", "bench-webgpu.json"), JSON.stringify({ adapter, nodeWebGpu: health.engine.webgpu, runs: RUNS, rows }, null, 2));
  for (const r of rows) for (const diff of [r.browserDiff, r.nodeDiff]) if (diff !== undefined) expect(diff).toBeLessThan(1e-3);
});
