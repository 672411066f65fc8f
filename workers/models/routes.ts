/**
 * GET /v1/models (a summary of each, built-in and registered, with the batching it is served
 * with and whether a request averages in the mirror image by default), GET /v1/models/{id}
 * (its manifest; ?version= for a registered model's earlier one) and GET
 * /v1/models/{id}/model.onnx (its artifact, for clients that run the model themselves, such as
 * the playground page on WebGPU).
 */
import { Hono } from "hono";
import { admissionPolicy } from "../admission/policy";
import { requireAccess } from "../auth/require-access";
import type { AppEnv, Env } from "../env";
import { batchingPolicy } from "../inference/dynamic-batcher";
import { flipAverageFor } from "../classify/flip-average";
import { parseVersion } from "../classifiers/routes";
import { artifactBody } from "./artifacts";
import { findBuiltIn, getModel, getServableModel, listModels } from "./catalog";
import type { ServedModel } from "./manifest";

/**
 * What GET /v1/models says of a model.
 *
 * @example
 * modelSummary(await getModel(env, "lenet"), env); // { id: "lenet", version: 1, source: "built-in", ... }
 */
export function modelSummary(model: ServedModel, env: Pick<Env, "DYNAMIC_BATCHING">) {
  const { manifest, config } = model;
  return {
    id: manifest.id,
    version: manifest.version,
    name: manifest.name,
    source: findBuiltIn(manifest.id) ? "built-in" : "registered",
    dataset: manifest.dataset,
    labels: manifest.labels.length,
    input: { channels: manifest.input.channels, height: manifest.input.height, width: manifest.input.width },
    metrics: manifest.metrics,
    bytes: manifest.artifact.bytes,
    servable: manifest.serving.servable,
    memoryBytes: manifest.serving.memoryBytes,
    batching: batchingPolicy(config?.dynamicBatching, env.DYNAMIC_BATCHING),
    admission: admissionPolicy(config?.admission),
    flipAverage: flipAverageFor(model, undefined),
  };
}

export const modelRoutes = new Hono<AppEnv>()
  .get("/v1/models", async (c) => {
    const every = await listModels(c.env, true);
    const versions = (id: string) => every.filter((model) => model.manifest.id === id).map((model) => model.manifest.version);
    const models = (await listModels(c.env)).map((model) => ({ ...modelSummary(model, c.env), ...(findBuiltIn(model.manifest.id) ? {} : { versions: versions(model.manifest.id) }) }));
    return c.json({ default: c.env.DEFAULT_MODEL, models });
  })
  // The manifest, with the admission limits it is served with (models/<id>/config.json or the defaults).
  .get("/v1/models/:id", async (c) => {
    const model = await getModel(c.env, c.req.param("id"), parseVersion(c.req.query("version")));
    return c.json({ ...model.manifest, admission: admissionPolicy(model.config?.admission) });
  })
  .get("/v1/models/:id/model.onnx", requireAccess("classify"), async (c) => {
    const model = await getServableModel(c.env, c.req.param("id"), parseVersion(c.req.query("version")));
    // The sha256 names the bytes exactly; a client that has them revalidates for free.
    const etag = `"${model.manifest.artifact.sha256}"`;
    const headers = { etag, "cache-control": "no-cache", "x-model-version": String(model.manifest.version) };
    if (c.req.header("if-none-match") === etag) return c.body(null, 304, headers);
    const body = await artifactBody(model, c.env.MODELS);
    return c.body(body, 200, { ...headers, "content-type": "application/octet-stream", "content-length": String(model.manifest.artifact.bytes) });
  });
