/** The model-run time the Worker itself reports (timing.inferenceMs), per image, for the benchmarks. */
import type { RepositoryModel } from "../../scripts/model-repository.ts";
import { cifarValidation } from "../support/cifar";
import { digit, encodeGray, mnistTest } from "../support/mnist";
import type { RunningWorker } from "../support/worker";
import type { Upload } from "./http-load";

/** 32 real images of the model's data set, as a client would upload them. */
export async function uploadsFor(model: RepositoryModel): Promise<Upload[]> {
  if (model.manifest.dataset === "MNIST") {
    const digits = mnistTest(32);
    return Promise.all(Array.from({ length: 32 }, async (_, i) => ({ bytes: await encodeGray(digit(digits, i), 28, 28, "png"), type: "image/png" })));
  }
  return cifarValidation(4).map((file) => ({ bytes: file.bytes, type: "image/jpeg" }));
}

export interface WorkerTiming {
  inferenceMs: number;
  batch: { images: number };
  flipAverage: boolean;
}

/** One multipart POST of these images to the model, with `query` (e.g. "flip_average=false"). */
export async function postImages(worker: RunningWorker, id: string, uploads: Upload[], query = ""): Promise<{ ms: number; timing: WorkerTiming }> {
  const form = new FormData();
  for (const [i, upload] of uploads.entries()) form.append("image", new Blob([upload.bytes], { type: upload.type }), `image-${i}`);
  const start = performance.now();
  const res = await worker.fetch(`/v1/models/${id}/classify${query ? `?${query}` : ""}`, { method: "POST", body: form });
  const body = (await res.json()) as { timing: WorkerTiming };
  if (res.status !== 200) throw new Error(`${id}: status ${res.status} ${JSON.stringify(body)}`);
  return { ms: performance.now() - start, timing: body.timing };
}

/**
 * Milliseconds per uploaded image of the model run inside workerd for requests of `batch`
 * images, from the Worker's own timing (a mirror pass, when the request runs one, counts in its
 * image's time). workerd's clock ticks in whole milliseconds, so this is a mean over many runs.
 *
 * @example
 * const ms = await workerMsPerImage(worker, model, await uploadsFor(model), 1, "flip_average=false");
 */
export async function workerMsPerImage(worker: RunningWorker, model: RepositoryModel, uploads: Upload[], batch: number, query = ""): Promise<number> {
  const images = Array.from({ length: batch }, (_, i) => uploads[i % uploads.length]!);
  await postImages(worker, model.id, images, query);
  const runs = Math.max(5, Math.ceil(64 / batch));
  let total = 0;
  for (let i = 0; i < runs; i++) total += (await postImages(worker, model.id, images, query)).timing.inferenceMs;
  return total / runs / batch;
}

/** The query that runs exactly the ONNX graph, as the engines outside the Worker do: no mirror pass where the request chooses. */
export function graphOnlyQuery(model: RepositoryModel): string {
  const { input, architecture } = model.manifest;
  return input.mirrorable && !architecture.flipAverage ? "flip_average=false" : "";
}
