/** The playground's calls to the cnn-edge API, with problem+json bodies turned into errors. */
import type { ClassifyResponse } from "../../classify/classify";
import type { ModelManifest } from "../../models/manifest";
import { sha256Hex } from "../../models/sha256";

/** A model as GET /v1/models lists it. */
export interface ModelSummary {
  id: string;
  version: number;
  name: string;
  /** built-in: deployed from models/; registered: through POST /v1/models. */
  source: "built-in" | "registered";
  dataset: string;
  servable: boolean;
  input: { channels: number; height: number; width: number };
  /** Whether a request that does not say averages in the mirror image (workers/classify/flip-average.ts). */
  flipAverage: boolean;
}

export interface ClassifierInfo {
  id: string;
  backbone: { id: string; version: number };
  version: number;
  labels: string[];
  examples: number;
}

/** A refusal from the API: its problem's title and detail. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly slug: string,
    detail: string,
  ) {
    super(detail);
    this.name = "ApiError";
  }
}

/**
 * The API of the server that served the page, with an optional API key.
 *
 * @example
 * const api = new Api(() => keyInput.value);
 * const { models } = await api.models();
 */
export class Api {
  constructor(private readonly apiKey: () => string) {}

  private async call<T>(path: string, init: RequestInit = {}): Promise<T> {
    const headers = new Headers(init.headers);
    const key = this.apiKey().trim();
    if (key) headers.set("authorization", `Bearer ${key}`);
    const response = await fetch(path, { ...init, headers });
    if (!response.ok) {
      const problem = (await response.json().catch(() => ({}))) as { type?: string; title?: string; detail?: string };
      throw new ApiError(response.status, problem.type?.split("/").pop() ?? "", problem.detail ?? problem.title ?? `${response.status} ${response.statusText}`);
    }
    return (path.endsWith(".onnx") ? new Uint8Array(await response.arrayBuffer()) : await response.json()) as T;
  }

  health(): Promise<{ engine: { host: string; webgpu: { available: boolean; reason?: string } } }> {
    return this.call("/healthz");
  }

  models(): Promise<{ default: string; models: ModelSummary[] }> {
    return this.call("/v1/models");
  }

  manifest(id: string): Promise<ModelManifest> {
    return this.call(`/v1/models/${encodeURIComponent(id)}`);
  }

  /** The model's ONNX bytes, checked against its manifest's sha256. */
  async artifact(manifest: ModelManifest): Promise<Uint8Array<ArrayBuffer>> {
    const bytes = await this.call<Uint8Array<ArrayBuffer>>(`/v1/models/${encodeURIComponent(manifest.id)}/model.onnx`);
    if ((await sha256Hex(bytes)) !== manifest.artifact.sha256) throw new Error(`The ONNX file of ${manifest.id} does not match its manifest's sha256.`);
    return bytes;
  }

  /** Classify with a model, or with a classifier when `classifier` is given; logits included; flip_average as given, else the model's default. */
  classify(image: Blob, target: { model: string } | { classifier: string }, flipAverage?: boolean): Promise<ClassifyResponse & { results: { logits: number[] }[] }> {
    const path = "model" in target ? `/v1/models/${encodeURIComponent(target.model)}/classify` : `/v1/classifiers/${encodeURIComponent(target.classifier)}/classify`;
    const flip = flipAverage === undefined ? "" : `&flip_average=${flipAverage}`;
    return this.call(`${path}?top_k=5&include=logits${flip}`, { method: "POST", headers: { "content-type": image.type || "application/octet-stream" }, body: image });
  }

  /** The classifier, or undefined when there is none by that id. */
  async classifier(id: string): Promise<ClassifierInfo | undefined> {
    try {
      return await this.call<ClassifierInfo>(`/v1/classifiers/${encodeURIComponent(id)}`);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return undefined;
      throw error;
    }
  }

  createClassifier(id: string, backbone: string): Promise<ClassifierInfo> {
    return this.call("/v1/classifiers", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ id, backbone, init: "pretrained" }),
    });
  }

  teach(id: string, examples: { image: Blob; label: string }[]): Promise<{ classifier: { id: string; version: number }; labels: string[] }> {
    const form = new FormData();
    for (const [i, { image, label }] of examples.entries()) {
      form.append("image", image, `example-${i}`);
      form.append("label", label);
    }
    return this.call(`/v1/classifiers/${encodeURIComponent(id)}/examples`, { method: "POST", body: form });
  }
}
