/**
 * The model repository under models/: one folder per model id, one numbered subfolder per
 * version holding the artifact and its manifest. The newest version of each id is served
 * (Triton's "latest 1" policy); artifacts up to BUNDLE_LIMIT_BYTES ride in the Worker bundle,
 * larger ones are served from the R2 bucket bound as MODELS under the same relative path.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join, relative, resolve } from "node:path";

export const ROOT = resolve(import.meta.dirname, "..");
export const MODELS_DIR = join(ROOT, "models");

/** Largest artifact bundled with the Worker: the bundle must stay under 10 MB gzipped. */
export const BUNDLE_LIMIT_BYTES = 4 * 1024 * 1024;

export interface RepositoryModel {
  id: string;
  version: number;
  manifest: {
    id: string;
    version: number;
    dataset: string;
    input: { channels: number; height: number; width: number };
    artifact: { file: string; bytes: number; sha256: string; inputName: string };
    serving: { servable: boolean; memoryBytes: number; runBatch: number };
  } & Record<string, unknown>;
  /** Absolute path of the ONNX file. */
  artifactPath: string;
  /** Where the Worker reads it: bundled, or this R2 key (also its path relative to the repository root). */
  source: { kind: "bundle" } | { kind: "r2"; key: string };
}

function newestVersion(modelDir: string): number | undefined {
  const versions = readdirSync(modelDir)
    .filter((name) => /^\d+$/.test(name) && existsSync(join(modelDir, name, "manifest.json")))
    .map(Number);
  return versions.length ? Math.max(...versions) : undefined;
}

const sha256File = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

/**
 * The served version of every model under models/, each artifact checked against its manifest
 * (a model too large to serve may come without its artifact).
 *
 * @example
 * for (const model of discoverModels()) console.log(model.id, model.version, model.source.kind);
 */
export function discoverModels(modelsDir = MODELS_DIR): RepositoryModel[] {
  const models: RepositoryModel[] = [];
  const folders = readdirSync(modelsDir, { withFileTypes: true }).filter((entry) => entry.isDirectory());
  for (const id of folders.map((entry) => entry.name).sort()) {
    const version = newestVersion(join(modelsDir, id));
    if (version === undefined) continue;
    const versionDir = join(modelsDir, id, String(version));
    const manifest = JSON.parse(readFileSync(join(versionDir, "manifest.json"), "utf8")) as RepositoryModel["manifest"];
    if (manifest.id !== id || manifest.version !== version) {
      throw new Error(`${versionDir}/manifest.json says ${manifest.id} v${manifest.version}, its folder says ${id} v${version}`);
    }
    const artifactPath = join(versionDir, manifest.artifact.file);
    if (!manifest.serving) throw new Error(`${versionDir}/manifest.json has no serving section: run scripts/measure-serving-memory.ts`);
    // Artifacts too large to serve are not committed (see .gitignore): listed, refused, never loaded.
    const present = existsSync(artifactPath) || manifest.serving.servable; // a servable one without it fails the read below
    if (present) {
      const sha256 = sha256File(artifactPath);
      if (sha256 !== manifest.artifact.sha256) {
        throw new Error(`${artifactPath}: sha256 ${sha256} does not match its manifest (${manifest.artifact.sha256})`);
      }
    }
    const source: RepositoryModel["source"] =
      present && manifest.artifact.bytes <= BUNDLE_LIMIT_BYTES ? { kind: "bundle" } : { kind: "r2", key: relative(ROOT, artifactPath) };
    models.push({ id, version, manifest, artifactPath, source });
  }
  if (!models.length) throw new Error(`no models found under ${modelsDir}`);
  return models;
}
