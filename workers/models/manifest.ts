/** The manifest that sits beside every model artifact in models/<id>/<version>/manifest.json. */
import type { InputSpec } from "../images/preprocess";
import type { AdmissionPolicy } from "../admission/policy";
import type { BatchingPolicy } from "../inference/dynamic-batcher";
import type { ServingSection } from "../inference/memory-budget";

export interface ModelManifest {
  id: string;
  version: number;
  name: string;
  architecture: { name: string; summary: string; flipAverage?: boolean; options?: Record<string, unknown> };
  dataset: string;
  task: "image-classification";
  labels: string[];
  /** `mirrorable`: trained on horizontally mirrored images too, so a mirror pass can be averaged in (workers/classify/flip-average.ts). */
  input: InputSpec & { layout: "NCHW"; colorSpace: "grayscale" | "rgb"; polarity?: string; mirrorable?: boolean; fixedBatch?: number };
  embeddingSize: number;
  parameters: number;
  metrics: Record<string, string | number>;
  training: Record<string, unknown>;
  artifact: {
    file: string;
    format: "onnx";
    opset: number;
    bytes: number;
    sha256: string;
    inputName: string;
    outputs: { embedding: string; logits: string };
    producer: string;
  };
  /** What serving it costs, measured in a fresh runtime (workers/inference/memory-budget.ts, servingSection). */
  serving: ServingSection;
  quantization?: { scheme: string; method: string; layers: Record<string, number>; from: string; fp32Bytes: number };
  /**
   * A model brought from elsewhere (scripts/add-model.ts): the graph's own interface, which the
   * adapter steps at the front of the served graph turn the standard NCHW float input into.
   */
  imported?: {
    from: string;
    sha256: string;
    graphInput: { name: string; dtype: "float32" | "uint8"; shape: (number | string)[]; layout: "NCHW" | "NHWC"; channelOrder: "rgb" | "bgr" };
    graphOutput: { name: string; kind: string };
    adapter: string[];
    removed: string[];
    preset: string;
  };
  /** head.bin: the trained head and replay exemplars a copied classifier starts from (servable models). */
  head?: { file: string; bytes: number; sha256: string; classes: number; embeddingSize: number; exemplarsPerClass: number; exemplars: string; layout: string };
  exportedAt: string;
}

/** The graph outputs every exported model has. */
export type OutputName = keyof ModelManifest["artifact"]["outputs"];

/**
 * Where a model's ONNX bytes come from: bundled with the Worker (small models, no fetch on a
 * cold start) or the R2 bucket bound as MODELS (anything larger than a bundle can carry).
 */
export type ArtifactSource = { kind: "bundle"; bytes: ArrayBuffer } | { kind: "r2"; key: string };

/**
 * How a model is served, whatever its version: models/<id>/config.json (optional, like
 * Triton's config.pbtxt beside the version folders).
 */
export interface ModelConfig {
  dynamicBatching?: Partial<BatchingPolicy>;
  /** How many images may wait for it and how long, before requests are refused (workers/admission/policy.ts). */
  admission?: Partial<AdmissionPolicy>;
  /** Whether a request that does not say runs the mirror pass too (mirrorable models; default true). */
  flipAverage?: boolean;
}

/** A model the Worker serves: its manifest, its config and where its artifact and its head are. */
export interface ServedModel {
  manifest: ModelManifest;
  config?: ModelConfig;
  source: ArtifactSource;
  head?: ArtifactSource;
}
