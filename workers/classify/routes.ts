/**
 * POST /classify (the default model, ?model=, or ?classifier=; ?version= pins a version of either)
 * and POST /v1/models/{id}/classify (?version= too). Public unless CLASSIFY_ACCESS is "key" (workers/auth).
 */
import { Hono, type Context } from "hono";
import { admitBody } from "../admission/admit-body";
import { admitToModel } from "../admission/model-admission";
import { requireAccess } from "../auth/require-access";
import { servingContext, type AppEnv } from "../env";
import { classifyWithClassifier, parseVersion } from "../classifiers/routes";
import { getServableModel } from "../models/catalog";
import { recordServed } from "../observability/access-log";
import { classify } from "./classify";
import { CLASSIFY_LIMITS } from "./limits";
import { classifyOptions, optionsFor } from "./options";
import { checkImagesMediaType, readImages } from "./request";

async function classifyWith(c: Context<AppEnv>, modelId: string): Promise<Response> {
  const model = await getServableModel(c.env, modelId, parseVersion(c.req.query("version")));
  const options = optionsFor(model, classifyOptions(c.req.query(), c.env.EXECUTION_PROVIDER));
  admitToModel(c.get("admission"), model);
  const answer = await classify(model, readImages(c.req.raw), options, servingContext(c));
  recordServed(c, answer);
  return c.json(answer);
}

const access = requireAccess("classify");
const admit = admitBody(CLASSIFY_LIMITS.maxRequestBytes, checkImagesMediaType);

export const classifyRoutes = new Hono<AppEnv>()
  .post("/classify", access, admit, (c) => {
    const classifier = c.req.query("classifier");
    return classifier ? classifyWithClassifier(c, classifier) : classifyWith(c, c.req.query("model") ?? c.env.DEFAULT_MODEL);
  })
  .post("/v1/models/:id/classify", access, admit, (c) => classifyWith(c, c.req.param("id")));
