/**
 * Debian's Chromium (apt package `chromium`), driven by playwright-core, with WebGPU on
 * SwiftShader: a real browser's WebGPU stack running on the CPU, so CI machines without a GPU
 * test the WebGPU path too.
 */
import { existsSync } from "node:fs";
import { chromium, type Browser, type Page } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

const FLAGS = [
  "--no-sandbox", // CI runs as root
  "--no-first-run",
  // The machine is offline: Chromium's own background connections would only fail.
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  // WebGPU on SwiftShader's Vulkan.
  "--enable-unsafe-webgpu",
  "--enable-features=Vulkan",
  "--use-vulkan=swiftshader",
  "--use-webgpu-adapter=swiftshader",
  "--enable-unsafe-swiftshader",
];

/** Headless Chromium with WebGPU. */
export function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`No Chromium at ${CHROMIUM}: install Debian's chromium package (.ci/run does) or set $CHROMIUM.`);
  return chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
}

/** The playground page served at `base`, once it has loaded the model list. */
export async function openPlayground(browser: Browser, base: URL | string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 960 } });
  await page.goto(new URL("/", base).href);
  await page.waitForSelector("body[data-ready=true]");
  return page;
}
