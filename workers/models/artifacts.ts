/** Fetching a model's files and proving they are the bytes its manifest describes. */
import { ModelUnavailableError } from "../problems/problems";
import type { ArtifactSource, ServedModel } from "./manifest";

/**
 * Lower-case hex SHA-256 of some bytes.
 *
 * @example
 * await sha256Hex(new TextEncoder().encode("abc")); // "ba7816bf…"
 */
export async function sha256Hex(bytes: ArrayBuffer | Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * A file of a model (its ONNX artifact or its head.bin), from the bundle or from R2, after
 * checking its sha256 against the manifest: nothing is used that the manifest does not vouch for.
 *
 * @throws ModelUnavailableError when the object is missing from R2 or its bytes do not match
 * @example
 * const bytes = await loadFile("resnet-edge", model.source, model.manifest.artifact.sha256, env.MODELS);
 */
export async function loadFile(id: string, source: ArtifactSource, sha256: string, bucket: R2Bucket | undefined): Promise<Uint8Array<ArrayBuffer>> {
  let bytes: ArrayBuffer;
  if (source.kind === "bundle") {
    bytes = source.bytes;
  } else {
    const object = bucket ? await bucket.get(source.key) : null;
    if (!object) {
      throw new ModelUnavailableError(id, `The file r2://${source.key} is not in the MODELS bucket; upload it with \`npm run models:upload\`.`);
    }
    bytes = await object.arrayBuffer();
  }
  const actual = await sha256Hex(bytes);
  if (actual !== sha256) throw new ModelUnavailableError(id, `The file's sha256 is ${actual}, not the manifest's ${sha256}.`);
  return new Uint8Array(bytes);
}

/**
 * The model's ONNX bytes, verified (loadFile).
 *
 * @example
 * const bytes = await loadArtifact(getModel("resnet-edge"), env.MODELS);
 */
export function loadArtifact(model: ServedModel, bucket: R2Bucket | undefined): Promise<Uint8Array<ArrayBuffer>> {
  return loadFile(model.manifest.id, model.source, model.manifest.artifact.sha256, bucket);
}
