/**
 * The middleware in front of every route that reads a request body (classify, fine-tune,
 * registration): the request's admission ticket (admission.ts), taken before one byte of the
 * body is read, and released when the request settles, however it ends.
 */
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../env";
import { checkDeclaredLength } from "../classify/request";
import { admission } from "./isolate-admission";
import { deadlineFrom } from "./deadline";
import { bodyBytesToHold, bodyImageFormat } from "./unread-body";

/**
 * Admit the request (or refuse it, 503 `overloaded`, before its body is read) and keep its
 * ticket in `c.get("admission")` for the route to assign to a model. What its headers alone
 * refuse is refused first, as it would be without a spike: a body declared over `limit` (413),
 * and whatever `checkHeaders` throws (the route's media types, 415). The request's context is
 * kept alive (waitUntil) until the ticket is released, so a client that hangs up cannot leave it held.
 *
 * @example
 * app.post("/classify", requireAccess("classify"), admitBody(CLASSIFY_LIMITS.maxRequestBytes, checkImagesMediaType), handler);
 */
export function admitBody(limit: number, checkHeaders?: (headers: Headers) => unknown): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const headers = c.req.raw.headers;
    checkDeclaredLength(headers, limit);
    checkHeaders?.(headers);
    const deadline = deadlineFrom(c.req.query("timeout_ms"), performance.now());
    const ticket = admission.admit({ ...bodyBytesToHold(headers, limit), format: bodyImageFormat(headers), deadline, signal: c.req.raw.signal });
    c.set("admission", ticket);
    const handled = next().finally(() => ticket.release());
    c.executionCtx.waitUntil(handled.catch(() => undefined));
    await handled;
  };
}
