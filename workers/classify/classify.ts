/** Classifying a batch of uploaded images with one served model. */
import { decodeImage } from "../images/decode";
import { toModelInput } from "../images/preprocess";
import { isWarm, sessionFor } from "../inference/onnx-session";
import { topK, type Prediction } from "../inference/topk";
import type { OutputName, ServedModel } from "../models/manifest";
import type { ClassifyOptions } from "./options";
import type { UploadedImage } from "./request";

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

/**
 * Decode and preprocess every image, then classify them together in batched model runs.
 *
 * @example
 * const response = await classify(getModel("lenet"), await readImages(request), { topK: 5, include: [] }, env.MODELS);
 */
export async function classify(
  model: ServedModel,
  images: UploadedImage[],
  options: ClassifyOptions,
  bucket: R2Bucket | undefined,
): Promise<ClassifyResponse> {
  const { manifest } = model;
  const coldStart = !isWarm(model);
  const session = sessionFor(model, bucket); // starts a cold session while the images decode

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
