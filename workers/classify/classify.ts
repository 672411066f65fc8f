/** Classifying a batch of uploaded images with one served model. */
import { decodeImage } from "../images/decode";
import { toModelInput } from "../images/preprocess";
import { isWarm, sessionFor, type OutputName } from "../inference/onnx-session";
import { topK, type Prediction } from "../inference/topk";
import type { ServedModel } from "../models/manifest";
import { InvalidParameterError } from "../problems/problems";
import type { UploadedImage } from "./request";

export interface ClassifyOptions {
  topK: number;
  /** Raw outputs to return beside the predictions. */
  include: OutputName[];
}

export interface ImageResult {
  image: string;
  format: string;
  width: number;
  height: number;
  predictions: Prediction[];
  logits?: number[];
  embedding?: number[];
}

export interface ClassifyResponse {
  model: { id: string; version: number };
  results: ImageResult[];
  timing: { decodeMs: number; inferenceMs: number; coldStart: boolean };
}

const INCLUDABLE: readonly OutputName[] = ["logits", "embedding"];

/**
 * Parse ?top_k= and ?include= (a comma list of logits, embedding).
 *
 * @example
 * classifyOptions({ top_k: "3", include: "logits" }); // { topK: 3, include: ["logits"] }
 */
export function classifyOptions(query: Record<string, string | undefined>): ClassifyOptions {
  let k = 5;
  if (query.top_k !== undefined) {
    if (!/^\d+$/.test(query.top_k) || Number(query.top_k) < 1) {
      throw new InvalidParameterError("top_k", `top_k must be a positive integer, not '${query.top_k}'.`);
    }
    k = Number(query.top_k);
  }
  const include = (query.include ?? "").split(",").filter(Boolean);
  for (const name of include) {
    if (!(INCLUDABLE as string[]).includes(name)) {
      throw new InvalidParameterError("include", `include takes ${INCLUDABLE.join(", ")}, not '${name}'.`);
    }
  }
  return { topK: k, include: include as OutputName[] };
}

/**
 * Decode, preprocess and classify every image in one batched run of the model.
 *
 * @example
 * const response = await classify(getModel("lenet"), await readImages(request), { topK: 5, include: [] });
 */
export async function classify(model: ServedModel, images: UploadedImage[], options: ClassifyOptions): Promise<ClassifyResponse> {
  const { manifest } = model;
  const coldStart = !isWarm(model);
  const session = sessionFor(model); // starts a cold session while the images decode

  const decodeStart = performance.now();
  const { channels, height, width } = manifest.input;
  const size = channels * height * width;
  const batch = new Float32Array(images.length * size);
  for (const [i, image] of images.entries()) {
    batch.set(toModelInput(await decodeImage(image.bytes, image.header), manifest.input), i * size);
  }
  const decodeMs = performance.now() - decodeStart;

  const inferenceStart = performance.now();
  const { outputs, sizes } = await (await session).run(batch, images.length, [...new Set<OutputName>(["logits", ...options.include])]);
  const inferenceMs = performance.now() - inferenceStart;

  const rows = (name: OutputName, i: number) => Array.from(outputs[name]!.subarray(i * sizes[name]!, (i + 1) * sizes[name]!));
  return {
    model: { id: manifest.id, version: manifest.version },
    results: images.map((image, i) => ({
      image: image.name,
      format: image.header.format,
      width: image.header.width,
      height: image.header.height,
      predictions: topK(outputs.logits!.subarray(i * sizes.logits!, (i + 1) * sizes.logits!), manifest.labels, options.topK),
      ...Object.fromEntries(options.include.map((name) => [name, rows(name, i)])),
    })),
    timing: { decodeMs: round(decodeMs), inferenceMs: round(inferenceMs), coldStart },
  };
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
