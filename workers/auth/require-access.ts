/** The per-route access check: which routes need which key (api-keys.ts says what the keys are). */
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../env";
import { AuthenticationRequiredError, AuthNotConfiguredError, InsufficientScopeError, InvalidApiKeyError } from "../problems/problems";
import { enforceRateLimit } from "../admission/rate-limit";
import { bearerToken, matchesAnyKey, parseKeys } from "./api-keys";

/** What a route does: `write` changes state; `classify` computes answers and reads classifiers. */
export type Access = "write" | "classify";

/**
 * Middleware that lets a request through only with the access a route needs: 401 without a key
 * or with one that is not known, 403 with a classify-only key on a write route, 503 when the
 * deployment has no API_KEYS (write routes stay closed rather than open). A known key then
 * counts against its scope's rate limit (workers/admission/rate-limit.ts): 429 over it.
 *
 * @example
 * app.post("/finetune", requireAccess("write"), handler);
 */
export function requireAccess(access: Access): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const env = c.env;
    if (access === "classify" && env.CLASSIFY_ACCESS === "public") return next();
    const adminKeys = parseKeys(env.API_KEYS);
    if (access === "write" && adminKeys.length === 0) throw new AuthNotConfiguredError();
    const token = bearerToken(c.req.header("authorization"));
    if (token === undefined) throw new AuthenticationRequiredError(access);
    if (!(await matchesAnyKey(token, adminKeys))) {
      if (!(await matchesAnyKey(token, parseKeys(env.CLASSIFY_KEYS)))) throw new InvalidApiKeyError();
      if (access !== "classify") throw new InsufficientScopeError();
    }
    await enforceRateLimit(env, access, token);
    return next();
  };
}
