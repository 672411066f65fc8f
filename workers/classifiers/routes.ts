/**
 * Classifiers: a frozen backbone (a served model) plus a head that learns.
 *
 *   POST /v1/classifiers                   create {id, backbone, init: "empty" | "pretrained"}
 *   GET  /v1/classifiers/{id}              describe
 *   GET  /v1/classifiers/{id}/versions     list versions, newest first
 *   POST /v1/classifiers/{id}/examples     learn from labelled examples (= POST /finetune)
 *   POST /v1/classifiers/{id}/rollback     {version}: a new version with that version's head
 *   POST /v1/classifiers/{id}/classify     classify with the latest version, or ?version=N
 *   DELETE /v1/classifiers/{id}            delete it, versions and examples
 *   POST /finetune?classifier={id}         the same as /examples (or "classifier" in the body)
 *
 * Routes that change state need a full-access API key; the others follow CLASSIFY_ACCESS (workers/auth).
 *
 * Every served model is also a classifier, under its own id, with its trained head: read-only,
 * so that it can be copied (init "pretrained") but never changed in place.
 */
import { Hono, type Context } from "hono";
import { admitBody } from "../admission/admit-body";
import { admitToModel } from "../admission/model-admission";
import { requireAccess } from "../auth/require-access";
import { classify, round, runModel, type ClassifierHead } from "../classify/classify";
import { flipAverageFor } from "../classify/flip-average";
import { classifyOptions, optionsFor, providerPreference } from "../classify/options";
import { CLASSIFY_LIMITS } from "../classify/limits";
import { checkImagesMediaType, readBodyLimited, readImages } from "../classify/request";
import { servingContext, type AppEnv } from "../env";
import { loadFile } from "../models/artifacts";
import { findModel, getModel, getServableModel } from "../models/catalog";
import { recordClassifierChange, recordServed } from "../observability/access-log";
import type { ServedModel } from "../models/manifest";
import { CreateClassifierBody, RollbackBody, VersionQuery, parseRequest } from "../openapi/schemas";
import {
  BackboneChangedError,
  ClassifierExistsError,
  InvalidParameterError,
  InvalidRequestError,
  ReadOnlyClassifierError,
  UnknownVersionError,
} from "../problems/problems";
import type { ClassifierInfo, FinetuneMetrics, HeadVersion, VersionInfo } from "./classifier-object";
import { call, classifierObject } from "./client";
import { checkLabelledMediaType, readLabelledImages } from "./examples-request";
import { parseHeadFile, type Head } from "./head";

type Ctx = Context<AppEnv>;

/**
 * ?version= as a positive integer, or undefined for the latest.
 *
 * @example
 * parseVersion("3"); // 3
 */
export function parseVersion(value: string | undefined): number | undefined {
  const { version } = parseRequest(VersionQuery, { version: value });
  return version === undefined ? undefined : Number(version);
}

/** A served model's own classifier, described as a user classifier would be. */
function modelClassifier(model: ServedModel): ClassifierInfo & { readOnly: true } {
  const { manifest } = model;
  return {
    id: manifest.id,
    backbone: { id: manifest.id, version: manifest.version },
    init: "pretrained",
    createdAt: manifest.exportedAt,
    embeddingSize: manifest.embeddingSize,
    version: manifest.version,
    labels: manifest.labels,
    examples: 0,
    baseExemplars: 0,
    readOnly: true,
  };
}

/**
 * The backbone a classifier was made on, at the version it was made on: a registered model
 * keeps serving its earlier versions; a built-in one serves only the version deployed.
 */
async function backboneOf(env: AppEnv["Bindings"], id: string, backbone: { id: string; version: number }): Promise<ServedModel> {
  if (!(await findModel(env, backbone.id, backbone.version))) {
    const served = await getModel(env, backbone.id);
    throw new BackboneChangedError(id, backbone.id, backbone.version, served.manifest.version);
  }
  return getServableModel(env, backbone.id, backbone.version);
}

/**
 * The model and head that classify for a classifier id: a served model's own (no head: its
 * graph's logits), or a user classifier's backbone and its head at `version` (default latest).
 *
 * @example
 * const { model, classifier } = await resolveClassifier(env, "pets", undefined);
 */
export async function resolveClassifier(env: AppEnv["Bindings"], id: string, version: number | undefined): Promise<{ model: ServedModel; classifier?: ClassifierHead }> {
  const model = await findModel(env, id);
  if (model) {
    if (version !== undefined && !(await findModel(env, id, version))) throw new UnknownVersionError(id, version, model.manifest.version);
    return { model: await getServableModel(env, id, version) };
  }
  const found = await call<HeadVersion>(id, classifierObject(env, id).head(version));
  return { model: await backboneOf(env, id, found.backbone), classifier: { id, version: found.version, head: found.head } };
}

/**
 * A small JSON request body (at most `limit` bytes) as an object to parse with its schema; a
 * body that is JSON but no object reads as `{}`, so the schema names its first missing field.
 * `shape` tells the client what was expected.
 */
async function readJsonBody(c: Ctx, limit: number, shape: string): Promise<Record<string, unknown>> {
  const text = new TextDecoder().decode(await readBodyLimited(c.req.raw, limit));
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new InvalidRequestError(`The body must be JSON: ${shape}.`);
  }
  return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
}

async function createClassifier(c: Ctx) {
  const body = await readJsonBody(c, 64 * 1024, '{"id": ..., "backbone": ..., "init": "empty" | "pretrained"}');
  const { id, backbone, init } = parseRequest(CreateClassifierBody, body);
  if (await findModel(c.env, id)) throw new ClassifierExistsError(id);
  const model = await getServableModel(c.env, backbone);
  const { manifest } = model;
  const empty: Head = { labels: [], embeddingSize: manifest.embeddingSize, weight: new Float32Array(0), bias: new Float32Array(0) };
  let spec = { id, backbone: { id: manifest.id, version: manifest.version }, init, head: empty } as Parameters<ReturnType<typeof classifierObject>["create"]>[0];
  if (init === "pretrained") {
    if (!model.head || !manifest.head) throw new InvalidParameterError("init", `Model '${manifest.id}' has no head file to copy; use init "empty".`);
    const bytes = await loadFile(manifest.id, model.head, manifest.head.sha256, c.env.MODELS);
    const { head, exemplars, exemplarLabels } = parseHeadFile(bytes, manifest.labels, manifest.head);
    spec = { ...spec, head, exemplars: { embeddings: exemplars, labels: exemplarLabels } };
  }
  const info = await call<ClassifierInfo>(id, classifierObject(c.env, id).create(spec));
  recordClassifierChange(c, { kind: "create" });
  return c.json(info, 201, { location: `/v1/classifiers/${id}` });
}

/** Learn from a call's examples: embeddings computed here, the head updated in the classifier's object. */
async function finetune(c: Ctx, queryId: string | undefined) {
  const started = performance.now();
  const taught = await readLabelledImages(c.req.raw);
  const id = queryId ?? taught.classifier;
  if (!id) throw new InvalidParameterError("classifier", "Name the classifier: ?classifier=<id>, or a 'classifier' field in the body.");
  if (await findModel(c.env, id)) throw new ReadOnlyClassifierError(id);
  const object = classifierObject(c.env, id);
  const info = await call<ClassifierInfo>(id, object.describe());
  const model = await backboneOf(c.env, id, info.backbone);
  // Examples are embedded as a classify request that leaves flip_average to the model embeds its images.
  const run = { provider: providerPreference(c.req.query("provider"), c.env.EXECUTION_PROVIDER), flipAverage: flipAverageFor(model, undefined) };
  const { outputs, timing } = await runModel(model, taught.images, ["embedding"], run, servingContext(c));
  const learned = await call<{ version: number; labels: string[]; metrics: FinetuneMetrics }>(
    id,
    object.learn({ embeddings: outputs.embedding!, labels: taught.labels }),
  );
  const answer = {
    classifier: { id, version: learned.version },
    labels: learned.labels,
    metrics: learned.metrics,
    timing: { ...timing, embedMs: round(timing.decodeMs + timing.inferenceMs), updateMs: learned.metrics.updateMs, totalMs: round(performance.now() - started) },
  };
  recordServed(c, { model: { id: model.manifest.id, version: model.manifest.version }, classifier: answer.classifier, timing: answer.timing });
  recordClassifierChange(c, { kind: "finetune", examples: taught.labels.length });
  return c.json(answer);
}

async function describeClassifier(c: Ctx) {
  const id = c.req.param("id")!;
  const model = await findModel(c.env, id);
  if (model) return c.json(modelClassifier(model));
  return c.json(await call<ClassifierInfo>(id, classifierObject(c.env, id).describe()));
}

async function listVersions(c: Ctx) {
  const id = c.req.param("id")!;
  const model = await findModel(c.env, id);
  if (model) {
    const { version, labels, createdAt } = modelClassifier(model);
    return c.json({ classifier: id, versions: [{ version, parent: null, kind: "create", createdAt, labels, examples: 0 }] });
  }
  return c.json({ classifier: id, versions: await call<VersionInfo[]>(id, classifierObject(c.env, id).versions()) });
}

async function deleteClassifier(c: Ctx) {
  const id = c.req.param("id")!;
  if (await findModel(c.env, id)) throw new ReadOnlyClassifierError(id);
  return c.json({ deleted: await call<ClassifierInfo>(id, classifierObject(c.env, id).remove()) });
}

async function rollback(c: Ctx) {
  const id = c.req.param("id")!;
  if (await findModel(c.env, id)) throw new ReadOnlyClassifierError(id);
  const body = await readJsonBody(c, 4096, '{"version": N}');
  const version = Number(parseRequest(RollbackBody, body).version);
  const made = await call<VersionInfo>(id, classifierObject(c.env, id).rollback(version));
  recordClassifierChange(c, { kind: "rollback" });
  return c.json({ classifier: { id, version: made.version }, rolledBackTo: version, labels: made.labels, examples: made.examples }, 201);
}

/**
 * POST /classify?classifier= and /v1/classifiers/{id}/classify: classify with a classifier's
 * latest version, or ?version=N.
 */
export async function classifyWithClassifier(c: Ctx, id: string) {
  const requested = classifyOptions(c.req.query(), c.env.EXECUTION_PROVIDER);
  const { model, classifier } = await resolveClassifier(c.env, id, parseVersion(c.req.query("version")));
  admitToModel(c.get("admission"), model);
  const answer = await classify(model, readImages(c.req.raw), optionsFor(model, requested), servingContext(c), classifier);
  recordServed(c, answer);
  return c.json(answer);
}

const write = requireAccess("write");
const read = requireAccess("classify");
const admitImages = admitBody(CLASSIFY_LIMITS.maxRequestBytes, checkImagesMediaType);
const admitExamples = admitBody(CLASSIFY_LIMITS.maxRequestBytes, checkLabelledMediaType);

export const classifierRoutes = new Hono<AppEnv>()
  .post("/v1/classifiers", write, createClassifier)
  .get("/v1/classifiers/:id", read, describeClassifier)
  .delete("/v1/classifiers/:id", write, deleteClassifier)
  .get("/v1/classifiers/:id/versions", read, listVersions)
  .post("/v1/classifiers/:id/examples", write, admitExamples, (c) => finetune(c, c.req.param("id")))
  .post("/v1/classifiers/:id/rollback", write, rollback)
  .post("/v1/classifiers/:id/classify", read, admitImages, (c) => classifyWithClassifier(c, c.req.param("id")))
  .post("/finetune", write, admitExamples, (c) => finetune(c, c.req.query("classifier")));
