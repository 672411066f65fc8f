/**
 * The whole chain on real data: 1,000 MNIST test digits, encoded as PNG and JPEG files, posted
 * over HTTP to the built Worker in workerd, held against PyTorch on the same pixels.
 */
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeGray, digit, encodeGray, encoded, mnistTest, type EncodedImage } from "../support/mnist";
import { ROOT } from "../support/paths";
import { argmax, maxAbsDiff, torchOnPixels, type TorchOutputs } from "../support/torch";
import { startWorker, type RunningWorker } from "../support/worker";

const COUNT = 1000;
const MODEL_DIR = join(ROOT, "models", "lenet", "1");

interface ClassifyBody {
  model: { id: string; version: number };
  results: { image: string; format: string; width: number; height: number; predictions: { label: string; index: number; probability: number }[]; logits: number[] }[];
  timing: { decodeMs: number; inferenceMs: number; coldStart: boolean };
}

let worker: RunningWorker;
const digits = mnistTest(COUNT);

beforeAll(async () => {
  worker = await startWorker();
});
afterAll(() => worker?.dispose());

async function postEach(files: EncodedImage[], type: string): Promise<ClassifyBody[]> {
  const bodies: ClassifyBody[] = new Array(files.length);
  let next = 0;
  const lane = async () => {
    while (next < files.length) {
      const i = next++;
      const res = await worker.fetch("/classify?include=logits&top_k=3", {
        method: "POST",
        headers: { "content-type": type },
        body: files[i],
      });
      expect(res.status).toBe(200);
      bodies[i] = (await res.json()) as ClassifyBody;
    }
  };
  await Promise.all(Array.from({ length: 4 }, lane));
  return bodies;
}

async function postBatches(files: EncodedImage[], type: string, size: number): Promise<ClassifyBody["results"]> {
  const results: ClassifyBody["results"] = [];
  for (let start = 0; start < files.length; start += size) {
    const form = new FormData();
    files.slice(start, start + size).forEach((file, j) => form.append("image", new Blob([file], { type }), `digit-${start + j}`));
    const res = await worker.fetch("/v1/models/lenet/classify?include=logits", { method: "POST", body: form });
    expect(res.status).toBe(200);
    results.push(...((await res.json()) as ClassifyBody).results);
  }
  return results;
}

function compare(served: number[][], torch: TorchOutputs) {
  let agree = 0;
  let correct = 0;
  let maxDiff = 0;
  served.forEach((logits, i) => {
    const expected = torch.logits[i]!;
    maxDiff = Math.max(maxDiff, maxAbsDiff(logits, expected));
    if (argmax(logits) === argmax(expected)) agree++;
    if (argmax(logits) === digits.labels[i]) correct++;
  });
  return { agreement: agree / served.length, accuracy: correct / served.length, maxDiff };
}

/** The acceptance bar: PyTorch's logits within 1e-4, its top-1 on >= 99.9 %, >= 99 % accurate. */
function expectAgreesWithTorch(name: string, served: number[][], torch: TorchOutputs) {
  const { agreement, accuracy, maxDiff } = compare(served, torch);
  console.log(`${name}: agreement ${(100 * agreement).toFixed(2)} %, accuracy ${(100 * accuracy).toFixed(2)} %, max |logit diff| ${maxDiff.toExponential(2)}`);
  expect(maxDiff).toBeLessThan(1e-4);
  expect(agreement).toBeGreaterThanOrEqual(0.999);
  expect(accuracy).toBeGreaterThanOrEqual(0.99);
}

describe("POST /classify with 1,000 MNIST test digits", () => {
  it("PNG, one request per image: logits equal PyTorch's within 1e-4, >= 99 % accurate", async () => {
    const files = await Promise.all(Array.from({ length: COUNT }, (_, i) => encodeGray(digit(digits, i), 28, 28, "png")));
    const bodies = await postEach(files, "image/png");
    const torch = torchOnPixels(MODEL_DIR, digits.pixels);

    for (const body of bodies) {
      expect(body.model).toEqual({ id: "lenet", version: 1 });
      expect(body.results).toHaveLength(1);
      const [first, ...rest] = body.results[0]!.predictions;
      expect(rest).toHaveLength(2);
      expect(first!.probability).toBeGreaterThanOrEqual(rest[0]!.probability);
      expect(body.timing.decodeMs).toBeGreaterThanOrEqual(0);
    }
    expectAgreesWithTorch(
      "PNG",
      bodies.map((b) => b.results[0]!.logits),
      torch,
    );
  });

  it("JPEG, multipart batches of 25: logits equal PyTorch's on the decoded pixels within 1e-4, >= 99 % accurate", async () => {
    const files = await Promise.all(Array.from({ length: COUNT }, (_, i) => encodeGray(digit(digits, i), 28, 28, "jpeg")));
    const results = await postBatches(files, "image/jpeg", 25);
    const decoded = new Uint8Array(COUNT * 784);
    (await Promise.all(files.map(decodeGray))).forEach((pixels, i) => decoded.set(pixels, i * 784));
    const torch = torchOnPixels(MODEL_DIR, decoded);

    expect(results.map((r) => r.image)).toEqual(Array.from({ length: COUNT }, (_, i) => `digit-${i}`));
    expectAgreesWithTorch(
      "JPEG",
      results.map((r) => r.logits),
      torch,
    );
  });

  it("lossless WebP gives PyTorch's logits; RGB photos 4x the size are resized and still recognised", async () => {
    const n = 200;
    const subset = { ...digits, count: n, pixels: digits.pixels.subarray(0, n * 784) };
    const webp = await Promise.all(Array.from({ length: n }, (_, i) => encodeGray(digit(digits, i), 28, 28, "webp")));
    const webpResults = await postBatches(webp, "image/webp", 32);
    expect(webpResults.every((r) => r.format === "webp")).toBe(true);
    const torch = torchOnPixels(MODEL_DIR, subset.pixels);
    expect(compare(webpResults.map((r) => r.logits), torch).maxDiff).toBeLessThan(1e-4);

    const photos = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        encoded(
          sharp(Buffer.from(digit(digits, i)), { raw: { width: 28, height: 28, channels: 1 } })
            .resize(112, 112, { kernel: "cubic" })
            .toColourspace("srgb")
            .jpeg({ quality: 85 }),
        ),
      ),
    );
    const photoResults = await postBatches(photos, "image/jpeg", 32);
    expect(photoResults[0]).toMatchObject({ width: 112, height: 112 });
    const { accuracy } = compare(photoResults.map((r) => r.logits), torch);
    console.log(`112x112 RGB JPEG: accuracy ${(100 * accuracy).toFixed(2)} %`);
    expect(accuracy).toBeGreaterThanOrEqual(0.98);
  });
});
