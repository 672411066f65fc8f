/** GET /v1/models (a summary of each, with the batching it is served with) and GET /v1/models/{id} (its manifest). */
import { Hono } from "hono";
import type { AppEnv } from "../env";
import { batchingPolicy } from "../inference/dynamic-batcher";
import { getModel, listModels } from "./catalog";

export const modelRoutes = new Hono<AppEnv>()
  .get("/v1/models", (c) =>
    c.json({
      default: c.env.DEFAULT_MODEL,
      models: listModels().map(({ manifest, config }) => ({
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
      })),
    }),
  )
  .get("/v1/models/:id", (c) => c.json(getModel(c.req.param("id")).manifest));
