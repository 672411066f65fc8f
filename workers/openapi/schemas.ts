/**
 * The API's schemas, written once and used twice: the routes parse their query parameters and
 * JSON bodies with them (`parseRequest`), and `document.ts` describes every route with the same
 * objects, so the OpenAPI document cannot say one thing while a route checks another. Each
 * refusal's wording lives in its schema and is the one the routes answered before the schemas.
 */
import { extendZodWithOpenApi } from "@asteasolutions/zod-to-openapi";
import { z } from "zod";
import { PROVIDER_PREFERENCES } from "../engine/engine";
import { MAX_TIMEOUT_MS } from "../admission/deadline";
import { CLASSIFIER_ID } from "../classifiers/limits";
import { InvalidParameterError } from "../problems/problems";

extendZodWithOpenApi(z);
export { z };

const positiveInteger = (name: string) =>
  z
    .string()
    .refine((value) => /^\d+$/.test(value) && Number(value) >= 1, { error: (issue) => `${name} must be a positive integer, not '${String(issue.input)}'.` });

const INCLUDABLE = ["logits", "embedding"] as const;

/** ?timeout_ms= of every route that runs a model (parsed by workers/admission/deadline.ts, before the body is read). */
const TimeoutMs = z
  .string()
  .refine((value) => /^\d+$/.test(value) && Number(value) >= 1 && Number(value) <= MAX_TIMEOUT_MS, { error: (issue) => `timeout_ms takes an integer number of milliseconds from 1 to ${MAX_TIMEOUT_MS}, not '${String(issue.input)}'.` })
  .optional()
  .openapi({
    description: `The client's deadline, ms from arrival (1 to ${MAX_TIMEOUT_MS}): a request predicted to miss it is refused before its body is read, and one whose deadline passes before its images run is answered 503 deadline-exceeded without running them.`,
    example: "2000",
  });

/** The query of POST /classify and POST /v1/models/{id}/classify. */
export const ClassifyQuery = z.object({
  model: z.string().optional().openapi({ description: "POST /classify only: the model to use instead of the deployment's DEFAULT_MODEL.", example: "resnet-edge" }),
  classifier: z.string().optional().openapi({ description: "POST /classify only: classify with this classifier's head instead of a model's own.", example: "shapes" }),
  version: positiveInteger("version").optional().openapi({ description: "That version of the classifier, or of the model (a registered model keeps its earlier versions), instead of the latest.", example: "2" }),
  top_k: positiveInteger("top_k").optional().openapi({ description: "Predictions per image, most probable first (default 5; above the number of labels returns them all).", example: "3" }),
  include: z
    .string()
    .refine((value) => value.split(",").filter(Boolean).every((name) => (INCLUDABLE as readonly string[]).includes(name)), {
      error: (issue) => `include takes ${INCLUDABLE.join(", ")}, not '${String(issue.input).split(",").find((name) => name && !(INCLUDABLE as readonly string[]).includes(name))}'.`,
    })
    .optional()
    .openapi({ description: "Raw outputs to add to each result, comma-separated: logits, embedding.", example: "logits" }),
  flip_average: z
    .enum(["true", "false"], { error: (issue) => `flip_average takes true or false, not '${String(issue.input)}'.` })
    .optional()
    .openapi({ description: "Models trained on mirrored images (manifest input.mirrorable): run each image's mirror in the same batch and answer the mean. Default: the model's (config.json flipAverage, else true).", example: "false" }),
  translate_average: z
    .enum(["true", "false"], { error: (issue) => `translate_average takes true or false, not '${String(issue.input)}'.` })
    .optional()
    .openapi({ description: "With flip averaging: also run each image shifted one pixel up-left and down-right (reflect-padded), with their mirrors, and answer airbench94's weighted mean of the six views: a few tenths of accuracy for three times the model time. Default false.", example: "true" }),
  provider: z
    .enum(PROVIDER_PREFERENCES as [string, ...string[]], { error: (issue) => `provider takes ${PROVIDER_PREFERENCES.join(", ")}, not '${String(issue.input)}'.` })
    .optional()
    .openapi({ description: "Execution provider (default: the deployment's EXECUTION_PROVIDER). The Worker has WASM only; webgpu answers 422 there.", example: "auto" }),
  timeout_ms: TimeoutMs,
});

/** ?version= of the classifier and model routes. */
export const VersionQuery = z.object({ version: ClassifyQuery.shape.version });

/** The body of POST /v1/classifiers. */
export const CreateClassifierBody = z
  .object({
    id: z
      .string({ error: () => "id must be 1-64 characters of a-z, 0-9, '-' and '_', starting with a letter or digit." })
      .regex(CLASSIFIER_ID, { error: () => "id must be 1-64 characters of a-z, 0-9, '-' and '_', starting with a letter or digit." })
      .openapi({ example: "shapes" }),
    backbone: z.string({ error: () => "backbone must be the id of a served model." }).openapi({ description: "A served model's id.", example: "lenet" }),
    init: z
      .enum(["empty", "pretrained"], { error: () => "init must be 'empty' or 'pretrained'." })
      .default("empty")
      .openapi({ description: "empty: no classes yet; pretrained: a copy of the model's own head and replay exemplars." }),
  })
  .openapi("CreateClassifier");

/** The body of POST /v1/classifiers/{id}/rollback. */
export const RollbackBody = z
  .object({
    version: z
      .union([z.number(), z.string()], { error: () => "version must be a positive integer, not ''." })
      .transform(String)
      .pipe(positiveInteger("version"))
      .openapi({ type: "integer", minimum: 1, example: 2 }),
  })
  .openapi("Rollback");

/**
 * Parse a request's query or JSON body with its schema; the first problem becomes a 400
 * invalid-parameter naming the field.
 *
 * @throws InvalidParameterError
 * @example
 * const { top_k } = parseRequest(ClassifyQuery, c.req.query());
 */
export function parseRequest<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  throw new InvalidParameterError(String(issue.path[0] ?? "body"), issue.message);
}

// ---- answers -----------------------------------------------------------------------------

const ModelRef = z.object({ id: z.string(), version: z.number().int() });

export const Problem = z
  .object({
    type: z.string().openapi({ example: "urn:cnn-edge:problem:invalid-parameter" }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    instance: z.string().optional(),
    requestId: z.string().optional().openapi({ description: "The answer's x-request-id, to quote when reporting it." }),
  })
  .catchall(z.unknown())
  .openapi("Problem", { description: "RFC 9457 problem details; extension members (limit, accepted, available, parameter, ...) where useful." });

const Prediction = z.object({ label: z.string(), index: z.number().int(), probability: z.number() });

export const ClassifyAnswer = z
  .object({
    model: ModelRef,
    classifier: ModelRef.optional(),
    results: z.array(
      z.object({
        image: z.string().openapi({ description: "`body`, or the multipart part's file name." }),
        format: z.enum(["png", "jpeg", "webp"]),
        width: z.number().int(),
        height: z.number().int(),
        predictions: z.array(Prediction),
        logits: z.array(z.number()).optional(),
        embedding: z.array(z.number()).optional(),
      }),
    ),
    timing: z.object({
      provider: z.enum(["wasm", "webgpu"]),
      decodeMs: z.number(),
      queueMs: z.number(),
      inferenceMs: z.number(),
      batch: z.object({ images: z.number().int(), requests: z.number().int() }),
      flipAverage: z.boolean(),
      translateAverage: z.boolean(),
      coldStart: z.boolean(),
      startup: z.object({ loadMs: z.number(), createMs: z.number(), prewarmed: z.boolean().optional() }).optional(),
    }),
  })
  .openapi("ClassifyAnswer");

export const ModelList = z
  .object({
    default: z.string(),
    models: z.array(
      z
        .object({
          id: z.string(),
          version: z.number().int(),
          name: z.string(),
          source: z.enum(["built-in", "registered"]).openapi({ description: "built-in: deployed from models/; registered: through POST /v1/models." }),
          versions: z.array(z.number().int()).optional().openapi({ description: "A registered model's versions, newest first (?version= pins one)." }),
          dataset: z.string(),
          labels: z.number().int(),
          input: z.object({ channels: z.number().int(), height: z.number().int(), width: z.number().int() }),
          metrics: z.record(z.string(), z.unknown()),
          bytes: z.number().int(),
          servable: z.boolean(),
          memoryBytes: z.number().int(),
          batching: z.object({ maxBatch: z.number().int(), windowMs: z.number() }),
          admission: z.object({ maxQueueImages: z.number().int(), maxQueueMs: z.number().int() }).openapi({ description: "Images that may wait for it and for how long before requests are refused (config.json admission)." }),
          flipAverage: z.boolean(),
        }),
    ),
  })
  .openapi("ModelList");

export const Manifest = z
  .object({ id: z.string(), version: z.number().int(), name: z.string(), labels: z.array(z.string()), input: z.record(z.string(), z.unknown()), artifact: z.object({ sha256: z.string(), bytes: z.number().int() }).catchall(z.unknown()) })
  .catchall(z.unknown())
  .openapi("Manifest", { description: "The model's manifest.json (models/README.md describes every field)." });

export const ClassifierInfo = z
  .object({
    id: z.string(),
    backbone: ModelRef,
    init: z.enum(["empty", "pretrained"]),
    createdAt: z.string(),
    embeddingSize: z.number().int(),
    version: z.number().int(),
    labels: z.array(z.string()),
    examples: z.number().int(),
    baseExemplars: z.number().int(),
    readOnly: z.literal(true).optional().openapi({ description: "A served model's own classifier." }),
  })
  .openapi("ClassifierInfo");

const FinetuneMetrics = z
  .object({ loss: z.number(), accuracy: z.number(), accuracyBefore: z.number(), newClasses: z.array(z.string()), replayed: z.number().int(), steps: z.number().int(), taught: z.number().int(), examples: z.number().int(), classes: z.number().int(), updateMs: z.number() })
  .openapi("FinetuneMetrics");

export const VersionList = z
  .object({
    classifier: z.string(),
    versions: z.array(
      z.object({ version: z.number().int(), parent: z.number().int().nullable(), kind: z.enum(["create", "finetune", "rollback"]), createdAt: z.string(), labels: z.array(z.string()), examples: z.number().int(), metrics: FinetuneMetrics.optional() }),
    ),
  })
  .openapi("VersionList");

export const FinetuneAnswer = z
  .object({
    classifier: ModelRef,
    labels: z.array(z.string()),
    metrics: FinetuneMetrics,
    timing: ClassifyAnswer.shape.timing.extend({ embedMs: z.number(), updateMs: z.number(), totalMs: z.number() }),
  })
  .openapi("FinetuneAnswer");

export const RollbackAnswer = z
  .object({ classifier: ModelRef, rolledBackTo: z.number().int(), labels: z.array(z.string()), examples: z.number().int() })
  .openapi("RollbackAnswer");

export const DeletedAnswer = z.object({ deleted: ClassifierInfo }).openapi("Deleted");

/** POST /v1/models: the new version's summary (as GET /v1/models lists it) and its manifest. */
export const RegisteredModel = ModelList.shape.models.element
  .extend({ registeredAt: z.string(), manifest: Manifest })
  .openapi("RegisteredModel");

export const ModelDeletedAnswer = z.object({ deleted: z.object({ id: z.string(), versions: z.array(z.number().int()) }) }).openapi("ModelDeleted");

export const Health = z
  .object({ status: z.literal("ok"), models: z.array(z.string()), defaultModel: z.string(), auth: z.record(z.string(), z.unknown()), engine: z.record(z.string(), z.unknown()), memory: z.record(z.string(), z.unknown()), batching: z.record(z.string(), z.unknown()), admission: z.record(z.string(), z.unknown()) })
  .openapi("Health");
