/**
 * The playground page in a real browser (Debian's headless Chromium, WebGPU on SwiftShader),
 * served by the built Worker in workerd: classify on the server and in the page and compare,
 * run every servable model on WebGPU and on WASM in the page, and teach a classifier through
 * the UI. A screenshot of the page lands in test/.build/playground.png.
 */
import type { ModelManifest } from "../../workers/models/manifest";
import { computesInIntegers } from "../support/onnx";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium, openPlayground } from "../support/browser";
import { cifarValidation } from "../support/cifar";
import { digit, mnistTest } from "../support/mnist";
import { ROOT } from "../support/paths";
import { TEST_API_KEY, startWorker, type RunningWorker } from "../support/worker";

let worker: RunningWorker;
let browser: Browser;
let page: Page;

/** Held-out images as PNG, so that the browser's decoder and the Worker's give the same pixels. */
const digitPng = async (i: number) => sharp(Buffer.from(digit(mnistTest(i + 1), i)), { raw: { width: 28, height: 28, channels: 1 } }).png().toBuffer();
const cifarPng = async (i: number) => sharp(cifarValidation(1)[i]!.bytes).png().toBuffer();

const maxDifference = (a: number[], b: number[]) => Math.max(...a.map((value, i) => Math.abs(value - b[i]!)));

beforeAll(async () => {
  worker = await startWorker();
  // A model registered through the API before the page loads: it is listed with the built-in ones.
  const form = new FormData();
  form.append("model", new Blob([new Uint8Array(readFileSync(join(ROOT, "models", "lenet", "1", "model.onnx")))]), "digits.onnx");
  for (const [name, value] of Object.entries({ id: "my-digits", labels: [...Array(10).keys()].join("\n"), preset: "mnist", output: "logits" })) form.append(name, value);
  const registered = await worker.fetch("/v1/models", { method: "POST", body: form });
  expect(registered.status, await registered.clone().text()).toBe(201);
  browser = await launchChromium();
  page = await openPlayground(browser, worker.url);
});

afterAll(async () => {
  await browser?.close();
  await worker?.dispose();
});

/** Pick a file in the page, classify, and read both panels' answers. */
async function classifyInPage(model: string, png: Buffer, provider: string) {
  await page.selectOption("#model", model);
  await page.selectOption("#provider", provider);
  await page.setInputFiles("#file", { name: "held-out.png", mimeType: "image/png", buffer: png });
  await page.evaluate(() => document.querySelector("#agreement")!.removeAttribute("data-max-difference"));
  await page.click("#classify");
  await page.waitForSelector("#agreement[data-max-difference]", { timeout: 180_000 });
  const panel = async (id: string) => ({
    title: (await page.textContent(`#${id} h3`))!,
    top: (await page.getAttribute(`#${id}`, "data-top"))!,
    logits: JSON.parse((await page.getAttribute(`#${id}`, "data-logits"))!) as number[],
  });
  return { server: await panel("server-result"), browser: await panel("browser-result") };
}

describe("the playground at /", () => {
  it("is served by the Worker as a page with its script", async () => {
    const response = await fetch(new URL("/", worker.url));
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/text\/html/);
    expect(await page.textContent("#hosts")).toMatch(/server runs models on workerd \(WebGPU not available\); this browser has a WebGPU adapter that runs on the CPU, so auto picks WASM/);
    const listed = await page.$$eval("#model option", (options) => options.map((option) => (option as HTMLOptionElement).value));
    const catalogue = (await (await fetch(new URL("/v1/models", worker.url), { headers: { authorization: `Bearer ${TEST_API_KEY}` } })).json()) as { models: { id: string; servable: boolean }[] };
    const servable = catalogue.models.filter((model) => model.servable).map((model) => model.id);
    expect(servable).toContain("lenet");
    expect(servable).toContain("my-digits");
    expect(listed).toEqual(servable);
    expect(await page.textContent('#model option[value="my-digits"]')).toMatch(/registered v1/);
  });

  it.each([
    ["lenet", () => digitPng(0)],
    ["resnet-edge", () => cifarPng(3)],
  ])("classifies a held-out image with %s on the server (WASM) and in the page (WebGPU) alike", async (model, image) => {
    const { server, browser: inPage } = await classifyInPage(model, await image(), "webgpu");
    expect(server.title).toBe("Server · wasm");
    expect(inPage.title).toBe("This browser · webgpu");
    expect(inPage.top).toBe(server.top);
    expect(maxDifference(server.logits, inPage.logits)).toBeLessThan(1e-3);
  });

  it("classifies a digit drawn on the page's canvas, on the server and in the page alike", async () => {
    await page.selectOption("#model", "lenet");
    await page.selectOption("#provider", "webgpu");
    await page.click("#clear-drawing");
    const box = (await page.locator("#drawing").boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.15);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.85, { steps: 12 }); // a "1"
    await page.mouse.up();
    await page.waitForFunction(() => (document.querySelector("#preview") as HTMLImageElement).src.startsWith("blob:"));
    await page.evaluate(() => document.querySelector("#agreement")!.removeAttribute("data-max-difference"));
    await page.click("#classify");
    await page.waitForSelector("#agreement[data-max-difference]", { timeout: 60_000 });
    expect(await page.getAttribute("#server-result", "data-top")).toBe("1");
    expect(await page.getAttribute("#browser-result", "data-top")).toBe("1");
    expect(Number(await page.getAttribute("#agreement", "data-max-difference"))).toBeLessThan(1e-3);
  });

  it("asks for the API key when teaching without one", async () => {
    await page.fill("#api-key", "");
    await page.fill("#label", "anything");
    await page.click("#add-example");
    await page.click("#teach");
    await page.waitForSelector("#status[data-kind=error]");
    expect(await page.textContent("#status")).toMatch(/Teaching needs an API key: paste the one `npm start` printed/);
    expect((await worker.fetch("/v1/classifiers/playground-lenet")).status).toBe(404); // nothing was created
    await page.reload(); // a fresh page: no examples waiting
    await page.waitForSelector("body[data-ready=true]");
  });

  it("teaches a classifier through the UI: a new label, and the version goes up", async () => {
    await page.selectOption("#model", "lenet");
    await page.fill("#api-key", TEST_API_KEY);
    await page.fill("#classifier", "ui-sevens");
    for (const i of [0, 17, 26]) {
      // three held-out sevens, taught as a new class
      expect(mnistTest(30).labels[i]).toBe(7);
      await page.setInputFiles("#file", { name: `seven-${i}.png`, mimeType: "image/png", buffer: await digitPng(i) });
      await page.fill("#label", "seven (mine)");
      await page.click("#add-example");
    }
    await page.click("#teach");
    await page.waitForSelector("#classifier-result:not([hidden])", { timeout: 60_000 });
    expect(await page.getAttribute("#classifier-version", "data-version")).toBe("2");
    expect(await page.textContent("#classifier-version")).toMatch(/version 2 \(was 1\), labels 0, 1, .*, 9, seven \(mine\)/);
    expect(await page.getAttribute("#classifier-result", "data-top")).toBe("seven (mine)");

    // The API agrees with the page.
    const described = (await (await worker.fetch("/v1/classifiers/ui-sevens")).json()) as { version: number; examples: number; labels: string[] };
    expect(described).toMatchObject({ version: 2, examples: 3 });
    expect(described.labels).toContain("seven (mine)");

    // The comparison panel filled too, for the screenshot.
    await page.selectOption("#provider", "webgpu");
    await page.click("#classify");
    await page.waitForSelector("#agreement[data-max-difference]", { timeout: 60_000 });
    mkdirSync(join(ROOT, "test", ".build"), { recursive: true });
    await page.screenshot({ path: join(ROOT, "test", ".build", "playground.png"), fullPage: true });
  });
});

describe("the engine in the page: WebGPU against WASM", () => {
  it("runs every servable model on both providers with the same logits", async () => {
    const ids = await page.$$eval("#model option", (options) => options.map((option) => (option as HTMLOptionElement).value));
    const digitBytes = [...(await digitPng(1))];
    const photoBytes = [...(await cifarPng(5))];
    for (const id of ids) {
      const bytes = id === "lenet" || id === "my-digits" ? digitBytes : photoBytes;
      const [gpu, wasm, auto] = await page.evaluate(
        async ({ id, bytes }) => {
          const image = new Blob([new Uint8Array(bytes)], { type: "image/png" });
          const { classifyInBrowser } = (globalThis as unknown as { cnnEdge: { classifyInBrowser: Function } }).cnnEdge;
          return [await classifyInBrowser(id, "webgpu", image), await classifyInBrowser(id, "wasm", image), await classifyInBrowser(id, "auto", image)];
        },
        { id, bytes },
      );
      const difference = maxDifference(gpu.logits, wasm.logits);
      console.log(`${id}: webgpu ${gpu.inferenceMs.toFixed(1)} ms, wasm ${wasm.inferenceMs.toFixed(1)} ms (first run each), max |Δ logit| ${difference.toExponential(2)}`);
      expect([gpu.provider, wasm.provider]).toEqual(["webgpu", "wasm"]);
      expect(auto.provider).toBe("wasm"); // SwiftShader is a fallback (CPU) adapter, which "auto" passes over
      expect(gpu.predictions[0].label).toBe(wasm.predictions[0].label);
      // A graph that computes in integers may round a tie the other way on another provider (measured 2.9e-3).
      const manifest = (await (await worker.fetch(`/v1/models/${id}`)).json()) as ModelManifest; // built-in or registered
      expect(difference).toBeLessThan(computesInIntegers(manifest) ? 2e-2 : 1e-3);
    }
  });
});
