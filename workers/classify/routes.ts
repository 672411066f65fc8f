/** POST /classify (the default model, or ?model=) and POST /v1/models/{id}/classify. */
import { Hono, type Context } from "hono";
import type { AppEnv } from "../env";
import { getServableModel } from "../models/catalog";
import { classify } from "./classify";
import { classifyOptions } from "./options";
import { readImages } from "./request";

async function classifyWith(c: Context<AppEnv>, modelId: string): Promise<Response> {
  const model = getServableModel(modelId);
  const options = classifyOptions(c.req.query());
  return c.json(await classify(model, await readImages(c.req.raw), options, c.env.MODELS));
}

export const classifyRoutes = new Hono<AppEnv>()
  .post("/classify", (c) => classifyWith(c, c.req.query("model") ?? c.env.DEFAULT_MODEL))
  .post("/v1/models/:id/classify", (c) => classifyWith(c, c.req.param("id")));
