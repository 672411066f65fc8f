/**
 * The service's metrics, counted per isolate from each request's log line (access-log.ts) and
 * served at GET /metrics. On Cloudflare one deployment runs in many isolates at once, each with
 * its own counters that start at zero whenever an isolate starts: a scrape sees one isolate
 * (labelled by `cnn_edge_isolate_info`), so sums across a deployment come from Workers Analytics
 * Engine (analytics-events.ts) instead.
 */
import { admission } from "../admission/isolate-admission";
import { currentEngine, residentModels } from "../inference/onnx-session";
import type { AccessLogLine } from "./log-line";
import { Counter, Gauge, Histogram, Registry, type Labels } from "./prometheus";

/** Seconds, from a millisecond to 10 s: a LeNet run to a cold ResNet load. */
const SECONDS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Images in one model run (the batcher's batch sizes go up to 64). */
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64];

let isolate: { id: string; startedAt: number } | undefined;

/** This isolate's id and the time of its first request (global scope's clock reads 0 on Cloudflare). */
function isolateInfo(): { id: string; startedAt: number } {
  isolate ??= { id: crypto.randomUUID(), startedAt: Date.now() };
  return isolate;
}

const registry = new Registry();
const requests = registry.add(new Counter("cnn_edge_requests_total", "Requests answered, by route pattern, model and status class.", ["route", "model", "status_class"]));
const requestSeconds = registry.add(new Histogram("cnn_edge_request_duration_seconds", "Time from a request's arrival to its answer, by route pattern and model.", ["route", "model"], SECONDS_BUCKETS));
const decodeSeconds = registry.add(new Histogram("cnn_edge_decode_duration_seconds", "Image decoding and preprocessing per request, by model.", ["model"], SECONDS_BUCKETS));
const queueSeconds = registry.add(new Histogram("cnn_edge_queue_duration_seconds", "Time a request's images waited for their batch, by model.", ["model"], SECONDS_BUCKETS));
const inferenceSeconds = registry.add(new Histogram("cnn_edge_inference_duration_seconds", "Model run of a request's batch, by model.", ["model"], SECONDS_BUCKETS));
const batchImages = registry.add(new Histogram("cnn_edge_batch_images", "Images in the model run that served a request, by model.", ["model"], BATCH_BUCKETS));
const coldStarts = registry.add(new Counter("cnn_edge_model_cold_starts_total", "Requests that had to create their model's session first, by model.", ["model"]));
const finetuneCalls = registry.add(new Counter("cnn_edge_finetune_calls_total", "Fine-tune calls that taught a classifier, by backbone model.", ["model"]));
const finetuneExamples = registry.add(new Counter("cnn_edge_finetune_examples_total", "Labelled examples learned, by backbone model.", ["model"]));
const versionsCreated = registry.add(new Counter("cnn_edge_classifier_versions_created_total", "Classifier versions created, by how (create, finetune, rollback).", ["kind"]));
const refusals = registry.add(new Counter("cnn_edge_refusals_total", "Requests refused to protect the service (workers/admission), by reason (memory, queue-full, queue-time, deadline, rate-limit) and model.", ["reason", "model"]));
registry.add(new Gauge("cnn_edge_queue_images", "Images waiting for each model in this isolate (decoding or queued for a batch), model@version.", () => Object.entries(admission.stats().queuedImages).map(([model, images]): [Labels, number] => [{ model }, images])));
registry.add(new Gauge("cnn_edge_admission_in_flight_bytes", "Bytes that requests in flight hold (bodies, decode buffers, model inputs).", () => [[{}, admission.stats().inFlightBytes]]));
registry.add(new Gauge("cnn_edge_admission_budget_bytes", "What requests in flight may hold together: the isolate's memory less ORT's heap and the runtime's margin.", () => [[{}, admission.stats().budgetBytes]]));
registry.add(new Gauge("cnn_edge_admission_backlog_seconds", "Estimated CPU work ahead of a new request in this isolate.", () => [[{}, admission.stats().backlogMs / 1000]]));
const problems = registry.add(new Counter("cnn_edge_problems_total", "Problem answers, by problem type and status.", ["type", "status"]));
registry.add(new Gauge("cnn_edge_resident_sessions", "Model sessions resident in this isolate (model@version:providers).", () => residentModels().map((session): [Labels, number] => [{ session }, 1])));
registry.add(new Gauge("cnn_edge_onnxruntime_heap_bytes", "onnxruntime's WASM heap in this isolate.", () => [[{}, currentEngine().heapBytes()]]));
registry.add(new Gauge("cnn_edge_isolate_info", "The isolate that answered this scrape, with the epoch second of its first request.", () => {
  const { id, startedAt } = isolateInfo();
  return [[{ isolate: id, started: String(Math.floor(startedAt / 1000)) }, 1]];
}));

const seconds = (ms: number | undefined) => (ms === undefined ? NaN : ms / 1000);

/**
 * Count a finished request.
 *
 * @example
 * recordRequestMetrics(accessLogLine({ requestId, method: "POST", route: "/classify", path: "/classify", status: 200, durationMs: 3.1 }, served));
 */
export function recordRequestMetrics(line: AccessLogLine): void {
  isolateInfo();
  const route = line.route ?? "unmatched";
  const model = line.model?.id ?? "";
  requests.inc({ route, model, status_class: `${Math.floor(line.status / 100)}xx` });
  requestSeconds.observe({ route, model }, seconds(line.durationMs));
  if (line.problem) problems.inc({ type: line.problem, status: String(line.status) });
  if (line.refusal) refusals.inc({ reason: line.refusal.reason, model: line.refusal.model?.split("@")[0] ?? model });
  if (line.model) {
    decodeSeconds.observe({ model }, seconds(line.timing?.decodeMs));
    queueSeconds.observe({ model }, seconds(line.timing?.queueMs));
    inferenceSeconds.observe({ model }, seconds(line.timing?.inferenceMs));
    if (line.batch) batchImages.observe({ model }, line.batch.images);
    if (line.coldStart) coldStarts.inc({ model });
  }
  if (line.classifierChange) {
    versionsCreated.inc({ kind: line.classifierChange.kind });
    if (line.classifierChange.kind === "finetune") {
      finetuneCalls.inc({ model });
      finetuneExamples.inc({ model }, line.classifierChange.examples ?? 0);
    }
  }
}

/**
 * This isolate's metrics in the Prometheus text format.
 *
 * @example
 * return c.text(renderMetrics(), 200, { "content-type": PROMETHEUS_CONTENT_TYPE });
 */
export function renderMetrics(): string {
  return registry.render();
}
