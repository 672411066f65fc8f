/**
 * RFC 9457 problem details. Every client error the API can produce is a named subclass of
 * `ProblemError`, so a route throws and the app's error handler renders one consistent body.
 */
/** What rendering a problem needs of a Hono context: the URL and request id, and where to note the problem type. */
interface RequestWithId {
  req: { url: string };
  get(key: "requestId"): string | undefined;
  set(key: "problem", value: string): void;
  set(key: "refusal", value: { reason: string; retryAfterS: number; model?: string }): void;
}
import type { ContentfulStatusCode } from "hono/utils/http-status";

export const PROBLEM_CONTENT_TYPE = "application/problem+json";

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  [extension: string]: unknown;
}

/**
 * Base of every error that becomes a problem+json response.
 *
 * @example
 * throw new ProblemError(400, "invalid-parameter", "Invalid parameter", "top_k must be >= 1");
 */
export class ProblemError extends Error {
  /** Response headers that belong with this problem (Allow, WWW-Authenticate). */
  headers: Record<string, string> = {};

  constructor(
    readonly status: ContentfulStatusCode,
    readonly slug: string,
    readonly title: string,
    detail: string,
    readonly extensions: Record<string, unknown> = {},
  ) {
    super(detail);
    this.name = new.target.name;
  }

  toBody(instance?: string): ProblemBody {
    return {
      type: `urn:cnn-edge:problem:${this.slug}`,
      title: this.title,
      status: this.status,
      detail: this.message,
      ...(instance ? { instance } : {}),
      ...this.extensions,
    };
  }
}

export class InvalidParameterError extends ProblemError {
  constructor(parameter: string, detail: string) {
    super(400, "invalid-parameter", "Invalid parameter", detail, { parameter });
  }
}

export class InvalidRequestError extends ProblemError {
  constructor(detail: string) {
    super(400, "invalid-request", "Invalid request", detail);
  }
}

export class UnsupportedMediaTypeError extends ProblemError {
  constructor(detail: string, accepted: readonly string[]) {
    super(415, "unsupported-media-type", "Unsupported media type", detail, { accepted });
  }
}

export class PayloadTooLargeError extends ProblemError {
  constructor(detail: string, limit: Record<string, number>) {
    super(413, "payload-too-large", "Payload too large", detail, { limit });
  }
}

/** The client stopped sending before its body ended (it hung up, or the connection broke): a client fault, never a 500. */
export class IncompleteBodyError extends ProblemError {
  /** `received`: the bytes that came, where the body was read as a stream and counted. */
  constructor(received: number | undefined, declared: number | undefined) {
    const of = declared === undefined ? "" : ` of the ${declared} its Content-Length declared`;
    const ended = received === undefined ? `before the ${declared} bytes its Content-Length declared` : `after ${received} bytes${of}`;
    super(400, "incomplete-body", "Incomplete request body", `The request body ended ${ended}: the connection was lost before it was sent whole.`);
  }
}

export class ImageTooLargeError extends ProblemError {
  constructor(detail: string, limit: Record<string, number>) {
    super(413, "image-too-large", "Image too large", detail, { limit });
  }
}

export class ImageDecodeError extends ProblemError {
  constructor(detail: string) {
    super(422, "image-decode-failed", "Image could not be decoded", detail);
  }
}

export class UnknownModelError extends ProblemError {
  constructor(id: string, available: readonly string[]) {
    super(404, "unknown-model", "Unknown model", `No model '${id}' is served here.`, { available });
  }
}

export class UnknownModelVersionError extends ProblemError {
  constructor(id: string, version: number, versions: readonly number[]) {
    super(404, "unknown-model-version", "Unknown model version", `Model '${id}' has no version ${version}; it has ${versions.join(", ")}.`, { model: id, version, versions });
  }
}

/** An uploaded model the Worker cannot serve (not ONNX, truncated, an operator or a shape the runtime lacks, over the memory budget). */
export class ModelRefusedError extends ProblemError {
  constructor(detail: string, extensions: Record<string, unknown> = {}) {
    super(422, "model-refused", "Model cannot be served", detail, extensions);
  }
}

/** An id a registration may not take: a built-in model's, or an existing classifier's. */
export class ModelIdTakenError extends ProblemError {
  constructor(id: string, by: "built-in model" | "classifier") {
    super(409, "model-id-taken", "Model id taken", `'${id}' is already a ${by}'s id; register the model under another.`, { model: id });
  }
}

/** Built-in models change with a deployment, not through the API. */
export class BuiltInModelError extends ProblemError {
  constructor(id: string) {
    super(403, "model-built-in", "Model is built in", `'${id}' is built into this deployment (models/${id}/); only models registered through POST /v1/models can be deleted.`, { model: id });
  }
}

/** Another upload is being validated in this isolate: each needs a runtime of its own, and an isolate has memory for one. */
export class RegistrationBusyError extends ProblemError {
  constructor(retryAfterSeconds: number) {
    super(503, "registration-busy", "Another registration is in progress", `This isolate is validating another model; retry in ${retryAfterSeconds} s.`);
    this.headers = { "retry-after": String(retryAfterSeconds) };
  }
}

/** The server cannot load a model it lists: a deployment fault, not the client's. */
export class ModelUnavailableError extends ProblemError {
  constructor(id: string, detail: string) {
    super(503, "model-unavailable", "Model unavailable", `Model '${id}' cannot be loaded. ${detail}`, { model: id });
  }
}

/**
 * A model too large for a Worker isolate: listed, so that its manifest and accuracy can be
 * read, but never loaded, since loading it would end in an out-of-memory kill.
 */
export class ModelNotServableError extends ProblemError {
  constructor(id: string, memoryBytes: number, budgetBytes: number, alternatives: readonly string[]) {
    const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
    const instead = alternatives.length ? ` Use ${alternatives.join(" or ")} instead.` : "";
    super(
      422,
      "model-not-servable",
      "Model too large for a Worker isolate",
      `Serving '${id}' takes ${mib(memoryBytes)}; a model may use ${mib(budgetBytes)} of a Worker isolate's 128 MiB.${instead}`,
      { model: id, memoryBytes, budgetBytes, alternatives },
    );
  }
}

/** A session evicted (to make room for another model) while this request waited for it. */
export class ModelEvictedError extends ProblemError {
  constructor(id: string) {
    super(503, "model-evicted", "Model evicted", `Model '${id}' was unloaded to make room for another; retry the request.`, {
      model: id,
    });
  }
}

/**
 * The batch this request's images were in could not be run by any of its requests (their
 * contexts ended before it was their turn) and was dropped so that the model serves the rest.
 */
export class BatchAbandonedError extends ProblemError {
  constructor() {
    super(503, "batch-abandoned", "Batch abandoned", "The batch these images were queued in was abandoned: no request of it could run it. Retry the request.");
    this.headers = { "retry-after": "1" };
  }
}

/** Why a request was refused to protect the service (workers/admission): each a `reason` in the problem, the log and the metrics. */
export type RefusalReason = "memory" | "queue-full" | "queue-time" | "deadline" | "rate-limit";

/**
 * A request refused so that the isolate keeps serving the rest: 503 (or 429 for a rate limit),
 * always with `Retry-After`, and cheap: raised before the body is read wherever that can be known.
 */
export class RefusalError extends ProblemError {
  constructor(
    status: 503 | 429,
    slug: string,
    title: string,
    detail: string,
    readonly reason: RefusalReason,
    readonly retryAfterSeconds: number,
    extensions: Record<string, unknown> = {},
  ) {
    super(status, slug, title, detail, { reason, retryAfterSeconds, ...extensions });
    this.headers = { "retry-after": String(retryAfterSeconds) };
  }
}

/** The isolate is over a limit that keeps it alive and answering in time: its in-flight memory, or a model's queue (images or wait). */
export class OverloadedError extends RefusalError {
  constructor(reason: "memory" | "queue-full" | "queue-time", detail: string, retryAfterSeconds: number, extensions: Record<string, unknown> = {}) {
    super(503, "overloaded", "Service overloaded", detail, reason, retryAfterSeconds, extensions);
  }
}

/** The client's own deadline (timeout_ms) passed, or would pass before the request could be answered. */
export class DeadlineExceededError extends RefusalError {
  constructor(detail: string, retryAfterSeconds: number, extensions: Record<string, unknown> = {}) {
    super(503, "deadline-exceeded", "Deadline exceeded", detail, "deadline", retryAfterSeconds, extensions);
  }
}

/** The API key used its share of requests for this period (the Workers Rate Limiting binding). */
export class RateLimitedError extends RefusalError {
  constructor(scope: string, retryAfterSeconds: number) {
    super(429, "rate-limited", "Rate limit exceeded", `This API key has sent more ${scope} requests than its limit allows in this period; retry in ${retryAfterSeconds} s.`, "rate-limit", retryAfterSeconds, { scope });
  }
}

/** The execution provider a request or deployment forces cannot run the model on this host. */
export class ProviderUnavailableError extends ProblemError {
  constructor(provider: string, detail: string, available: readonly string[]) {
    super(422, "provider-unavailable", "Execution provider unavailable", detail, { provider, available });
  }
}

/** A route that needs a part of the Workers platform this host does not have (the Node host has no Durable Objects). */
export class HostLacksFeatureError extends ProblemError {
  constructor(host: string, feature: string) {
    super(501, "not-on-this-host", "Not available on this host", `The ${host} host has no ${feature}; use the Worker for this route.`, { host, feature });
  }
}

export class NotFoundError extends ProblemError {
  constructor(path: string) {
    super(404, "not-found", "Not found", `No route matches ${path}.`);
  }
}

export class MethodNotAllowedError extends ProblemError {
  constructor(method: string, allowed: readonly string[]) {
    super(405, "method-not-allowed", "Method not allowed", `${method} is not allowed here; use ${allowed.join(", ")}.`, {
      allowed,
    });
    this.headers = { allow: allowed.join(", ") };
  }
}

const BEARER_REALM = 'Bearer realm="cnn-edge"';

/** No Authorization header on a route that needs a key. */
export class AuthenticationRequiredError extends ProblemError {
  constructor(access: "write" | "classify") {
    const which = access === "write" ? "an API key (API_KEYS)" : "an API key (API_KEYS or CLASSIFY_KEYS)";
    super(401, "authentication-required", "Authentication required", `This route needs ${which}: send 'Authorization: Bearer <key>'.`);
    this.headers = { "www-authenticate": BEARER_REALM };
  }
}

/** A bearer token that is none of the configured keys. */
export class InvalidApiKeyError extends ProblemError {
  constructor() {
    super(401, "invalid-api-key", "Invalid API key", "The API key is not valid here.");
    this.headers = { "www-authenticate": `${BEARER_REALM}, error="invalid_token"` };
  }
}

/** A valid classify-only key on a route that changes state. */
export class InsufficientScopeError extends ProblemError {
  constructor() {
    super(403, "insufficient-scope", "Key not allowed here", "This key may classify and read, not change state; use a key from API_KEYS.");
    this.headers = { "www-authenticate": `${BEARER_REALM}, error="insufficient_scope"` };
  }
}

/** A deployment without API_KEYS: its write routes are closed, not open. */
export class AuthNotConfiguredError extends ProblemError {
  constructor() {
    super(
      503,
      "auth-not-configured",
      "Write access not configured",
      "This deployment has no API keys, so routes that change state are closed. Its operator sets them with `wrangler secret put API_KEYS`.",
    );
  }
}

/**
 * Render any thrown value as problem+json: a `ProblemError` keeps its status; anything else is
 * an internal error whose details stay in the log, not in the response. The body carries the
 * request's id (workers/observability) as `requestId`, to quote when reporting it.
 *
 * @example
 * app.onError((err, c) => problemResponse(err, c));
 */
export function problemResponse(err: unknown, c: RequestWithId): Response {
  const response = renderProblem(err, c.req.url, c.get("requestId"));
  c.set("problem", err instanceof ProblemError ? err.slug : "internal-error");
  if (err instanceof RefusalError) {
    const model = err.extensions.model;
    c.set("refusal", { reason: err.reason, retryAfterS: err.retryAfterSeconds, ...(typeof model === "string" ? { model } : {}) });
  }
  return response;
}

/**
 * The same, for a request outside Hono: the Worker's last line of defence, so that a fault
 * nothing else caught still answers problem+json, not the runtime's plain text.
 *
 * @example
 * try { return await app.fetch(request, env, ctx); } catch (err) { return renderProblem(err, request.url, requestIdFor(request.headers)); }
 */
export function renderProblem(err: unknown, url: string, requestId?: string): Response {
  const problem =
    err instanceof ProblemError
      ? err
      : new ProblemError(500, "internal-error", "Internal server error", "The server failed to handle this request.");
  if (!(err instanceof ProblemError)) console.error(JSON.stringify({ message: "unhandled error", requestId, error: String((err as Error)?.stack ?? err) }));
  const headers: Record<string, string> = { ...problem.headers, "content-type": PROBLEM_CONTENT_TYPE, ...(requestId ? { "x-request-id": requestId } : {}) };
  const body = { ...problem.toBody(new URL(url).pathname), ...(requestId ? { requestId } : {}) };
  return new Response(JSON.stringify(body), { status: problem.status, headers });
}

export class UnknownClassifierError extends ProblemError {
  constructor(id: string) {
    super(404, "unknown-classifier", "Unknown classifier", `No classifier '${id}' exists. Create it with POST /v1/classifiers.`, {
      classifier: id,
    });
  }
}

export class ClassifierExistsError extends ProblemError {
  constructor(id: string) {
    super(409, "classifier-exists", "Classifier exists", `A classifier or model named '${id}' already exists.`, { classifier: id });
  }
}

/** Served models' own heads are never changed in place: they are copied, then fine-tuned. */
export class ReadOnlyClassifierError extends ProblemError {
  constructor(id: string) {
    super(
      403,
      "classifier-read-only",
      "Classifier is read-only",
      `'${id}' is a served model's own classifier. Fine-tune a copy: POST /v1/classifiers {"id": "my-${id}", "backbone": "${id}", "init": "pretrained"}.`,
      { classifier: id },
    );
  }
}

export class UnknownVersionError extends ProblemError {
  constructor(id: string, version: number, latest: number) {
    super(404, "unknown-version", "Unknown version", `Classifier '${id}' has no version ${version}; the latest is ${latest}.`, {
      classifier: id,
      version,
      latest,
    });
  }
}

export class TooManyClassesError extends ProblemError {
  constructor(id: string, classes: number, maxClasses: number) {
    super(422, "too-many-classes", "Too many classes", `This call would give '${id}' ${classes} classes; the limit is ${maxClasses}.`, {
      limit: { maxClasses },
    });
  }
}

export class EmptyClassifierError extends ProblemError {
  constructor(id: string) {
    super(409, "classifier-empty", "Classifier has no classes", `Classifier '${id}' has learned no classes yet; teach it with POST /finetune.`, {
      classifier: id,
    });
  }
}

/** The served backbone changed since the classifier was created: its embeddings mean something else now. */
export class BackboneChangedError extends ProblemError {
  constructor(id: string, backbone: string, trainedOn: number, served: number) {
    super(
      409,
      "backbone-changed",
      "Backbone changed",
      `Classifier '${id}' was trained on ${backbone} v${trainedOn}, but v${served} is served now.`,
      { classifier: id, backbone, trainedOn, served },
    );
  }
}

/**
 * A problem as plain data, for crossing a Durable Object RPC boundary (which keeps an error's
 * message but not its class or fields).
 *
 * @example
 * const outcome = await stub.learn(batch); // { ok: ... } or { problem: ... }
 * return unwrap(outcome);
 */
export type Outcome<T> = { ok: T; problem?: undefined } | { ok?: undefined; problem: { status: number; slug: string; title: string; detail: string; extensions: Record<string, unknown> } };

/** Run `body`, returning its value or the ProblemError it threw as data. */
export function outcome<T>(body: () => T): Outcome<T> {
  try {
    return { ok: body() };
  } catch (err) {
    if (!(err instanceof ProblemError)) throw err;
    return { problem: { status: err.status, slug: err.slug, title: err.title, detail: err.message, extensions: err.extensions } };
  }
}

/** The value of an Outcome, or its problem thrown again as a ProblemError. */
export function unwrap<T>(result: Outcome<T>): T {
  if (result.problem) {
    const { status, slug, title, detail, extensions } = result.problem;
    throw new ProblemError(status as ContentfulStatusCode, slug, title, detail, extensions);
  }
  return result.ok as T;
}
