/** Classifying a batch of uploaded images with one served model, or with a classifier's head over it. */
import type { Head } from "../classifiers/head";
import { headLogits } from "../classifiers/head";
import { admitToModel } from "../admission/model-admission";
import { decodeBytes, decodeImage } from "../images/decode";
import { averageMirrors, flipAverageFor, withMirrors } from "./flip-average";
import { TRANSLATE_VIEWS, averageTranslations, translateAverageFor, withTranslations } from "./translate-average";
import { toModelInput, type InputSpec } from "../images/preprocess";
import type { ServingContext } from "../env";
import type { ExecutionProvider, InferenceResult, ProviderPreference } from "../engine/engine";
import { batchingPolicy } from "../inference/dynamic-batcher";
import { residentModel, type ResidentModel, type SessionStartup } from "../inference/onnx-session";
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
  /** The execution provider the model ran on (workers/engine). */
  provider: ExecutionProvider;
  decodeMs: number;
  /** Waiting for the batch to start (other requests' images to arrive, or the batch before to finish). */
  queueMs: number;
  /** The model run of the batch these images ran in. */
  inferenceMs: number;
  /** The batch: its images (mirror images included) and requests, this one's included. */
  batch: { images: number; requests: number };
  /** Whether each image's mirror ran too and the answer is the mean of both (workers/classify/flip-average.ts). */
  flipAverage: boolean;
  /** Whether the one-pixel shifts ran too, six views in all (workers/classify/translate-average.ts). */
  translateAverage: boolean;
  coldStart: boolean;
  /** On a cold start: fetching and checking the artifact, and ORT creating the session (or that the isolate created it as it started). */
  startup?: SessionStartup;
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
 * How small a decoder may make an image for this input: 4x its size per side, so that the
 * preprocessing's box filter still averages several source pixels into each input pixel.
 */
const decodeHint = (input: InputSpec) => ({ width: 4 * input.width, height: 4 * input.height });

/** How a model run goes: on which provider, with the mirror pass or without (flipAverageFor), with the shifted views or without (translateAverageFor). */
export interface RunOptions {
  provider: ProviderPreference;
  flipAverage: boolean;
  translateAverage?: boolean;
}

/**
 * Decode and preprocess every image, then run the model over them, batched with concurrent
 * requests for the same model, returning the outputs asked for. Pass the images while their
 * body is still being read: the request is announced to the batcher first, so that a batch
 * about to start waits for it (and a cold session loads meanwhile).
 *
 * @throws ProviderUnavailableError when `provider` forces one this host lacks
 * @example
 * const { outputs } = await runModel(getModel("lenet"), readImages(request), ["logits"], { provider: "auto", flipAverage: false }, { env, waitUntil: (p) => ctx.waitUntil(p) });
 */
export async function runModel(
  model: ServedModel,
  images: UploadedImage[] | Promise<UploadedImage[]>,
  names: readonly OutputName[],
  options: RunOptions,
  serving: ServingContext,
): Promise<InferenceResult & { timing: Timing }> {
  const run = runAnnounced(model, images, names, options, serving);
  serving.waitUntil(run.catch(() => undefined));
  return run;
}

async function runAnnounced(
  model: ServedModel,
  images: UploadedImage[] | Promise<UploadedImage[]>,
  names: readonly OutputName[],
  { provider, flipAverage, translateAverage = false }: RunOptions,
  { env, waitUntil, admission }: ServingContext,
): Promise<InferenceResult & { timing: Timing }> {
  const { manifest } = model;
  // A route that read its body first (fine-tuning) is admitted to its model here; classify routes did before reading.
  if (admission && !admission.model) admitToModel(admission, model);
  const policy = batchingPolicy(model.config?.dynamicBatching, env.DYNAMIC_BATCHING);
  const { resident, coldStart } = residentModel(model, env.MODELS, policy, provider, waitUntil);
  if (!resident.startup) admission?.modelIsCold();
  const slot = resident.batcher.expect(waitUntil);

  // The graph of a first CIFAR-10 export averages the mirror itself (flipAverageFor): nothing to add.
  const mirrored = flipAverage && !manifest.architecture.flipAverage;
  const views = translateAverage ? TRANSLATE_VIEWS : mirrored ? 2 : 1;
  const { channels, height, width } = manifest.input;
  const size = channels * height * width;
  let input: Float32Array;
  let count: number;
  let decodeMs: number;
  try {
    const uploaded = await images;
    count = uploaded.length;
    admission?.ready(uploaded.map((image) => ({ bytes: image.bytes.byteLength, format: image.header.format })), views);
    // Work that can no longer be answered in time is dropped before its decoding, the costly part.
    const overdue = admission?.overdue();
    if (overdue) throw overdue;
    const decodeStart = performance.now();
    // The decoded input, and the batch of its views beside it where there are several.
    const inputBytes = count * size * 4 * (views > 1 ? views + 1 : 1);
    admission?.hold(inputBytes);
    input = new Float32Array(count * size);
    const hint = decodeHint(manifest.input);
    for (const [i, image] of uploaded.entries()) {
      const buffers = decodeBytes(image.header, hint);
      admission?.hold(buffers);
      const started = performance.now();
      input.set(toModelInput(await decodeImage(image.bytes, image.header, hint), manifest.input), i * size);
      admission?.decoded({ bytes: image.bytes.byteLength, format: image.header.format }, performance.now() - started);
      admission?.free(buffers);
    }
    admission?.decodingDone();
    decodeMs = performance.now() - decodeStart;
  } catch (error) {
    slot.cancel();
    throw error;
  }

  const run = translateAverage ? withTranslations(input, count, manifest.input) : mirrored ? withMirrors(input, count, manifest.input) : input;
  const { outputs, sizes, batch } = await slot.submit(run, views * count, names, admission);
  admission?.ran(batch.images, batch.inferenceMs);
  const average = translateAverage ? averageTranslations : mirrored ? averageMirrors : undefined;
  if (average) for (const name of names) outputs[name] = average(outputs[name]!, count, sizes[name]!);
  return {
    outputs,
    sizes,
    timing: {
      provider: (await resident.session).provider,
      decodeMs: round(decodeMs),
      queueMs: round(batch.queueMs),
      inferenceMs: round(batch.inferenceMs),
      batch: { images: batch.images, requests: batch.requests },
      flipAverage,
      translateAverage,
      coldStart,
      ...(coldStart ? { startup: startupTiming(resident) } : {}),
    },
  };
}

/**
 * Classify images with a model's own head, or with a classifier's head over its embedding.
 *
 * @example
 * const response = await classify(getModel("lenet"), readImages(request), { topK: 5, include: [] }, servingContext(c));
 */
export async function classify(
  model: ServedModel,
  images: UploadedImage[] | Promise<UploadedImage[]>,
  options: ClassifyOptions,
  serving: ServingContext,
  classifier?: ClassifierHead,
): Promise<ClassifyResponse> {
  const { manifest } = model;
  const names = new Set<OutputName>([classifier ? "embedding" : "logits", ...options.include]);
  if (classifier) names.delete("logits");
  const flipAverage = flipAverageFor(model, options.flipAverage);
  const run = { provider: options.provider, flipAverage, translateAverage: translateAverageFor(model, options.translateAverage, flipAverage) };
  const { outputs, sizes, timing } = await runModel(model, images, [...names], run, serving);
  const uploaded = await images;
  if (classifier) {
    outputs.logits = headLogits(classifier.head, outputs.embedding!);
    sizes.logits = classifier.head.labels.length;
  }
  const labels = classifier ? classifier.head.labels : manifest.labels;

  const row = (name: OutputName, i: number) => outputs[name]!.subarray(i * sizes[name]!, (i + 1) * sizes[name]!);
  return {
    model: { id: manifest.id, version: manifest.version },
    ...(classifier ? { classifier: { id: classifier.id, version: classifier.version } } : {}),
    results: uploaded.map((image, i) => ({
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

function startupTiming({ startup }: ResidentModel): Timing["startup"] {
  return startup && { ...startup, loadMs: round(startup.loadMs), createMs: round(startup.createMs) };
}

export function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
