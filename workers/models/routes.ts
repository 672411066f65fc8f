/** GET /v1/models and GET /v1/models/{id}: the served models' manifests. */
import { Hono } from "hono";
import type { AppEnv } from "../env";
import { getModel, listModels } from "./catalog";

export const modelRoutes = new Hono<AppEnv>()
  .get("/v1/models", (c) =>
    c.json({
      default: c.env.DEFAULT_MODEL,
      models: listModels().map(({ manifest }) => ({
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
      })),
    }),
  )
  .get("/v1/models/:id", (c) => c.json(getModel(c.req.param("id")).manifest));
