/** Classifying a batch of uploaded images with one served model, or with a classifier's head over it. */
import type { Head } from "../classifiers/head";
import { headLogits } from "../classifiers/head";
import { decodeImage } from "../images/decode";
import { toModelInput } from "../images/preprocess";
import { isWarm, sessionFor, type InferenceResult } from "../inference/onnx-session";
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

export interface Timing {
  decodeMs: number;
  inferenceMs: number;
  coldStart: boolean;
}

export interface ClassifyResponse {
  model: { id: string; version: number };
  classifier?: { id: string; version: number };
  results: ImageResult[];
  timing: Timing;
}

/** A classifier's head to use in place of the model's own. */
export interface ClassifierHead {
  id: string;
  version: number;
  head: Head;
}

/**
 * Decode and preprocess every image, then run the model over them in batched runs, returning
 * the outputs asked for.
 *
 * @example
 * const { outputs } = await runModel(getModel("lenet"), images, ["embedding"], env.MODELS);
 */
export async function runModel(
  model: ServedModel,
  images: UploadedImage[],
  names: readonly OutputName[],
  bucket: R2Bucket | undefined,
): Promise<InferenceResult & { timing: Timing }> {
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
  const result = await (await session).run(batch, images.length, names);
  const inferenceMs = performance.now() - inferenceStart;
  return { ...result, timing: { decodeMs: round(decodeMs), inferenceMs: round(inferenceMs), coldStart } };
}

/**
 * Classify images with a model's own head, or with a classifier's head over its embedding.
 *
 * @example
 * const response = await classify(getModel("lenet"), await readImages(request), { topK: 5, include: [] }, env.MODELS);
 */
export async function classify(
  model: ServedModel,
  images: UploadedImage[],
  options: ClassifyOptions,
  bucket: R2Bucket | undefined,
  classifier?: ClassifierHead,
): Promise<ClassifyResponse> {
  const { manifest } = model;
  const names = new Set<OutputName>([classifier ? "embedding" : "logits", ...options.include]);
  if (classifier) names.delete("logits");
  const { outputs, sizes, timing } = await runModel(model, images, [...names], bucket);
  if (classifier) {
    outputs.logits = headLogits(classifier.head, outputs.embedding!);
    sizes.logits = classifier.head.labels.length;
  }
  const labels = classifier ? classifier.head.labels : manifest.labels;

  const row = (name: OutputName, i: number) => outputs[name]!.subarray(i * sizes[name]!, (i + 1) * sizes[name]!);
  return {
    model: { id: manifest.id, version: manifest.version },
    ...(classifier ? { classifier: { id: classifier.id, version: classifier.version } } : {}),
    results: images.map((image, i) => ({
      image: image.name,
      format: image.header.format,
      width: image.header.width,
      height: image.header.height,
      predictions: topK(row("logits", i), labels, options.topK),
      ...Object.fromEntries(options.include.map((name) => [name, Array.from(row(name, i))])),
    })),
    timing,
  };
}

export function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
