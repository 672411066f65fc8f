/**
 * The bare model in the engines that run outside the Worker, on this machine: onnxruntime-web
 * (the Worker's WASM build) in Node, and native onnxruntime-node with one thread and with all.
 * Same random input, same session options as the Worker where they apply.
 */
import { execFileSync } from "node:child_process";
import { availableParallelism } from "node:os";
import { readFileSync } from "node:fs";
import * as ortNode from "onnxruntime-node";
import * as ortWeb from "onnxruntime-web/wasm";
import type { RepositoryModel } from "../../scripts/model-repository.ts";
import { quantile } from "../../scripts/stats.ts";
import { SESSION_OPTIONS } from "../../workers/inference/wasm-heap.ts";
import { ROOT } from "../support/paths";

ortWeb.env.wasm.numThreads = 1;

export const ENGINES = ["ort-web in Node", "ort-node 1 thread", `ort-node ${availableParallelism()} threads`] as const;
export type NodeEngine = (typeof ENGINES)[number];

type Session = { run(feeds: Record<string, unknown>): Promise<unknown> };

async function createSession(engine: NodeEngine, bytes: Uint8Array): Promise<{ session: Session; tensor: (data: Float32Array, dims: number[]) => unknown }> {
  if (engine === "ort-web in Node") {
    const session = await ortWeb.InferenceSession.create(bytes, SESSION_OPTIONS);
    return { session: session as unknown as Session, tensor: (data, dims) => new ortWeb.Tensor("float32", data, dims) };
  }
  const threads = engine === "ort-node 1 thread" ? 1 : availableParallelism();
  const session = await ortNode.InferenceSession.create(bytes, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: "all" });
  return { session: session as unknown as Session, tensor: (data, dims) => new ortNode.Tensor("float32", data, dims) };
}

/**
 * Median milliseconds per image of runs at `batch`, after warm-up runs; at least `minImages`
 * images and 5 runs are timed.
 *
 * @example
 * const ms = await engineMsPerImage("ort-node 1 thread", model, 8);
 */
export async function engineMsPerImage(engine: NodeEngine, model: RepositoryModel, batch: number, minImages = 64): Promise<number> {
  const { session, tensor } = await createSession(engine, new Uint8Array(readFileSync(model.artifactPath)));
  const { channels, height, width } = model.manifest.input;
  const data = Float32Array.from({ length: batch * channels * height * width }, (_, i) => Math.sin(i) * 0.5);
  const feeds = { [model.manifest.artifact.inputName]: tensor(data, [batch, channels, height, width]) };
  const runs = Math.max(5, Math.ceil(minImages / batch));
  const times: number[] = [];
  for (let i = 0; i < runs + 2; i++) {
    const start = performance.now();
    await session.run(feeds);
    if (i >= 2) times.push((performance.now() - start) / batch);
  }
  return quantile(times, 0.5);
}

/**
 * Floating-point operations per image of each model's graph (scripts/count_flops.py).
 *
 * @example
 * const flops = flopsPerImage(models); // { lenet: 4586000, ... }
 */
export function flopsPerImage(models: RepositoryModel[]): Record<string, number> {
  const out = execFileSync("/usr/bin/python3", [`${ROOT}/scripts/count_flops.py`, ...models.map((m) => m.artifactPath)], { encoding: "utf8" });
  const byPath = JSON.parse(out) as Record<string, number>;
  return Object.fromEntries(models.map((m) => [m.id, byPath[m.artifactPath]!]));
}
