/**
 * The Node GPU host: the Worker's Hono app (workers/app.ts), served by @hono/node-server, with
 * the engine on Dawn's WebGPU where the machine has a GPU (workers/engine/node.ts), for users
 * who run their own GPU machines at the edge. Built and started by scripts/serve-node.ts.
 *
 * What Node lacks of the Workers platform, and what stands in for it:
 * - R2 (MODELS): the repository's own models/ folder, read at the same keys;
 * - Durable Objects (CLASSIFIERS): none, so classifier routes answer 501 not-on-this-host;
 * - static assets: the playground's built folder, served at `/` as wrangler would.
 */
import { readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { serve } from "@hono/node-server";
import { serveStatic } from "@hono/node-server/serve-static";
import { Hono } from "hono";
import { handleRequest } from "../../app";
import { nodeEngine } from "../../engine/node";
import type { Env } from "../../env";
import { useEngine, warmUpRuntime } from "../../inference/onnx-session";
import { smallestBundledModel } from "../../models/catalog";
import { HostLacksFeatureError } from "../../problems/problems";

/** R2's `get` over a folder: the object at `key` is the file at `root/key`, read whole or streamed. */
function folderBucket(root: string): R2Bucket {
  const get = async (key: string) => {
    const bytes = await readFile(join(root, key)).catch(() => null);
    return bytes && { arrayBuffer: async () => bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength), body: new Blob([bytes]).stream() };
  };
  return { get } as unknown as R2Bucket;
}

/** A binding whose every use is refused with a problem. */
function missingBinding<T>(feature: string): T {
  return new Proxy({}, { get: () => () => { throw new HostLacksFeatureError("node", feature); } }) as T;
}

export interface NodeHostOptions {
  port: number;
  /** The repository: models/ and workers/playground/dist/ are read from it. */
  root: string;
  /** wrangler.toml's vars and the secrets (API_KEYS, CLASSIFY_KEYS). */
  vars: Record<string, string>;
}

/**
 * Serve the app on `port` (0: any free one) with the Node engine.
 *
 * @example
 * const host = await startNodeHost({ port: 8788, root: process.cwd(), vars: { DEFAULT_MODEL: "lenet", CLASSIFY_ACCESS: "public" } });
 */
export async function startNodeHost({ port, root, vars }: NodeHostOptions): Promise<{ url: string; close(): Promise<void> }> {
  const engine = await nodeEngine();
  useEngine(engine);
  await warmUpRuntime(smallestBundledModel()!);
  const env = { ...vars, MODELS: folderBucket(root), CLASSIFIERS: missingBinding("Durable Objects (fine-tunable classifiers)") } as unknown as Env;
  const pending = new Set<Promise<unknown>>();
  const executionCtx = {
    waitUntil: (promise: Promise<unknown>) => {
      pending.add(promise);
      void promise.finally(() => pending.delete(promise));
    },
    passThroughOnException: () => {},
    props: {},
  } as unknown as ExecutionContext;

  const assets = relative(process.cwd(), join(root, "workers", "playground", "dist")) || ".";
  const host = new Hono();
  host.use("*", serveStatic({ root: assets }));
  host.all("*", (c) => handleRequest(c.req.raw, env, executionCtx));

  const gpu = await engine.webGpuStatus();
  return new Promise((resolve) => {
    const server = serve({ fetch: host.fetch, port, hostname: "127.0.0.1" }, (info) => {
      console.log(`node host: http://127.0.0.1:${info.port} (WebGPU: ${gpu.available ? gpu.adapter : `unavailable, ${gpu.reason}`})`);
      resolve({
        url: `http://127.0.0.1:${info.port}`,
        close: () => new Promise<void>((done) => server.close(() => Promise.allSettled(pending).then(() => done()))),
      });
    });
  });
}
