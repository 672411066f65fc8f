/**
 * Each request's log line as one Workers Analytics Engine data point, for the deployed
 * environments (wrangler.toml binds REQUEST_EVENTS there): Analytics Engine sums the points of
 * every isolate of a deployment, which per-isolate /metrics counters cannot. The column order is
 * the schema the README's queries read; change it only with them.
 *
 *   index1   model id, else the route pattern (the sampling key)
 *   blob1..6 route pattern, model id, status class, problem type, method, classifier id
 *   double1..10 status, duration ms, decode ms, queue ms, inference ms, batch images,
 *            cold start (0/1), model version, examples learned, classifier versions created
 */
import type { AccessLogLine } from "./log-line";

/** One data point, as Workers Analytics Engine's writeDataPoint takes it. */
export interface AnalyticsDataPoint {
  indexes: string[];
  blobs: string[];
  doubles: number[];
}

/** The part of an AnalyticsEngineDataset binding this file uses. */
export interface AnalyticsDataset {
  writeDataPoint(point: AnalyticsDataPoint): void;
}

/** The columns of one request's data point. */
export function analyticsDataPoint(line: AccessLogLine): AnalyticsDataPoint {
  const route = line.route ?? "unmatched";
  const model = line.model?.id ?? "";
  return {
    indexes: [(model || route).slice(0, 96)],
    blobs: [route, model, `${Math.floor(line.status / 100)}xx`, line.problem ?? "", line.method, line.classifier?.id ?? ""],
    doubles: [
      line.status,
      line.durationMs,
      line.timing?.decodeMs ?? 0,
      line.timing?.queueMs ?? 0,
      line.timing?.inferenceMs ?? 0,
      line.batch?.images ?? 0,
      line.coldStart ? 1 : 0,
      line.model?.version ?? 0,
      line.classifierChange?.examples ?? 0,
      line.classifierChange ? 1 : 0,
    ],
  };
}

/**
 * Write a request's data point where the binding exists (the deployed environments); writing
 * never throws into the request, since losing one point must not fail an answer.
 *
 * @example
 * writeAnalyticsEvent(c.env.REQUEST_EVENTS, line);
 */
export function writeAnalyticsEvent(dataset: AnalyticsDataset | undefined, line: AccessLogLine): void {
  if (!dataset) return;
  try {
    dataset.writeDataPoint(analyticsDataPoint(line));
  } catch (err) {
    console.error(JSON.stringify({ message: "analytics engine write failed", requestId: line.requestId, error: String(err) }));
  }
}
