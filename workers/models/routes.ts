/**
 * GET /v1/models (a summary of each, with the batching it is served with and whether a request
 * averages in the mirror image by default), GET /v1/models/{id}
 * (its manifest) and GET /v1/models/{id}/model.onnx (its artifact, for clients that run the
 * model themselves, such as the playground page on WebGPU).
 */
import { Hono } from "hono";
import { requireAccess } from "../auth/require-access";
import type { AppEnv } from "../env";
import { batchingPolicy } from "../inference/dynamic-batcher";
import { flipAverageFor } from "../classify/flip-average";
import { artifactBody } from "./artifacts";
import { getModel, getServableModel, listModels } from "./catalog";

export const modelRoutes = new Hono<AppEnv>()
  .get("/v1/models", (c) =>
    c.json({
      default: c.env.DEFAULT_MODEL,
      models: listModels().map((model) => {
        const { manifest, config } = model;
        return {
          id: manifest.id,
          version: manifest.version,
          name: manifest.name,
          dataset: manifest.dataset,
          labels: manifest.labels.length,
          input: { channels: manifest.input.channels, height: manifest.input.height, width: manifest.input.width },
          metrics: manifest.metrics,
          bytes: manifest.artifact.bytes,
          servable: manifest.serving.servable,
          memoryBytes: manifest.serving.memoryBytes,
          batching: batchingPolicy(config?.dynamicBatching, c.env.DYNAMIC_BATCHING),
          flipAverage: flipAverageFor(model, undefined),
        };
      }),
    }),
  )
  .get("/v1/models/:id", (c) => c.json(getModel(c.req.param("id")).manifest))
  .get("/v1/models/:id/model.onnx", requireAccess("classify"), async (c) => {
    const model = getServableModel(c.req.param("id"));
    // The sha256 names the bytes exactly; a client that has them revalidates for free.
    const etag = `"${model.manifest.artifact.sha256}"`;
    const headers = { etag, "cache-control": "no-cache", "x-model-version": String(model.manifest.version) };
    if (c.req.header("if-none-match") === etag) return c.body(null, 304, headers);
    const body = await artifactBody(model, c.env.MODELS);
    return c.body(body, 200, { ...headers, "content-type": "application/octet-stream", "content-length": String(model.manifest.artifact.bytes) });
  });
