/**
 * One structured JSON log line per request (Workers Logs indexes its fields; wrangler.toml turns
 * them on with [observability]), the `x-request-id` on every answer and `Server-Timing` on the
 * answers that ran a model. Routes tell it what they served with `recordServed`; the line's
 * shape is log-line.ts.
 */
import type { Context, MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import type { AppEnv } from "../env";
import { writeAnalyticsEvent } from "./analytics-events";
import { REQUEST_ID_HEADER, requestIdFor } from "./request-id";
import { accessLogLine, type ClassifierChange, type Served } from "./log-line";
import { serverTiming } from "./server-timing";
import { recordRequestMetrics } from "./service-metrics";

export type { AccessLogLine, ClassifierChange, Served } from "./log-line";

/**
 * Note what a route served, for its log line and Server-Timing header.
 *
 * @example
 * recordServed(c, { model: body.model, timing: body.timing });
 */
export function recordServed(c: Context<AppEnv>, served: Served): void {
  c.set("served", served);
}

/**
 * Note that a route created a classifier version, for the log line and the metrics.
 *
 * @example
 * recordClassifierChange(c, { kind: "finetune", examples: taught.labels.length });
 */
export function recordClassifierChange(c: Context<AppEnv>, change: ClassifierChange): void {
  c.set("classifierChange", change);
}

/**
 * The middleware: sets the request id first (problem bodies and handlers read it with
 * `c.get("requestId")`), then stamps the answer, writes the log line and counts the request in
 * this isolate's metrics and, where bound, Analytics Engine.
 *
 * @example
 * app.use(observeRequests());
 */
export function observeRequests(log: (line: string) => void = console.log): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const started = performance.now();
    const requestId = requestIdFor(c.req.raw.headers);
    c.set("requestId", requestId);
    await next();
    c.header(REQUEST_ID_HEADER, requestId);
    const served = c.get("served");
    if (served) {
      const header = serverTiming(served.timing);
      if (header) c.header("server-timing", header);
    }
    const route = routePath(c, -1);
    const problem = c.get("problem");
    const classifierChange = c.get("classifierChange");
    const refusal = c.get("refusal");
    const line = accessLogLine({
      requestId,
      method: c.req.method,
      route: route && route !== "*" && route !== "/*" ? route : null,
      path: new URL(c.req.url).pathname,
      status: c.res.status,
      durationMs: Math.round((performance.now() - started) * 1000) / 1000,
      ...(problem ? { problem } : {}),
      ...(classifierChange ? { classifierChange } : {}),
      ...(refusal ? { refusal } : {}),
    }, served);
    log(JSON.stringify(line));
    recordRequestMetrics(line);
    writeAnalyticsEvent(c.env.REQUEST_EVENTS, line);
  };
}
