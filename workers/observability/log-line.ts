/**
 * The shape of a request's log line, and how it is made from what a route served: the record
 * that the log, the metrics (service-metrics.ts) and Analytics Engine (analytics-events.ts) read.
 */
import type { TimingFigures } from "./server-timing";

/** What a route that ran a model served: the log line's model fields and the Server-Timing figures. */
export interface Served {
  model: { id: string; version: number };
  classifier?: { id: string; version: number };
  timing: TimingFigures & { batch?: { images: number; requests: number }; flipAverage?: boolean; coldStart?: boolean };
}

/** A classifier version a route created: how, and (fine-tuning) from how many examples. */
export interface ClassifierChange {
  kind: "create" | "finetune" | "rollback";
  examples?: number;
}

/** Why a request was refused to protect the service (workers/admission), and when to come back. */
export interface Refusal {
  reason: string;
  retryAfterS: number;
  /** The model (id@version) whose queue refused it, where one did. */
  model?: string;
}

export interface AccessLogLine {
  message: "request";
  requestId: string;
  method: string;
  /** The route's pattern (`/v1/models/:id/classify`), or null where none matched. */
  route: string | null;
  path: string;
  status: number;
  durationMs: number;
  /** The problem type's slug, for an answer that is a problem. */
  problem?: string;
  model?: Served["model"];
  classifier?: Served["classifier"];
  timing?: TimingFigures;
  batch?: { images: number; requests: number };
  coldStart?: boolean;
  classifierChange?: ClassifierChange;
  refusal?: Refusal;
}

/**
 * The log line of a finished request.
 *
 * @example
 * console.log(JSON.stringify(accessLogLine({ requestId: "r1", method: "GET", route: "/healthz", path: "/healthz", status: 200, durationMs: 0.4 })));
 */
export function accessLogLine(base: Omit<AccessLogLine, "message">, served?: Served): AccessLogLine {
  if (!served) return { message: "request", ...base };
  const { batch, coldStart, flipAverage: _flip, ...timing } = served.timing;
  const figures = Object.fromEntries(Object.entries(timing).filter(([, v]) => typeof v === "number")) as TimingFigures;
  return { message: "request", ...base, model: served.model, ...(served.classifier ? { classifier: served.classifier } : {}), timing: figures, ...(batch ? { batch } : {}), ...(coldStart !== undefined ? { coldStart } : {}) };
}
