/**
 * Every CIFAR-10 model in the repository, served through HTTP from the built Worker in workerd
 * (from R2 when too large to bundle), held against PyTorch on 500 held-out CIFAR-10 JPEGs.
 */
import { dirname } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { discoverModels, type RepositoryModel } from "../../scripts/model-repository.ts";
import { cifarValidation, type LabelledFile } from "../support/cifar";
import { computesInIntegers } from "../support/onnx";
import { argmax, maxAbsDiff, torchOnPixels } from "../support/torch";
import { startWorker, type RunningWorker } from "../support/worker";

const PER_CLASS = 50;
const ISOLATE_LIMIT = 128 * 1024 * 1024;
const repository = discoverModels();
const models = repository.filter((model) => model.manifest.dataset === "CIFAR-10" && model.manifest.serving.servable);

let worker: RunningWorker;
let files: LabelledFile[];

beforeAll(async () => {
  worker = await startWorker();
  files = cifarValidation(PER_CLASS);
  expect((await worker.fetch("/healthz")).status).toBe(200);
});
afterAll(() => worker?.dispose());

interface Result {
  image: string;
  logits: number[];
  predictions: { label: string }[];
}

interface Answer {
  results: Result[];
  timing: { flipAverage: boolean; translateAverage: boolean; batch: { images: number } };
}

async function classifyAll(modelId: string, subset: LabelledFile[], query = ""): Promise<{ results: Result[]; flipAverage: boolean }> {
  const results: Result[] = [];
  const flips = new Set<boolean>();
  for (let start = 0; start < subset.length; start += 32) {
    const form = new FormData();
    for (const file of subset.slice(start, start + 32)) form.append("image", new Blob([file.bytes], { type: "image/jpeg" }), file.name);
    const res = await worker.fetch(`/v1/models/${modelId}/classify?include=logits&top_k=1${query}`, { method: "POST", body: form });
    expect(res.status).toBe(200);
    const answer = (await res.json()) as Answer;
    results.push(...answer.results);
    flips.add(answer.timing.flipAverage);
  }
  expect(flips.size).toBe(1);
  return { results, flipAverage: [...flips][0]! };
}

async function pixelsOf(subset: LabelledFile[]): Promise<Uint8Array> {
  const pixels = new Uint8Array(subset.length * 32 * 32 * 3);
  const decoded = await Promise.all(subset.map((f) => sharp(f.bytes).removeAlpha().raw().toBuffer()));
  decoded.forEach((rgb, i) => pixels.set(rgb, i * 3072));
  return pixels;
}

it("the repository has a CIFAR-10 model to serve", () => {
  expect(models.map((model) => model.id)).toContain("resnet-edge");
});

/** How far the served logits may be from PyTorch's: 1e-3, or 0.1 for a graph that computes in integers (measured 0.031 on these JPEGs). */
const logitTolerance = (manifest: { quantization?: { scheme: string } }) => (computesInIntegers(manifest) ? 0.1 : 1e-3);

/** Hold served answers against PyTorch's on the same decoded pixels: top-1 agreement and the largest logit difference. */
async function expectAgreesWithTorch(model: RepositoryModel, subset: LabelledFile[], results: Result[], flipAverage: boolean, translateAverage = false) {
  expect(results.map((r) => r.image)).toEqual(subset.map((f) => f.name));
  const torch = torchOnPixels(dirname(model.artifactPath), await pixelsOf(subset), { flipAverage, translateAverage });
  let agree = 0;
  let correct = 0;
  let maxDiff = 0;
  results.forEach((result, i) => {
    maxDiff = Math.max(maxDiff, maxAbsDiff(result.logits, torch.logits[i]!));
    if (argmax(result.logits) === argmax(torch.logits[i]!)) agree++;
    if (argmax(result.logits) === subset[i]!.label) correct++;
  });
  console.log(`${model.id}${translateAverage ? " (translate-averaged)" : flipAverage ? " (flip-averaged)" : " (single pass)"}: agreement ${((100 * agree) / subset.length).toFixed(2)} %, ` +
    `accuracy ${((100 * correct) / subset.length).toFixed(2)} %, max |logit diff| ${maxDiff.toExponential(2)} (${model.source.kind})`);
  expect(agree / subset.length).toBeGreaterThanOrEqual(0.995);
  expect(maxDiff).toBeLessThan(logitTolerance(model.manifest));
}

describe.each(models.map((model) => [model.id, model] as const))("%s", (id, model) => {
  it(`by default agrees with PyTorch averaging each of ${PER_CLASS * 10} validation JPEGs with its mirror: top-1 >= 99.5 %, logits within ${logitTolerance(model.manifest)}`, async () => {
    const { results, flipAverage } = await classifyAll(id, files);
    expect(flipAverage).toBe(true); // every CIFAR-10 model was trained on mirror images, and none sets its default off
    await expectAgreesWithTorch(model, files, results, true);
  }, 900_000);

  const legacy = Boolean(model.manifest.architecture.flipAverage);
  it(legacy ? "refuses flip_average=false: its graph averages the mirror inside" : "with flip_average=false runs one pass and agrees with PyTorch's single pass", async () => {
    const subset = files.filter((_, i) => i % 5 === 0);
    if (legacy) {
      const res = await worker.fetch(`/v1/models/${id}/classify?flip_average=false`, { method: "POST", body: subset[0]!.bytes, headers: { "content-type": "image/jpeg" } });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { parameter: string }).parameter).toBe("flip_average");
      return;
    }
    const { results, flipAverage } = await classifyAll(id, subset, "&flip_average=false");
    expect(flipAverage).toBe(false);
    await expectAgreesWithTorch(model, subset, results, false);
  }, 300_000);

  it(legacy ? "refuses translate_average=true: its graph runs both mirror views itself" : "with translate_average=true runs six views of each image and agrees with PyTorch's airbench94 average", async () => {
    const subset = files.filter((_, i) => i % 25 === 0);
    const post = (query: string) => worker.fetch(`/v1/models/${id}/classify?${query}`, { method: "POST", body: subset[0]!.bytes, headers: { "content-type": "image/jpeg" } });
    const refusals = legacy ? ["translate_average=true"] : ["translate_average=true&flip_average=false", "translate_average=yes"];
    for (const query of refusals) {
      const res = await post(query);
      expect(res.status, query).toBe(400);
      expect(((await res.json()) as { parameter: string }).parameter).toBe("translate_average");
    }
    if (legacy) return;
    const res = await post("translate_average=true");
    expect(((await res.json()) as Answer).timing).toMatchObject({ flipAverage: true, translateAverage: true, batch: { images: 6 } });
    const { results } = await classifyAll(id, subset, "&translate_average=true");
    await expectAgreesWithTorch(model, subset, results, true, true);
  }, 300_000);
});

const oneCall = async (id: string, png: Uint8Array<ArrayBuffer>, flip: boolean) => {
  const res = await worker.fetch(`/v1/models/${id}/classify?include=logits,embedding&flip_average=${flip}`, { method: "POST", body: png, headers: { "content-type": "image/png" } });
  expect(res.status).toBe(200);
  const answer = (await res.json()) as Answer & { results: { embedding: number[] }[] };
  return { logits: answer.results[0]!.logits, embedding: answer.results[0]!.embedding, timing: answer.timing };
};

const mirrorable = models.filter((model) => !model.manifest.architecture.flipAverage);
describe.each(mirrorable.map((model) => [model.id] as const))("%s flip_average=true", (id) => {
  it("answers the mean of the image's single pass and its mirror image's, in one batch of two, the same for either", async () => {
    const rgb = await sharp(files[7]!.bytes).removeAlpha().raw().toBuffer();
    const png = async (mirror: boolean) => new Uint8Array(await sharp(rgb, { raw: { width: 32, height: 32, channels: 3 } }).flop(mirror).png().toBuffer());
    const [image, mirrored] = [await png(false), await png(true)];
    const [alone, mirrorAlone, averaged, averagedMirror] = [
      await oneCall(id, image, false), await oneCall(id, mirrored, false), await oneCall(id, image, true), await oneCall(id, mirrored, true),
    ];
    expect(alone.timing).toMatchObject({ flipAverage: false, batch: { images: 1 } });
    expect(averaged.timing).toMatchObject({ flipAverage: true, batch: { images: 2 } });
    const mean = (a: number[], b: number[]) => a.map((v, i) => (v + b[i]!) / 2);
    expect(maxAbsDiff(averaged.logits, mean(alone.logits, mirrorAlone.logits))).toBeLessThan(1e-4);
    expect(maxAbsDiff(averaged.embedding, mean(alone.embedding, mirrorAlone.embedding))).toBeLessThan(1e-4);
    expect(maxAbsDiff(averagedMirror.logits, averaged.logits)).toBeLessThan(1e-4);
    expect(maxAbsDiff(alone.logits, mirrorAlone.logits)).toBeGreaterThan(1e-3); // the mirror is another view, not the same input
  });
});

it("after serving every model in one isolate, the resident ones fit the model budget and ORT's heap the isolate", async () => {
  const { memory } = (await (await worker.fetch("/healthz")).json()) as {
    memory: { onnxRuntimeHeapBytes: number; modelBudgetBytes: number; residentModels: string[] };
  };
  const resident = memory.residentModels.map((key) => repository.find((model) => `${model.id}@${model.version}` === key.split(":")[0])!);
  const residentBytes = resident.reduce((sum, model) => sum + model.manifest.serving.memoryBytes, 0);
  console.log(`ORT heap ${(memory.onnxRuntimeHeapBytes / 2 ** 20).toFixed(1)} MiB after serving ${models.map((m) => m.id).join(", ")}; resident now: ${memory.residentModels.join(", ")} ` +
    `(${(residentBytes / 2 ** 20).toFixed(1)} MiB by their manifests)`);
  expect(resident.length).toBeGreaterThan(0);
  expect(residentBytes).toBeLessThanOrEqual(memory.modelBudgetBytes);
  const total = models.reduce((sum, model) => sum + model.manifest.serving.memoryBytes, 0);
  if (total > memory.modelBudgetBytes) expect(resident.length).toBeLessThan(models.length); // some were evicted
  expect(memory.onnxRuntimeHeapBytes).toBeGreaterThan(0);
  expect(memory.onnxRuntimeHeapBytes).toBeLessThan(ISOLATE_LIMIT - 24 * 2 ** 20); // 24 MiB left for JS and the codecs
});

it("a photo-sized JPEG, decoded at 1/8 scale, gets the answer the same photo gets at 512x384 decoded whole", async () => {
  const photos = files.filter((_, i) => i % PER_CLASS === 0); // one per class
  const classify = async (bytes: Uint8Array<ArrayBuffer>) => {
    const res = await worker.fetch("/v1/models/resnet-edge/classify?include=logits", { method: "POST", body: bytes, headers: { "content-type": "image/jpeg" } });
    expect(res.status).toBe(200);
    return ((await res.json()) as { results: Result[] }).results[0]!.logits;
  };
  const atSize = async (bytes: Uint8Array, width: number, height: number) =>
    new Uint8Array(await sharp(bytes).resize(width, height, { kernel: "cubic" }).jpeg({ quality: 90 }).toBuffer());
  let agree = 0;
  let meanDiff = 0;
  for (const photo of photos) {
    const reduced = await classify(await atSize(photo.bytes, 4096, 3072)); // over 1024 a side: decoded at 1/8
    const whole = await classify(await atSize(photo.bytes, 512, 384));
    if (argmax(reduced) === argmax(whole)) agree++;
    meanDiff += maxAbsDiff(reduced, whole) / photos.length;
  }
  console.log(`12.6 MP at 1/8 vs 0.2 MP whole: top-1 agreement ${agree}/${photos.length}, mean max |logit diff| ${meanDiff.toFixed(3)}`);
  expect(agree).toBeGreaterThanOrEqual(photos.length - 1);
  expect(meanDiff).toBeLessThan(0.5);
}, 300_000);
