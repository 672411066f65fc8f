/** Fetching a model's ONNX bytes and proving they are the bytes its manifest describes. */
import { ModelUnavailableError } from "../problems/problems";
import type { ServedModel } from "./manifest";

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
 * The model's ONNX bytes, from the bundle or from R2, after checking their sha256 against the
 * manifest: a session is never created from bytes the manifest does not vouch for.
 *
 * @throws ModelUnavailableError when the object is missing from R2 or its bytes do not match
 * @example
 * const bytes = await loadArtifact(getModel("resnet-edge"), env.MODELS);
 */
export async function loadArtifact(model: ServedModel, bucket: R2Bucket | undefined): Promise<Uint8Array<ArrayBuffer>> {
  const { id, artifact } = model.manifest;
  let bytes: ArrayBuffer;
  if (model.source.kind === "bundle") {
    bytes = model.source.bytes;
  } else {
    const object = bucket ? await bucket.get(model.source.key) : null;
    if (!object) {
      throw new ModelUnavailableError(
        id,
        `The artifact r2://${model.source.key} is not in the MODELS bucket; upload it with \`npm run models:upload\`.`,
      );
    }
    bytes = await object.arrayBuffer();
  }
  const actual = await sha256Hex(bytes);
  if (actual !== artifact.sha256) {
    throw new ModelUnavailableError(id, `The artifact's sha256 is ${actual}, not the manifest's ${artifact.sha256}.`);
  }
  return new Uint8Array(bytes);
}
