/**
 * The engine's host in a browser: onnxruntime-web's WebGPU build, which also runs WASM SIMD.
 *
 * Its runtime (26.8 MB of WASM) is served as static assets in parts, because Workers Static
 * Assets take files of at most 25 MiB; the parts are joined here and handed to ORT as bytes.
 * runtime.json (written by scripts/build-playground.ts) lists them with their sha256.
 */
import * as ort from "onnxruntime-web/webgpu";
import { sha256Hex } from "../models/sha256";
import { InferenceEngine } from "./engine";

/** What scripts/build-playground.ts wrote beside the runtime's parts. */
export interface RuntimeManifest {
  file: string;
  bytes: number;
  sha256: string;
  parts: string[];
}

async function fetchOk(url: string): Promise<Response> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
  return response;
}

async function loadRuntime(base: string): Promise<Uint8Array<ArrayBuffer>> {
  const manifest = (await (await fetchOk(`${base}runtime.json`)).json()) as RuntimeManifest;
  const parts = await Promise.all(manifest.parts.map(async (part) => new Uint8Array(await (await fetchOk(`${base}${part}`)).arrayBuffer())));
  const bytes = new Uint8Array(manifest.bytes);
  let offset = 0;
  for (const part of parts) {
    bytes.set(part, offset);
    offset += part.length;
  }
  if (offset !== manifest.bytes || (await sha256Hex(bytes)) !== manifest.sha256) throw new Error(`The runtime at ${base} does not match runtime.json`);
  return bytes;
}

/**
 * The page's engine, with ORT's runtime loaded from `base` (the folder of runtime.json).
 *
 * @example
 * const engine = await browserEngine("/ort/");
 * const session = await engine.createSession(bytes, manifest, "auto");
 */
export async function browserEngine(base: string): Promise<InferenceEngine> {
  ort.env.wasm.wasmBinary = await loadRuntime(base);
  ort.env.logLevel = "error";
  return new InferenceEngine({ name: "browser", ort, gpu: navigator.gpu });
}
