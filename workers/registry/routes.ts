/**
 * Registering models without a redeploy (write key):
 *
 *   POST   /v1/models        multipart: the ONNX file (`model`) and its settings; 201 with the new version
 *   DELETE /v1/models/{id}   every registered version of it (built-in models cannot be deleted)
 *
 * Reading them is GET /v1/models like any model (workers/models/routes.ts); classifying,
 * POST /v1/models/{id}/classify?version=N (default: the latest).
 */
import { Hono } from "hono";
import { admitBody } from "../admission/admit-body";
import { requireAccess } from "../auth/require-access";
import type { AppEnv } from "../env";
import { findBuiltIn, listModels } from "../models/catalog";
import { modelSummary } from "../models/routes";
import { BuiltInModelError, UnknownModelError } from "../problems/problems";
import { REGISTRATION_LIMITS } from "./limits";
import { readRegistration, registerModel, unregisterModel } from "./registration";

const write = requireAccess("write");

export const registryRoutes = new Hono<AppEnv>()
  .post("/v1/models", write, admitBody(REGISTRATION_LIMITS.maxRequestBytes), async (c) => {
    const { bytes, settings } = await readRegistration(c.req.raw);
    // Once the upload is read, a client that hangs up does not cut the registration short: it
    // finishes (or refuses) whole, so no half-written version and no validation slot are left behind.
    const pending = registerModel(c.env, bytes, settings);
    c.executionCtx.waitUntil(pending.catch(() => undefined));
    const registration = await pending;
    const { manifest } = registration;
    const model = { manifest, source: { kind: "r2" as const, key: `${registration.prefix}${manifest.artifact.file}` } };
    return c.json({ ...modelSummary(model, c.env), registeredAt: registration.registeredAt, manifest }, 201, {
      location: `/v1/models/${manifest.id}?version=${manifest.version}`,
    });
  })
  .delete("/v1/models/:id", write, async (c) => {
    const id = c.req.param("id");
    if (findBuiltIn(id)) throw new BuiltInModelError(id);
    const removed = await unregisterModel(c.env, id);
    if (!removed.length) throw new UnknownModelError(id, [...new Set((await listModels(c.env)).map((model) => model.manifest.id))]);
    return c.json({ deleted: { id, versions: removed.map((registration) => registration.manifest.version) } });
  });
