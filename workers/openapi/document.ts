/**
 * The OpenAPI 3.1 document of the API (GET /openapi.json), generated from the schemas the
 * routes validate with (schemas.ts), with the auth scheme, the limits (read from the same
 * constants the routes enforce) and the problem types each route can answer.
 */
import { OpenAPIRegistry, OpenApiGeneratorV31, type RouteConfig } from "@asteasolutions/zod-to-openapi";
import { CLASSIFY_LIMITS } from "../classify/limits";
import { FINETUNE_LIMITS } from "../classifiers/limits";
import { REGISTRATION_LIMITS } from "../registry/limits";
import {
  ClassifierInfo,
  ClassifyAnswer,
  ClassifyQuery,
  CreateClassifierBody,
  DeletedAnswer,
  FinetuneAnswer,
  Health,
  Manifest,
  ModelDeletedAnswer,
  ModelList,
  Problem,
  RegisteredModel,
  RollbackAnswer,
  RollbackBody,
  VersionList,
  z,
} from "./schemas";

const registry = new OpenAPIRegistry();
registry.registerComponent("securitySchemes", "apiKey", {
  type: "http",
  scheme: "bearer",
  description:
    "An API key as a bearer token. Routes that change state need a full-access key (API_KEYS); classify and read routes need one (full-access or classify-only, CLASSIFY_KEYS) only where the deployment's CLASSIFY_ACCESS is \"key\" (production).",
});

const PROBLEM_STATUS: Record<number, string> = {
  400: "Bad input: invalid-request, invalid-parameter, incomplete-body.",
  401: "authentication-required (no key) or invalid-api-key.",
  403: "insufficient-scope (a classify-only key on a write route), classifier-read-only or model-built-in.",
  404: "unknown-model, unknown-model-version, unknown-classifier, unknown-version or not-found.",
  405: "method-not-allowed (with an Allow header).",
  409: "classifier-exists, classifier-empty, backbone-changed or model-id-taken.",
  413: "payload-too-large (bytes, parts or examples over a limit) or image-too-large (pixels, judged from the header).",
  415: "unsupported-media-type: another Content-Type, or bytes that are not PNG, JPEG or WebP.",
  422: "image-decode-failed, model-not-servable, model-refused (an upload the Worker cannot serve, with why), provider-unavailable or too-many-classes.",
  429: "rate-limited: the API key used its requests for this period (Retry-After; workers/README.md, Admission control).",
  500: "internal-error: an unexpected fault, still a problem body.",
  503: "overloaded (reason memory, queue-full or queue-time) or deadline-exceeded, refused to keep the isolate serving (Retry-After); auth-not-configured, model-unavailable, model-evicted, batch-abandoned or registration-busy (Retry-After).",
};

/** Problem answers for these statuses, each listing its problem types. */
function problems(...statuses: number[]): RouteConfig["responses"] {
  return Object.fromEntries(
    [...statuses, 500].map((status) => [
      status,
      {
        description: PROBLEM_STATUS[status]!,
        content: { "application/problem+json": { schema: Problem, example: { type: "urn:cnn-edge:problem:invalid-parameter", title: "Invalid parameter", status: 400, detail: "top_k must be a positive integer, not '0'.", instance: "/classify", parameter: "top_k", requestId: "6f1c0a9e-3b7d-4c2e-9a51-2d8f0e4b7c13" } } },
      },
    ]),
  );
}

const json = <S extends z.ZodType>(schema: S, example?: unknown) => ({ "application/json": { schema, ...(example === undefined ? {} : { example }) } });
const idParam = (what: string) => z.object({ id: z.string().openapi({ description: what, example: "lenet" }) });
const withKey = [{ apiKey: [] }];

const images = {
  description: `The image itself (PNG, JPEG or WebP, at most ${CLASSIFY_LIMITS.maxImageBytes} bytes and ${CLASSIFY_LIMITS.maxImagePixels} pixels decoded whole; JPEGs decoded at 1/8 scale up to ${CLASSIFY_LIMITS.maxJpegPixels}; at most ${CLASSIFY_LIMITS.maxImageSide} on a side), or multipart/form-data with up to ${CLASSIFY_LIMITS.maxImagesPerRequest} file parts named image, classified as one batch. The whole body: at most ${CLASSIFY_LIMITS.maxRequestBytes} bytes. The format is read from the bytes.`,
  required: true,
  content: {
    "image/png": { schema: z.string().openapi({ format: "binary" }) },
    "image/jpeg": { schema: z.string().openapi({ format: "binary" }) },
    "image/webp": { schema: z.string().openapi({ format: "binary" }) },
    "multipart/form-data": { schema: z.object({ image: z.array(z.string().openapi({ format: "binary" })) }) },
  },
};

const examples = {
  description: `Labelled examples, at most ${FINETUNE_LIMITS.maxExamplesPerCall} a call (labels 1-${FINETUNE_LIMITS.maxLabelLength} characters; a classifier holds at most ${FINETUNE_LIMITS.maxClasses} classes): multipart image parts with label fields (the i-th label for the i-th image, or one for all), or JSON with base64 images. Images obey the classify limits.`,
  required: true,
  content: {
    "multipart/form-data": { schema: z.object({ image: z.array(z.string().openapi({ format: "binary" })), label: z.array(z.string()), classifier: z.string().optional() }) },
    "application/json": { schema: z.object({ classifier: z.string().optional(), examples: z.array(z.object({ image: z.string().openapi({ description: "base64, or a data: URL" }), label: z.string() })) }) },
  },
};

const registration = {
  description: `The ONNX file (part model, at most ${REGISTRATION_LIMITS.maxModelBytes} bytes; the whole body at most ${REGISTRATION_LIMITS.maxRequestBytes}) and the settings \`npm run models:add\` takes, as text fields: id and labels (one per line or a JSON array, at most ${REGISTRATION_LIMITS.maxLabels}) are required; the rest are read from the graph or the preset unless given.`,
  required: true,
  content: {
    "multipart/form-data": {
      schema: z.object({
        model: z.string().openapi({ format: "binary" }),
        id: z.string().openapi({ example: "pets" }),
        labels: z.string().openapi({ description: "One label per line, or a JSON array; a text field or a file." }),
        preset: z.enum(["imagenet", "cifar10", "mnist"]).optional(),
        layout: z.enum(["NCHW", "NHWC"]).optional(),
        channel_order: z.enum(["rgb", "bgr"]).optional(),
        size: z.string().optional(), height: z.string().optional(), width: z.string().optional(),
        mean: z.string().optional().openapi({ example: "0.485,0.456,0.406" }), std: z.string().optional(), scale: z.string().optional(),
        resize: z.enum(["shorter-side", "center-crop", "stretch"]).optional(), shorter_side: z.string().optional(),
        mirrorable: z.enum(["true", "false"]).optional(), output: z.string().optional(), name: z.string().optional(), dataset: z.string().optional(),
      }),
    },
  },
};

const classifyExample = { model: { id: "lenet", version: 1 }, results: [{ image: "body", format: "png", width: 28, height: 28, predictions: [{ label: "7", index: 7, probability: 0.9999 }] }], timing: { provider: "wasm", decodeMs: 0, queueMs: 0, inferenceMs: 1, batch: { images: 1, requests: 1 }, flipAverage: false, translateAverage: false, coldStart: false } };
const classifierExample = { id: "shapes", backbone: { id: "lenet", version: 1 }, init: "empty", createdAt: "2026-12-02T10:00:00.000Z", embeddingSize: 500, version: 1, labels: [], examples: 0, baseExemplars: 0 };
const finetuneExample = { classifier: { id: "shapes", version: 2 }, labels: ["seven", "two"], metrics: { loss: 0.0001, accuracy: 1, accuracyBefore: 0, newClasses: ["seven", "two"], replayed: 0, steps: 60, taught: 2, examples: 2, classes: 2, updateMs: 10 }, timing: { ...classifyExample.timing, batch: { images: 2, requests: 1 }, embedMs: 1, updateMs: 7, totalMs: 23 } };

const paths: RouteConfig[] = [
  {
    method: "post", path: "/classify", tags: ["classify"], security: withKey,
    summary: "Classify with the default model, ?model=, or ?classifier=",
    request: { query: ClassifyQuery, body: images },
    responses: { 200: { description: "Predictions per image, with timings.", content: json(ClassifyAnswer, classifyExample) }, ...problems(400, 401, 404, 409, 413, 415, 422, 429, 503) },
  },
  {
    method: "post", path: "/v1/models/{id}/classify", tags: ["classify"], security: withKey, summary: "Classify with model id",
    request: { params: idParam("A served model's id."), query: ClassifyQuery.omit({ model: true, classifier: true }), body: images },
    responses: { 200: { description: "Predictions per image, with timings.", content: json(ClassifyAnswer, classifyExample) }, ...problems(400, 401, 404, 413, 415, 422, 429, 503) },
  },
  {
    method: "get", path: "/v1/models", tags: ["models"], summary: "The served models, summarised, and the default",
    responses: { 200: { description: "The catalog.", content: json(ModelList) }, ...problems() },
  },
  {
    method: "post", path: "/v1/models", tags: ["models"], security: withKey, summary: "Register an ONNX classifier: served everywhere within seconds, no redeploy",
    request: { body: registration },
    responses: {
      201: { description: "The new version, validated in the Worker (Location: its URL).", content: json(RegisteredModel) },
      ...problems(400, 401, 403, 409, 413, 415, 422, 429, 503),
    },
  },
  {
    method: "get", path: "/v1/models/{id}", tags: ["models"], summary: "A model's manifest",
    request: { params: idParam("A listed model's id."), query: z.object({ version: ClassifyQuery.shape.version }) },
    responses: { 200: { description: "Its manifest.json.", content: json(Manifest) }, ...problems(400, 404) },
  },
  {
    method: "delete", path: "/v1/models/{id}", tags: ["models"], security: withKey, summary: "Delete a registered model, every version",
    request: { params: idParam("A registered model's id.") },
    responses: { 200: { description: "The versions deleted.", content: json(ModelDeletedAnswer) }, ...problems(401, 403, 404, 429, 503) },
  },
  {
    method: "get", path: "/v1/models/{id}/model.onnx", tags: ["models"], security: withKey, summary: "A model's ONNX file, its sha256 as the ETag",
    request: { params: idParam("A servable model's id."), headers: z.object({ "if-none-match": z.string().optional() }) },
    responses: {
      200: { description: "The artifact.", content: { "application/octet-stream": { schema: z.string().openapi({ format: "binary" }) } } },
      304: { description: "If-None-Match matched the sha256." },
      ...problems(401, 404, 422, 429, 503),
    },
  },
  {
    method: "post", path: "/finetune", tags: ["classifiers"], security: withKey, summary: "Teach a classifier labelled examples: a new version",
    request: { query: z.object({ classifier: z.string().optional().openapi({ description: "The classifier (or a classifier field in the body).", example: "shapes" }), provider: ClassifyQuery.shape.provider, timeout_ms: ClassifyQuery.shape.timeout_ms }), body: examples },
    responses: { 200: { description: "The new version and its training metrics.", content: json(FinetuneAnswer, finetuneExample) }, ...problems(400, 401, 403, 404, 409, 413, 415, 422, 429, 503) },
  },
  {
    method: "post", path: "/v1/classifiers", tags: ["classifiers"], security: withKey, summary: "Create a classifier on a backbone",
    request: { body: { required: true, content: json(CreateClassifierBody, { id: "shapes", backbone: "lenet", init: "empty" }) } },
    responses: { 201: { description: "The classifier at version 1 (Location: its URL).", content: json(ClassifierInfo, classifierExample) }, ...problems(400, 401, 403, 404, 409, 422, 429, 503) },
  },
  {
    method: "get", path: "/v1/classifiers/{id}", tags: ["classifiers"], security: withKey, summary: "A classifier's backbone, latest version, labels and examples",
    request: { params: idParam("A classifier's id (a served model's id is its own read-only classifier).") },
    responses: { 200: { description: "The classifier.", content: json(ClassifierInfo, classifierExample) }, ...problems(400, 401, 404, 429) },
  },
  {
    method: "delete", path: "/v1/classifiers/{id}", tags: ["classifiers"], security: withKey, summary: "Delete a classifier with its versions and examples",
    request: { params: idParam("A classifier's id.") },
    responses: { 200: { description: "What was deleted.", content: json(DeletedAnswer) }, ...problems(400, 401, 403, 404, 429, 503) },
  },
  {
    method: "get", path: "/v1/classifiers/{id}/versions", tags: ["classifiers"], security: withKey, summary: "Every version, newest first, with its metrics",
    request: { params: idParam("A classifier's id.") },
    responses: { 200: { description: "The versions.", content: json(VersionList) }, ...problems(400, 401, 404, 429) },
  },
  {
    method: "post", path: "/v1/classifiers/{id}/examples", tags: ["classifiers"], security: withKey, summary: "The same as POST /finetune?classifier={id}",
    request: { params: idParam("A classifier's id."), query: z.object({ provider: ClassifyQuery.shape.provider, timeout_ms: ClassifyQuery.shape.timeout_ms }), body: examples },
    responses: { 200: { description: "The new version and its training metrics.", content: json(FinetuneAnswer, finetuneExample) }, ...problems(400, 401, 403, 404, 409, 413, 415, 422, 429, 503) },
  },
  {
    method: "post", path: "/v1/classifiers/{id}/rollback", tags: ["classifiers"], security: withKey, summary: "A new version with an earlier version's head",
    request: { params: idParam("A classifier's id."), body: { required: true, content: json(RollbackBody, { version: 2 }) } },
    responses: { 201: { description: "The new version.", content: json(RollbackAnswer) }, ...problems(400, 401, 403, 404, 429, 503) },
  },
  {
    method: "post", path: "/v1/classifiers/{id}/classify", tags: ["classify"], security: withKey, summary: "Classify with a classifier's latest version, or ?version=N",
    request: { params: idParam("A classifier's id."), query: ClassifyQuery.omit({ model: true, classifier: true }), body: images },
    responses: { 200: { description: "Predictions per image, with the classifier and timings.", content: json(ClassifyAnswer) }, ...problems(400, 401, 404, 409, 413, 415, 422, 429, 503) },
  },
  {
    method: "get", path: "/healthz", tags: ["operations"], summary: "Where models run, memory, resident models, batchers",
    responses: { 200: { description: "The isolate's state.", content: json(Health) }, ...problems() },
  },
  {
    method: "get", path: "/metrics", tags: ["operations"], security: withKey, summary: "This isolate's counters and histograms (Prometheus text format 0.0.4)",
    responses: { 200: { description: "Metrics of the isolate that answered (workers/README.md, Metrics).", content: { "text/plain": { schema: z.string() } } }, ...problems(401, 429) },
  },
  {
    method: "get", path: "/openapi.json", tags: ["operations"], summary: "This document",
    responses: { 200: { description: "OpenAPI 3.1.", content: { "application/json": { schema: z.record(z.string(), z.unknown()) } } } },
  },
];
for (const path of paths) registry.registerPath(path);

let document: ReturnType<OpenApiGeneratorV31["generateDocument"]> | undefined;

/**
 * The document, generated once per isolate.
 *
 * @example
 * app.get("/openapi.json", (c) => c.json(openApiDocument()));
 */
export function openApiDocument() {
  document ??= new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: "3.1.0",
    info: {
      title: "cnn-edge",
      version: "1",
      description:
        "Classify images with CNNs served from a Cloudflare Worker, and fine-tune classifier heads on them. Every refusal is an RFC 9457 problem (application/problem+json) with a stable type urn:cnn-edge:problem:<slug> and the request's requestId; every answer carries x-request-id, and model answers Server-Timing. The interactive reference is at /docs; the playground at /.",
    },
    servers: [{ url: "/" }],
    tags: [
      { name: "classify", description: "Classification with a model or a classifier." },
      { name: "models", description: "The model catalog." },
      { name: "classifiers", description: "Fine-tunable classifiers: a frozen backbone and a head that learns, versioned in a Durable Object." },
      { name: "operations", description: "Health, metrics and this document." },
    ],
  });
  return document;
}
