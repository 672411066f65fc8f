/**
 * POST /v1/models: a user's ONNX classifier registered without a redeploy. The upload is
 * rewritten to the served graph and its manifest (imported-model.ts, the pipeline `npm run
 * models:add` runs), proven and measured in a runtime of its own (fresh-runtime.ts: it parses,
 * creates a session and runs a batch, so an operator or a shape the runtime lacks is refused
 * here), stored in R2 under registered/<id>/<version>/ with its manifest and head.bin, and only
 * then recorded in the registry. A refusal at any step leaves the registry as it was.
 */
import type { Env } from "../env";
import { currentEngine } from "../inference/onnx-session";
import { servingSection } from "../inference/memory-budget";
import { parseForm, mediaType, readBodyLimited } from "../classify/request";
import type { ModelManifest } from "../models/manifest";
import { findBuiltIn } from "../models/catalog";
import {
  HostLacksFeatureError,
  InvalidParameterError,
  ModelIdTakenError,
  ModelRefusedError,
  PayloadTooLargeError,
  RegistrationBusyError,
  UnsupportedMediaTypeError,
} from "../problems/problems";
import { classifierObject } from "../classifiers/client";
import { RuntimeRefusedError, measureInFreshRuntime } from "./fresh-runtime";
import { PRESETS, RESIZE_POLICIES, headFile, importModel, parseLabels, type ImportSettings, type Preset } from "./imported-model";
import { REGISTRATION_LIMITS } from "./limits";
import { ImportRefusedError } from "./onnx/served-graph";
import { registeredModels, registryObject } from "./registry-client";
import type { Registration } from "./registry-object";

/** Longest one validation may hold an isolate's registration slot before another may take it. */
const VALIDATION_SLOT_MS = 120_000;
// When this isolate's validation began; one at a time, since each starts a runtime of its own.
// A timestamp rather than a lock: a request whose client hangs up mid-validation may never
// reach its `finally`, and the slot then frees itself.
let validatingSince: number | undefined;

const SETTINGS = ["id", "labels", "preset", "layout", "channel_order", "size", "height", "width", "mean", "std", "scale", "resize", "shorter_side", "mirrorable", "output", "name", "dataset"] as const;

async function field(form: FormData, name: string): Promise<string | undefined> {
  const value = form.get(name);
  if (value === null) return undefined;
  return typeof value === "string" ? value : await value.text(); // labels may come as a file
}

function oneOf<T extends string>(name: string, value: string | undefined, allowed: readonly T[]): T | undefined {
  if (value !== undefined && !allowed.includes(value as T)) throw new InvalidParameterError(name, `${name} must be one of ${allowed.join(", ")}, not '${value}'.`);
  return value as T | undefined;
}

function positiveInteger(name: string, value: string | undefined, max = 4096): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,5}$/.test(value) || Number(value) < 1 || Number(value) > max) throw new InvalidParameterError(name, `${name} must be an integer from 1 to ${max}, not '${value}'.`);
  return Number(value);
}

function numberList(name: string, value: string | undefined): number[] | undefined {
  if (value === undefined) return undefined;
  const numbers = value.split(",").map((part) => Number(part.trim()));
  if (!numbers.length || numbers.length > 3 || numbers.some((n) => !Number.isFinite(n))) throw new InvalidParameterError(name, `${name} must be 1 or 3 comma-separated numbers, not '${value}'.`);
  return numbers;
}

/**
 * The upload of a registration: the ONNX file (part `model`) and its settings (text fields
 * named as `npm run models:add`'s options, snake_case; `labels` a text field or a file).
 *
 * @throws UnsupportedMediaTypeError, PayloadTooLargeError, InvalidRequestError, InvalidParameterError
 * @example
 * const { bytes, settings } = await readRegistration(c.req.raw);
 */
export async function readRegistration(request: Request): Promise<{ bytes: Uint8Array<ArrayBuffer>; settings: ImportSettings }> {
  const contentType = request.headers.get("content-type");
  if (mediaType(contentType) !== "multipart/form-data") {
    throw new UnsupportedMediaTypeError("Send multipart/form-data: the ONNX file as part 'model', and 'id' and 'labels' fields.", ["multipart/form-data"]);
  }
  const body = await readBodyLimited(request, REGISTRATION_LIMITS.maxRequestBytes);
  const form = await parseForm(body, contentType!);
  const model = form.get("model");
  if (model === null || typeof model === "string") throw new InvalidParameterError("model", "The form needs the ONNX file as a file part named 'model'.");
  if (model.size > REGISTRATION_LIMITS.maxModelBytes) {
    throw new PayloadTooLargeError(`The model is ${model.size} bytes; the API takes up to ${REGISTRATION_LIMITS.maxModelBytes}. Add larger ones with \`npm run models:add\` and deploy.`, {
      maxModelBytes: REGISTRATION_LIMITS.maxModelBytes,
    });
  }
  const unknown = [...new Set(form.keys())].filter((key) => key !== "model" && !(SETTINGS as readonly string[]).includes(key));
  if (unknown.length) throw new InvalidParameterError(unknown[0]!, `Unknown field${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")}; the fields are model, ${SETTINGS.join(", ")}.`);
  const text: Partial<Record<(typeof SETTINGS)[number], string>> = {};
  for (const name of SETTINGS) {
    const value = await field(form, name);
    if (value !== undefined) text[name] = value.trim();
  }
  if (!text.id) throw new InvalidParameterError("id", "The form needs an 'id' field.");
  if (!text.labels) throw new InvalidParameterError("labels", "The form needs 'labels': one per line, or a JSON array.");
  let labels: string[];
  try {
    labels = parseLabels(text.labels);
  } catch (error) {
    throw new InvalidParameterError("labels", `${(error as Error).message}.`);
  }
  if (labels.length > REGISTRATION_LIMITS.maxLabels || labels.some((label) => label.length > REGISTRATION_LIMITS.maxLabelLength)) {
    throw new InvalidParameterError("labels", `At most ${REGISTRATION_LIMITS.maxLabels} labels of at most ${REGISTRATION_LIMITS.maxLabelLength} characters each.`);
  }
  if (text.mirrorable !== undefined && !["true", "false"].includes(text.mirrorable)) throw new InvalidParameterError("mirrorable", "mirrorable must be true or false.");
  const scale = text.scale === undefined ? undefined : Number(text.scale);
  if (scale !== undefined && !(scale > 0 && Number.isFinite(scale))) throw new InvalidParameterError("scale", `scale must be a number above 0, not '${text.scale}'.`);
  const size = positiveInteger("size", text.size);
  return {
    bytes: new Uint8Array(await model.arrayBuffer()),
    settings: {
      id: text.id,
      labels,
      fileName: model.name || "model.onnx",
      preset: oneOf("preset", text.preset, Object.keys(PRESETS) as Preset[]),
      layout: oneOf("layout", text.layout, ["NCHW", "NHWC"] as const),
      channelOrder: oneOf("channel_order", text.channel_order, ["rgb", "bgr"] as const),
      height: positiveInteger("height", text.height) ?? size,
      width: positiveInteger("width", text.width) ?? size,
      mean: numberList("mean", text.mean),
      std: numberList("std", text.std),
      scale,
      resize: oneOf("resize", text.resize, RESIZE_POLICIES),
      shorterSide: positiveInteger("shorter_side", text.shorter_side, 8192),
      mirrorable: text.mirrorable === undefined ? undefined : text.mirrorable === "true",
      output: text.output,
      name: text.name,
      dataset: text.dataset,
    },
  };
}

/** Whether `id` names a classifier (its Durable Object holds one). */
async function isClassifier(env: Env, id: string): Promise<boolean> {
  const described = (await classifierObject(env, id).describe()) as { ok?: unknown };
  return described.ok !== undefined;
}

/**
 * Validate, store and record a model; returns its registration.
 *
 * @throws ModelIdTakenError, ModelRefusedError (422: cannot be served, with why), RegistrationBusyError, HostLacksFeatureError
 * @example
 * const registration = await registerModel(env, bytes, settings);
 */
export async function registerModel(env: Env, bytes: Uint8Array<ArrayBuffer>, settings: ImportSettings): Promise<Registration> {
  const engine = currentEngine();
  if (!env.MODEL_REGISTRY || !engine.runtimeModule) throw new HostLacksFeatureError(engine.hostName, "model registration (a registry Durable Object and a runtime to validate in)");
  if (findBuiltIn(settings.id)) throw new ModelIdTakenError(settings.id, "built-in model");
  if (await isClassifier(env, settings.id)) throw new ModelIdTakenError(settings.id, "classifier");
  if (validatingSince !== undefined && Date.now() - validatingSince < VALIDATION_SLOT_MS) throw new RegistrationBusyError(5);
  const since = (validatingSince = Date.now());
  let manifest: ModelManifest;
  let files: { name: string; bytes: Uint8Array }[];
  try {
    const imported = await importModel(bytes, settings, "POST /v1/models");
    const { served } = imported;
    const shape = (batch: number) => [batch, served.channels, served.height, served.width];
    const serving = await servingSection(
      (batch) => measureInFreshRuntime(engine.runtimeModule!, served.bytes, served.inputName, shape(batch), ["embedding", "logits"]),
      served.fixedBatch,
      `onnxruntime-web ${engine.runtimeVersion} (WASM, 1 thread) in the Worker, in a runtime of its own`,
    );
    if (!serving.servable) {
      const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
      throw new ModelRefusedError(`Serving it takes ${mib(serving.memoryBytes)} at batch ${serving.runBatch}; a model may use ${mib(serving.budgetBytes)} of a Worker isolate's 128 MiB.`, {
        memoryBytes: serving.memoryBytes,
        budgetBytes: serving.budgetBytes,
      });
    }
    const head = await headFile(imported.headWeights, served.classes, served.embeddingSize, { perClass: 0, embeddings: new Float32Array(0), source: "none: registered through the API" });
    manifest = { ...imported.manifest, version: 0, serving, head: head.section };
    files = [
      { name: manifest.artifact.file, bytes: served.bytes },
      { name: head.section.file, bytes: head.bytes },
    ];
  } catch (error) {
    if (error instanceof ImportRefusedError) throw new ModelRefusedError(`${error.message}.`);
    if (error instanceof RuntimeRefusedError) throw new ModelRefusedError(`onnxruntime-web (the Worker's runtime) refused it: ${error.message}.`);
    throw error;
  } finally {
    if (validatingSince === since) validatingSince = undefined;
  }
  const registry = registryObject(env);
  manifest.version = await registry.reserve(settings.id);
  const prefix = `registered/${manifest.id}/${manifest.version}/`;
  files.push({ name: "manifest.json", bytes: new TextEncoder().encode(JSON.stringify(manifest, null, 2) + "\n") });
  try {
    for (const file of files) await env.MODELS.put(`${prefix}${file.name}`, file.bytes);
  } catch (error) {
    await env.MODELS.delete(files.map((file) => `${prefix}${file.name}`)).catch(() => undefined);
    throw error;
  }
  const registration = (await registry.commit(manifest, prefix)) as Registration;
  await registeredModels(env, true); // this isolate sees it at once; the others within REGISTRY_CACHE_MS
  return registration;
}

/**
 * Delete every registered version of `id`: from the registry first (from then on no isolate
 * that reads it serves them), then their files.
 *
 * @example
 * const removed = await unregisterModel(env, "pets"); // [{ manifest, prefix, registeredAt }, ...]
 */
export async function unregisterModel(env: Env, id: string): Promise<Registration[]> {
  if (!env.MODEL_REGISTRY) throw new HostLacksFeatureError(currentEngine().hostName, "model registration (a registry Durable Object)");
  // RPC types drop what they cannot prove serialisable (the manifest's open records): the object returns Registrations.
  const removed = (await registryObject(env).remove(id)) as Registration[];
  for (const { manifest, prefix } of removed) {
    await env.MODELS.delete([manifest.artifact.file, manifest.head?.file, "manifest.json"].filter(Boolean).map((file) => `${prefix}${file}`));
  }
  await registeredModels(env, true);
  return removed;
}
