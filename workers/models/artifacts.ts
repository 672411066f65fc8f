/** Fetching a model's files and proving they are the bytes its manifest describes. */
import { ModelUnavailableError } from "../problems/problems";
import type { ArtifactSource, ServedModel } from "./manifest";
import { sha256Hex } from "./sha256";


async function getObject(id: string, key: string, bucket: R2Bucket | undefined): Promise<R2ObjectBody> {
  const object = bucket ? await bucket.get(key) : null;
  if (!object) throw new ModelUnavailableError(id, `The file r2://${key} is not in the MODELS bucket; upload it with \`npm run models:upload\`.`);
  return object;
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
    bytes = await (await getObject(id, source.key, bucket)).arrayBuffer();
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

/**
 * The model's ONNX bytes to send to a client, unverified and, from R2, streamed: a 24 MB
 * artifact never sits whole in the isolate's memory beside the models it serves. The client
 * checks them against the manifest's sha256 (the response's ETag).
 *
 * @throws ModelUnavailableError when the object is missing from R2
 * @example
 * return new Response(await artifactBody(model, env.MODELS));
 */
export async function artifactBody(model: ServedModel, bucket: R2Bucket | undefined): Promise<ArrayBuffer | ReadableStream> {
  const { source, manifest } = model;
  return source.kind === "bundle" ? source.bytes : (await getObject(manifest.id, source.key, bucket)).body;
}
