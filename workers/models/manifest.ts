/** The manifest that sits beside every model artifact in models/<id>/<version>/manifest.json. */
import type { InputSpec } from "../images/preprocess";

export interface ModelManifest {
  id: string;
  version: number;
  name: string;
  architecture: { name: string; summary: string };
  dataset: string;
  task: "image-classification";
  labels: string[];
  input: InputSpec & { layout: "NCHW"; colorSpace: "grayscale" | "rgb"; polarity?: string };
  embeddingSize: number;
  parameters: number;
  metrics: Record<string, string | number>;
  training: Record<string, string | number | boolean>;
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
  exportedAt: string;
}

/** A model the Worker serves: its manifest and the ONNX bytes bundled with the Worker. */
export interface ServedModel {
  manifest: ModelManifest;
  onnx: ArrayBuffer;
}
