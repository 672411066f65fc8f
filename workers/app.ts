/**
 * cnn-edge's HTTP API: each feature lives in its own folder and contributes its routes here.
 * The same app serves from the Worker (workers/index.ts) and from the Node GPU host
 * (workers/hosts/node); the host's entry point picks the inference engine.
 */
import { Hono, type Context } from "hono";
import { classifierRoutes } from "./classifiers/routes";
import { classifyRoutes } from "./classify/routes";
import { admission } from "./admission/isolate-admission";
import { parseKeys } from "./auth/api-keys";
import { CLASSIFY_LIMITS } from "./classify/limits";
import { providerPreference } from "./classify/options";
import { discardBody } from "./classify/request";
import type { AppEnv, Env } from "./env";
import { MODEL_MEMORY_BUDGET_BYTES } from "./inference/memory-budget";
import { batchingStats, currentEngine, residentModels, runtimeWarmUp } from "./inference/onnx-session";
import { builtInIds } from "./models/catalog";
import { modelRoutes } from "./models/routes";
import { registryRoutes } from "./registry/routes";
import { observeRequests } from "./observability/access-log";
import { openApiDocument } from "./openapi/document";
import { PROMETHEUS_CONTENT_TYPE } from "./observability/prometheus";
import { renderMetrics } from "./observability/service-metrics";
import { requireAccess } from "./auth/require-access";
import { requestIdFor } from "./observability/request-id";
import { MethodNotAllowedError, NotFoundError, problemResponse, renderProblem } from "./problems/problems";

const app = new Hono<AppEnv>();
app.use(observeRequests());

app.get("/healthz", async (c) =>
  c.json({
    status: "ok",
    models: builtInIds(),
    defaultModel: c.env.DEFAULT_MODEL,
    auth: { classify: c.env.CLASSIFY_ACCESS === "public" ? "public" : "key", writeKeysConfigured: parseKeys(c.env.API_KEYS).length > 0 },
    engine: {
      host: currentEngine().hostName,
      webgpu: await currentEngine().webGpuStatus(),
      defaultProvider: providerPreference(undefined, c.env.EXECUTION_PROVIDER),
    },
    memory: {
      onnxRuntimeHeapBytes: currentEngine().heapBytes(),
      runtimeWarmUp: runtimeWarmUp(),
      modelBudgetBytes: MODEL_MEMORY_BUDGET_BYTES,
      residentModels: residentModels(),
    },
    batching: batchingStats(),
    admission: admission.stats(),
  }),
);
// This isolate's counters and histograms (workers/observability/service-metrics.ts), behind the
// same rule as classify: a key where CLASSIFY_ACCESS is "key" (production).
app.get("/metrics", requireAccess("classify"), (c) => c.body(renderMetrics(), 200, { "content-type": PROMETHEUS_CONTENT_TYPE }));
// The API's description, generated from the schemas the routes validate with; /docs (a static
// asset, workers/playground/docs.html) renders it.
app.get("/openapi.json", (c) => c.json(openApiDocument()));
app.route("/", classifyRoutes);
app.route("/", modelRoutes);
app.route("/", registryRoutes);
app.route("/", classifierRoutes);

// Known paths with the wrong method get 405 and an Allow header rather than a bare 404.
const ROUTE_METHODS: [RegExp, string[]][] = [
  [/^\/classify$/, ["POST"]],
  [/^\/v1\/models\/[^/]+\/classify$/, ["POST"]],
  [/^\/v1\/models$/, ["GET", "POST"]],
  [/^\/v1\/models\/[^/]+$/, ["GET", "DELETE"]],
  [/^\/v1\/models\/[^/]+\/model\.onnx$/, ["GET"]],
  [/^\/healthz$/, ["GET"]],
  [/^\/metrics$/, ["GET"]],
  [/^\/openapi\.json$/, ["GET"]],
  [/^\/finetune$/, ["POST"]],
  [/^\/v1\/classifiers$/, ["POST"]],
  [/^\/v1\/classifiers\/[^/]+$/, ["GET", "DELETE"]],
  [/^\/v1\/classifiers\/[^/]+\/versions$/, ["GET"]],
  [/^\/v1\/classifiers\/[^/]+\/(examples|rollback|classify)$/, ["POST"]],
];

/** Every refusal: the unread body drained first (see discardBody), then the problem. */
async function refuse(err: unknown, c: Context<AppEnv>): Promise<Response> {
  await discardBody(c.req.raw, CLASSIFY_LIMITS.maxRequestBytes);
  return problemResponse(err, c);
}

app.notFound((c) => {
  const path = new URL(c.req.url).pathname;
  const known = ROUTE_METHODS.find(([pattern]) => pattern.test(path));
  return refuse(known ? new MethodNotAllowedError(c.req.method, known[1]) : new NotFoundError(path), c);
});
app.onError(refuse);

/**
 * The app's fetch handler for a host's entry point: whatever escapes Hono's own error handling
 * (a refusal that fails to render, say) still answers a problem+json 500.
 *
 * @example
 * export default { fetch: handleRequest };
 */
export async function handleRequest(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  try {
    return await app.fetch(request, env, ctx);
  } catch (err) {
    return renderProblem(err, request.url, requestIdFor(request.headers));
  }
}

export default app;
