/**
 * A model brought from elsewhere, made servable: its ONNX bytes rewritten to the served graph
 * (onnx/served-graph.ts) and its manifest written from the graph and the user's settings. One
 * pipeline for both ways in: `npm run models:add` (scripts/add-model.ts, which bundles this
 * file for Node) and POST /v1/models (registration.ts). What each adds after it, the serving
 * memory and head.bin, they measure and write the same way too.
 */
import type { ModelManifest } from "../models/manifest";
import { sha256Hex as sha256 } from "../models/sha256";
import { readModel } from "./onnx/model";
import { ImportRefusedError, servedGraph, type ServedGraph } from "./onnx/served-graph";

/** Input settings a model trained on a well-known data set was most likely trained with. */
export const PRESETS = {
  imagenet: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], resize: "shorter-side", shorterSideRatio: 256 / 224, dataset: "unknown" },
  cifar10: { mean: [0.4914, 0.4821, 0.4466], std: [0.2454, 0.243, 0.2608], resize: "center-crop", shorterSideRatio: 1, dataset: "CIFAR-10" },
  mnist: { mean: [0.1307], std: [0.3081], resize: "stretch", shorterSideRatio: 1, dataset: "MNIST" },
} as const;

export type Preset = keyof typeof PRESETS;
export const RESIZE_POLICIES = ["shorter-side", "center-crop", "stretch"] as const;

/** Model ids: 1-64 lower-case letters, digits and dashes, as classifier ids. */
export const MODEL_ID = /^[a-z0-9][a-z0-9-]{0,63}$/;

/** What the user says about the model; everything else is read from the graph. */
export interface ImportSettings {
  id: string;
  labels: string[];
  /** The file's name as the user has it (recorded in the manifest). */
  fileName: string;
  preset?: Preset;
  layout?: "NCHW" | "NHWC";
  channelOrder?: "rgb" | "bgr";
  height?: number;
  width?: number;
  mean?: number[];
  std?: number[];
  scale?: number;
  resize?: (typeof RESIZE_POLICIES)[number];
  shorterSide?: number;
  mirrorable?: boolean;
  output?: string;
  name?: string;
  dataset?: string;
}

/** The served graph, its head's weights as head.bin begins them, and the manifest but for what is measured later. */
export interface ImportedModel {
  served: ServedGraph;
  manifest: Omit<ModelManifest, "version" | "serving" | "head">;
  /** float32 little-endian: weight [classes, embeddingSize], then bias [classes]. */
  headWeights: Uint8Array<ArrayBuffer>;
}

/**
 * Check settings that the graph does not decide: the id and the labels.
 *
 * @throws ImportRefusedError with what is wrong
 * @example
 * checkLabels(["cat", "dog"]);
 */
export function checkLabels(labels: string[]): string[] {
  if (!labels.length || labels.some((label) => typeof label !== "string" || !label.trim())) throw new ImportRefusedError("labels: none, or an empty one");
  const trimmed = labels.map((label) => label.trim());
  if (new Set(trimmed).size !== trimmed.length) throw new ImportRefusedError("labels repeat");
  return trimmed;
}

/**
 * Labels from a labels file's text: one per line, or a JSON array.
 *
 * @throws ImportRefusedError on none, an empty one, or repeats
 * @example
 * parseLabels("cat\ndog\n"); // ["cat", "dog"]
 */
export function parseLabels(text: string): string[] {
  if (text.trimStart().startsWith("[")) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new ImportRefusedError("labels: the text starts with '[' but is not a JSON array");
    }
    if (!Array.isArray(parsed) || parsed.some((label) => typeof label !== "string")) throw new ImportRefusedError("labels: the JSON is not an array of strings");
    return checkLabels(parsed as string[]);
  }
  return checkLabels(text.split(/\r?\n/).filter((line) => line.trim()));
}


/**
 * Read `bytes` as an ONNX classifier, rewrite it to the served graph and write its manifest.
 *
 * @throws ImportRefusedError when it cannot be served (not ONNX, no single image input, no linear head, settings that do not fit)
 * @example
 * const { served, manifest, headWeights } = await importModel(bytes, { id: "pets", labels, fileName: "pets.onnx", preset: "imagenet" });
 */
export async function importModel(bytes: Uint8Array<ArrayBuffer>, settings: ImportSettings, producer: string): Promise<ImportedModel> {
  if (!MODEL_ID.test(settings.id)) throw new ImportRefusedError(`id '${settings.id}': use 1-64 lower-case letters, digits and dashes`);
  const labels = checkLabels(settings.labels);
  let model;
  try {
    model = readModel(bytes);
  } catch (error) {
    throw new ImportRefusedError(`${settings.fileName}: ${(error as Error).message}`);
  }
  const served = servedGraph(model, settings);
  if (served.classes !== labels.length) throw new ImportRefusedError(`the model scores ${served.classes} classes, the labels name ${labels.length}`);
  const preset = PRESETS[settings.preset ?? "imagenet"];
  const { channels } = served;
  if (channels === 1 && preset.mean.length === 3 && !settings.mean) throw new ImportRefusedError("the model reads 1 channel: use preset mnist, or give mean and std for grayscale");
  // A uint8 graph standardises its pixels itself: it is fed whole levels, 0..255.
  const uint8 = served.facts.dtype === "uint8";
  const mean = settings.mean ?? (uint8 ? Array<number>(channels).fill(0) : [...preset.mean]);
  const std = settings.std ?? (uint8 ? Array<number>(channels).fill(1) : [...preset.std]);
  const scale = settings.scale ?? (uint8 ? 1 : 1 / 255);
  if (mean.length !== channels || std.length !== channels || mean.some((m) => !Number.isFinite(m)) || std.some((s) => !(s > 0))) {
    throw new ImportRefusedError(`mean and std need ${channels} numbers each (std above 0), not ${mean} and ${std}`);
  }
  if (!(scale > 0) || !Number.isFinite(scale)) throw new ImportRefusedError(`scale must be a number above 0, not ${scale}`);
  const resize = settings.resize ?? preset.resize;
  const shorterSide = resize === "shorter-side" ? (settings.shorterSide ?? Math.round(Math.min(served.height, served.width) * preset.shorterSideRatio)) : undefined;
  if (shorterSide !== undefined && shorterSide < Math.min(served.height, served.width)) {
    throw new ImportRefusedError(`shorter side ${shorterSide} is below the input's ${Math.min(served.height, served.width)}: the centre crop would not fit`);
  }
  const stem = settings.fileName.replace(/\.[^.]*$/, "");
  const manifest: ImportedModel["manifest"] = {
    id: settings.id,
    name: settings.name ?? `${stem} (imported)`,
    architecture: { name: "imported", summary: `ONNX graph brought by its user: ${served.facts.operators.join(", ")}` },
    dataset: settings.dataset ?? preset.dataset,
    task: "image-classification",
    labels,
    input: {
      layout: "NCHW", channels, colorSpace: channels === 1 ? "grayscale" : "rgb", height: served.height, width: served.width,
      scale, mean, std, resize, ...(shorterSide ? { shorterSide } : {}), mirrorable: settings.mirrorable ?? false,
      ...(served.fixedBatch ? { fixedBatch: served.fixedBatch } : {}),
    } as ModelManifest["input"],
    embeddingSize: served.embeddingSize,
    parameters: served.parameters,
    metrics: {},
    training: { imported: true },
    imported: {
      from: settings.fileName,
      sha256: await sha256(bytes),
      graphInput: { name: served.facts.inputName, dtype: served.facts.dtype, shape: served.facts.shape, layout: served.layout, channelOrder: settings.channelOrder ?? "rgb" },
      graphOutput: { name: served.facts.outputName, kind: served.facts.outputKind },
      adapter: served.adapter,
      removed: served.removed,
      preset: settings.preset ?? "imagenet",
    },
    artifact: {
      file: "model.onnx", format: "onnx", opset: served.facts.opset, bytes: served.bytes.byteLength, sha256: await sha256(served.bytes),
      inputName: served.inputName, outputs: { embedding: "embedding", logits: "logits" }, producer,
    },
    exportedAt: new Date().toISOString(),
  };
  const headWeights = new Uint8Array(4 * (served.weight.length + served.bias.length));
  const floats = new Float32Array(headWeights.buffer);
  floats.set(served.weight);
  floats.set(served.bias, served.weight.length);
  return { served, manifest, headWeights };
}

/**
 * head.bin and the manifest's `head` section: the head's weights, then the replay exemplars'
 * embeddings (none, or `perClass` of every label, class-major), as scripts/training/head.py lays it out.
 *
 * @example
 * const { bytes, section } = await headFile(headWeights, labels.length, 1280, { perClass: 0, embeddings: new Float32Array(0), source: "none" });
 */
export async function headFile(
  headWeights: Uint8Array,
  classes: number,
  embeddingSize: number,
  exemplars: { perClass: number; embeddings: Float32Array; source: string },
): Promise<{ bytes: Uint8Array<ArrayBuffer>; section: NonNullable<ModelManifest["head"]> }> {
  const bytes = new Uint8Array(headWeights.byteLength + exemplars.embeddings.byteLength);
  bytes.set(headWeights);
  bytes.set(new Uint8Array(exemplars.embeddings.buffer, exemplars.embeddings.byteOffset, exemplars.embeddings.byteLength), headWeights.byteLength);
  return {
    bytes,
    section: {
      file: "head.bin", bytes: bytes.byteLength, sha256: await sha256(bytes), classes, embeddingSize, exemplarsPerClass: exemplars.perClass, exemplars: exemplars.source,
      layout: "float32 little-endian: weight [classes, embeddingSize], bias [classes], exemplar embeddings [classes * exemplarsPerClass, embeddingSize], class-major",
    },
  };
}
