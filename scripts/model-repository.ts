/**
 * The model repository under models/: one folder per model id, one numbered subfolder per
 * version holding the artifact and its manifest. The newest version of each id is served
 * (Triton's "latest 1" policy). Files up to their bundle limit ride in the Worker bundle, larger
 * ones are served from the R2 bucket bound as MODELS under the same relative path.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { ADMISSION_BOUNDS } from "../workers/admission/policy.ts";

export const ROOT = resolve(import.meta.dirname, "..");
/** models/, or the folder CNN_EDGE_MODELS_DIR names (a test's repository of imported models). */
export const MODELS_DIR = process.env.CNN_EDGE_MODELS_DIR ? resolve(process.env.CNN_EDGE_MODELS_DIR) : join(ROOT, "models");

/** Largest ONNX artifact bundled with the Worker: the bundle must stay under 10 MB gzipped. */
export const BUNDLE_LIMIT_BYTES = 4 * 1024 * 1024;
/**
 * Largest head.bin bundled: a head is read only when a classifier is copied from its model,
 * so a larger one costs an R2 read at that rare moment rather than bundle space.
 */
export const HEAD_BUNDLE_LIMIT_BYTES = 512 * 1024;

/**
 * Lowest validation accuracy a served model may have: a newest version below it stays out of the
 * catalog (its folder is kept as the record of the run) instead of answering as if it were fine.
 * A manifest without `metrics.validationAccuracy` (a model brought without a measurement) is served.
 */
export const ACCURACY_FLOOR = 0.85;

export type FileSource = { kind: "bundle" } | { kind: "r2"; key: string };

/** models/<id>/config.json: how the model is served, whatever its version (workers/models/manifest.ts ModelConfig). */
export interface RepositoryConfig {
  dynamicBatching?: { maxBatch?: number; windowMs?: number };
  admission?: { maxQueueImages?: number; maxQueueMs?: number };
  flipAverage?: boolean;
}

/** Bounds of config.json's dynamicBatching (a batch of at most 256 images, a window of at most 50 ms) and admission (workers/admission/policy.ts). */
const SETTING_BOUNDS = { dynamicBatching: { maxBatch: [1, 256], windowMs: [0, 50] }, admission: ADMISSION_BOUNDS } as const;

function readConfig(modelDir: string): RepositoryConfig | undefined {
  const path = join(modelDir, "config.json");
  if (!existsSync(path)) return undefined;
  const config = JSON.parse(readFileSync(path, "utf8")) as RepositoryConfig;
  for (const key of Object.keys(config)) if (!(key in SETTING_BOUNDS) && key !== "flipAverage") throw new Error(`${path}: unknown setting '${key}'`);
  if ("flipAverage" in config && typeof config.flipAverage !== "boolean") throw new Error(`${path}: flipAverage must be true or false, not ${JSON.stringify(config.flipAverage)}`);
  for (const [section, sectionBounds] of Object.entries(SETTING_BOUNDS)) {
    for (const [key, value] of Object.entries(config[section as keyof typeof SETTING_BOUNDS] ?? {})) {
      const bounds = (sectionBounds as Record<string, readonly [number, number]>)[key];
      if (!bounds) throw new Error(`${path}: unknown ${section} setting '${key}'`);
      if (!Number.isInteger(value) || value < bounds[0] || value > bounds[1]) {
        throw new Error(`${path}: ${section}.${key} must be an integer in [${bounds.join(", ")}], not ${JSON.stringify(value)}`);
      }
    }
  }
  return config;
}

export interface RepositoryModel {
  id: string;
  version: number;
  manifest: {
    id: string;
    version: number;
    dataset: string;
    /** flipAverage: a first CIFAR-10 export, whose graph averages the mirror image inside. */
    architecture: { name: string; flipAverage?: boolean };
    input: { channels: number; height: number; width: number; mirrorable?: boolean };
    artifact: { file: string; bytes: number; sha256: string; inputName: string };
    serving: { servable: boolean; memoryBytes: number; runBatch: number };
    head?: { file: string; bytes: number; sha256: string };
    quantization?: { scheme: string; from: string };
  } & Record<string, unknown>;
  config?: RepositoryConfig;
  /** Absolute path of the ONNX file. */
  artifactPath: string;
  /** Where the Worker reads it: bundled, or this R2 key (also its path relative to the repository root). */
  source: FileSource;
  /** The trained head and replay exemplars (scripts/training/head.py), for servable models. */
  head?: { path: string; source: FileSource };
}

/** The highest version under models/<id>/ that has a manifest, or undefined (none, or no such folder). */
export function newestVersion(modelDir: string): number | undefined {
  if (!existsSync(modelDir)) return undefined;
  const versions = readdirSync(modelDir)
    .filter((name) => /^\d+$/.test(name) && existsSync(join(modelDir, name, "manifest.json")))
    .map(Number);
  return versions.length ? Math.max(...versions) : undefined;
}

/** Hex sha256 of bytes, as manifests record it. */
export const sha256Hex = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const sha256File = (path: string) => sha256Hex(readFileSync(path));

function checkedFile(path: string, sha256: string, bytes: number, bundleLimit: number): FileSource {
  const actual = sha256File(path);
  if (actual !== sha256) throw new Error(`${path}: sha256 ${actual} does not match its manifest (${sha256})`);
  return bytes <= bundleLimit ? { kind: "bundle" } : { kind: "r2", key: relative(ROOT, path) };
}

/** A model's newest version that is not served: its accuracy is below ACCURACY_FLOOR. */
export interface HeldBackModel {
  id: string;
  version: number;
  validationAccuracy: number;
}

/**
 * The served version of every model under models/, each artifact checked against its manifest
 * (a model too large to serve may come without its artifact). Newest versions below
 * ACCURACY_FLOOR are left out, and listed in `heldBack` when it is given.
 *
 * @example
 * for (const model of discoverModels()) console.log(model.id, model.version, model.source.kind);
 */
export function discoverModels(modelsDir = MODELS_DIR, heldBack: HeldBackModel[] = []): RepositoryModel[] {
  const models: RepositoryModel[] = [];
  // statSync follows links: a repository may link a model folder from another (a test's links models/lenet).
  const ids = readdirSync(modelsDir).filter((name) => !name.startsWith(".") && statSync(join(modelsDir, name)).isDirectory());
  for (const id of ids.sort()) {
    const version = newestVersion(join(modelsDir, id));
    if (version === undefined) continue;
    const versionDir = join(modelsDir, id, String(version));
    const manifest = JSON.parse(readFileSync(join(versionDir, "manifest.json"), "utf8")) as RepositoryModel["manifest"];
    if (manifest.id !== id || manifest.version !== version) {
      throw new Error(`${versionDir}/manifest.json says ${manifest.id} v${manifest.version}, its folder says ${id} v${version}`);
    }
    const validationAccuracy = (manifest.metrics as { validationAccuracy?: number } | undefined)?.validationAccuracy;
    if (validationAccuracy !== undefined && validationAccuracy < ACCURACY_FLOOR) {
      heldBack.push({ id, version, validationAccuracy });
      continue;
    }
    const artifactPath = join(versionDir, manifest.artifact.file);
    if (!manifest.serving) throw new Error(`${versionDir}/manifest.json has no serving section: run scripts/measure-serving-memory.ts`);
    // Artifacts too large to serve are not committed (see .gitignore): listed, refused, never loaded.
    const present = existsSync(artifactPath) || manifest.serving.servable; // a servable one without it fails the read below
    const source: FileSource = present
      ? checkedFile(artifactPath, manifest.artifact.sha256, manifest.artifact.bytes, BUNDLE_LIMIT_BYTES)
      : { kind: "r2", key: relative(ROOT, artifactPath) };
    let head: RepositoryModel["head"];
    if (manifest.serving.servable) {
      if (!manifest.head) throw new Error(`${versionDir}/manifest.json has no head section: run scripts/export_head.py ${relative(ROOT, versionDir)}`);
      const path = join(versionDir, manifest.head.file);
      head = { path, source: checkedFile(path, manifest.head.sha256, manifest.head.bytes, HEAD_BUNDLE_LIMIT_BYTES) };
    }
    const config = readConfig(join(modelsDir, id));
    models.push({ id, version, manifest, artifactPath, source, ...(config ? { config } : {}), ...(head ? { head } : {}) });
  }
  if (!models.length) throw new Error(`no models found under ${modelsDir}`);
  return models;
}

/**
 * The files of a servable model that the Worker reads from R2, with their local paths: what an
 * upload must put in the MODELS bucket.
 *
 * @example
 * for (const { key, path } of r2Objects(model)) await bucket.put(key, readFileSync(path));
 */
export function r2Objects(model: RepositoryModel): { key: string; path: string; sha256: string; bytes: number }[] {
  if (!model.manifest.serving.servable) return [];
  const files = [
    { source: model.source, path: model.artifactPath, ...model.manifest.artifact },
    ...(model.head && model.manifest.head ? [{ source: model.head.source, path: model.head.path, ...model.manifest.head }] : []),
  ];
  return files.flatMap(({ source, path, sha256, bytes }) => (source.kind === "r2" ? [{ key: source.key, path, sha256, bytes }] : []));
}
