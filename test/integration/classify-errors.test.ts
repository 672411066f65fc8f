/** Every bad input to /classify gets a 4xx problem+json, and the Worker keeps serving. */
import { request } from "node:http";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { discoverModels } from "../../scripts/model-repository.ts";
import { digit, encodeGray, encoded, mnistTest, type EncodedImage } from "../support/mnist";
import { startWorker, type RunningWorker } from "../support/worker";

let worker: RunningWorker;
let png: EncodedImage;

beforeAll(async () => {
  worker = await startWorker();
  png = await encodeGray(digit(mnistTest(1), 0), 28, 28, "png");
});
afterAll(() => worker?.dispose());

async function expectProblem(res: Response, status: number, slug: string): Promise<Record<string, unknown>> {
  expect(res.headers.get("content-type")).toBe("application/problem+json");
  const body = (await res.json()) as Record<string, unknown>;
  expect({ status: res.status, type: body.type }).toEqual({ status, type: `urn:cnn-edge:problem:${slug}` });
  expect(body.status).toBe(status);
  expect(typeof body.title).toBe("string");
  expect(typeof body.detail).toBe("string");
  return body;
}

const post = (path: string, body: BodyInit | undefined, contentType?: string) =>
  worker.fetch(path, { method: "POST", body, headers: contentType ? { "content-type": contentType } : {} });

function form(parts: [string, Blob | string, string?][]): FormData {
  const data = new FormData();
  for (const [name, value, filename] of parts) {
    if (typeof value === "string") data.append(name, value);
    else data.append(name, value, filename);
  }
  return data;
}

describe("content type", () => {
  it("415 without a Content-Type", async () => {
    const res = await worker.fetch("/classify", { method: "POST", body: new Uint8Array(png) });
    await expectProblem(res, 415, "unsupported-media-type");
  });

  it("415 for a type that is not an image or multipart, listing the accepted ones", async () => {
    const body = await expectProblem(await post("/classify", "hello", "text/plain"), 415, "unsupported-media-type");
    expect(body.accepted).toEqual(["image/png", "image/jpeg", "image/webp", "multipart/form-data"]);
  });

  it("415 for an image format the Worker does not decode (GIF)", async () => {
    const gif = await encoded(sharp({ create: { width: 8, height: 8, channels: 3, background: "#fff" } }).gif());
    await expectProblem(await post("/classify", gif, "image/png"), 415, "unsupported-media-type");
  });
});

describe("bodies that are not decodable images", () => {
  it("400 for an empty body", async () => {
    await expectProblem(await post("/classify", new Uint8Array(0), "image/png"), 400, "invalid-request");
  });

  it("415 for bytes that are no image at all", async () => {
    await expectProblem(await post("/classify", new TextEncoder().encode("not an image, just text"), "image/jpeg"), 415, "unsupported-media-type");
  });

  it("422 for a truncated PNG", async () => {
    await expectProblem(await post("/classify", png.subarray(0, 40), "image/png"), 422, "image-decode-failed");
  });

  it("422 for a JPEG whose data after the header is garbage", async () => {
    const jpeg = await encodeGray(digit(mnistTest(1), 0), 28, 28, "jpeg");
    const broken = new Uint8Array(500).fill(0x5a);
    broken.set(jpeg.subarray(0, 200));
    const body = await expectProblem(await post("/classify", broken, "image/jpeg"), 422, "image-decode-failed");
    expect(body.detail).toMatch(/^The JPEG data is corrupt or truncated \(.+\)\.$/);
  });
});

describe("limits", () => {
  it("413 for a body over the request limit, from Content-Length, before reading it", async () => {
    // Declares 32 MiB + 1 but sends only a few bytes: an answer proves the body was not awaited.
    const res = await new Promise<Response>((resolve, reject) => {
      const req = request(new URL("/classify", worker.url), {
        method: "POST",
        headers: { "content-type": "image/png", "content-length": String(32 * 1024 * 1024 + 1) },
      });
      req.on("response", async (incoming) => {
        const chunks: Buffer[] = [];
        for await (const chunk of incoming) chunks.push(chunk as Buffer);
        resolve(new Response(new Uint8Array(Buffer.concat(chunks)), { status: incoming.statusCode, headers: incoming.headers as HeadersInit }));
        req.destroy();
      });
      req.on("error", reject);
      req.write(png.subarray(0, 16));
    });
    const body = await expectProblem(res, 413, "payload-too-large");
    expect(body.limit).toEqual({ maxRequestBytes: 32 * 1024 * 1024 });
  });

  it("413 for an image over the per-image byte limit", async () => {
    const noise = new Uint8Array(2000 * 1500 * 3).map(() => Math.floor(Math.random() * 256));
    const big = await encoded(sharp(noise, { raw: { width: 2000, height: 1500, channels: 3 } }).png({ compressionLevel: 0 }));
    expect(big.byteLength).toBeGreaterThan(8 * 1024 * 1024);
    await expectProblem(await post("/classify", big, "image/png"), 413, "payload-too-large");
  });

  it("413 for too many pixels, judged from the header before any decoding", async () => {
    // A valid PNG header claiming 5000x5000 followed by garbage: decoding it would fail with 422.
    const claim = new Uint8Array(133);
    claim.set(png.subarray(0, 33));
    new DataView(claim.buffer).setUint32(16, 5000);
    new DataView(claim.buffer).setUint32(20, 5000);
    const body = await expectProblem(await post("/classify", claim, "image/png"), 413, "image-too-large");
    expect(body.limit).toEqual({ maxImagePixels: 4096 * 2048, maxImageSide: 8192 });
  });

  it("413 for a real image one pixel over the limit, 200 for one at it", async () => {
    const image = (width: number) => encoded(sharp({ create: { width, height: 2048, channels: 3, background: "#123456" } }).png());
    await expectProblem(await post("/classify", await image(4097), "image/png"), 413, "image-too-large");
    const res = await post("/classify", await image(4096), "image/png");
    expect(res.status).toBe(200);
    expect(((await res.json()) as { results: { width: number }[] }).results[0]!.width).toBe(4096);
  });

  it("JPEGs, decoded at 1/8 scale, have their own pixel limit: 413 over it, judged from the header", async () => {
    const jpeg = await encodeGray(digit(mnistTest(1), 0), 28, 28, "jpeg");
    const claim = jpeg.slice();
    const sof = claim.findIndex((b, i) => b === 0xff && claim[i + 1] === 0xc0);
    new DataView(claim.buffer).setUint16(sof + 5, 8193); // height
    const body = await expectProblem(await post("/classify", claim, "image/jpeg"), 413, "image-too-large");
    expect(body.limit).toEqual({ maxJpegPixels: 8192 * 8192, maxImageSide: 8192 });
  });

  it("200 for a 12-megapixel JPEG; 413 for a large one that only a full-size decode could read (CMYK)", async () => {
    const photo = (colourspace: "srgb" | "cmyk") =>
      encoded(sharp({ create: { width: 4000, height: 3000, channels: 3, background: "#2a6b3c" } }).toColourspace(colourspace).jpeg({ quality: 80 }));
    const res = await post("/classify", await photo("srgb"), "image/jpeg");
    expect(res.status).toBe(200);
    expect(((await res.json()) as { results: { width: number; height: number }[] }).results[0]).toMatchObject({ width: 4000, height: 3000 });
    const body = await expectProblem(await post("/classify", await photo("cmyk"), "image/jpeg"), 413, "image-too-large");
    expect(body.detail).toContain("cannot be decoded at reduced scale");
  });

  it("413 for more image parts than one request may carry", async () => {
    const parts = Array.from({ length: 33 }, (_, i): [string, Blob, string] => ["image", new Blob([png], { type: "image/png" }), `d${i}.png`]);
    await expectProblem(await post("/classify", form(parts)), 413, "payload-too-large");
  });
});

describe("multipart", () => {
  it("400 for a form without an image part", async () => {
    await expectProblem(await post("/classify", form([["picture", new Blob([png]), "d.png"]])), 400, "invalid-request");
  });

  it("400 for an image part that is a text field", async () => {
    await expectProblem(await post("/classify", form([["image", "data:image/png;base64,AAAA"]])), 400, "invalid-parameter");
  });

  it("400 for a body that does not parse as multipart", async () => {
    await expectProblem(await post("/classify", "--nope\r\n\r\n", "multipart/form-data; boundary=xyz"), 400, "invalid-request");
  });

  it("a bad image among good ones fails the whole request, naming the part", async () => {
    const parts: [string, Blob, string][] = [
      ["image", new Blob([png]), "good.png"],
      ["image", new Blob([new TextEncoder().encode("junk")]), "junk.png"],
    ];
    const body = await expectProblem(await post("/classify", form(parts)), 415, "unsupported-media-type");
    expect(body.detail).toMatch(/not a PNG, JPEG or WebP/);
  });
});

describe("parameters and models", () => {
  it.each(["0", "-3", "abc", "1.5"])("400 for top_k=%s", async (k) => {
    const body = await expectProblem(await post(`/classify?top_k=${k}`, png, "image/png"), 400, "invalid-parameter");
    expect(body.parameter).toBe("top_k");
  });

  it("400 for an unknown include", async () => {
    await expectProblem(await post("/classify?include=weights", png, "image/png"), 400, "invalid-parameter");
  });

  it("400 for flip_average on a model not trained on mirrors (LeNet: digits), and for a value not true or false", async () => {
    const refused = await expectProblem(await post("/classify?flip_average=true", png, "image/png"), 400, "invalid-parameter");
    expect(refused).toMatchObject({ parameter: "flip_average", detail: "lenet was not trained on mirrored images, so their average is no better answer." });
    const bad = await expectProblem(await post("/v1/models/resnet-edge/classify?flip_average=1", png, "image/png"), 400, "invalid-parameter");
    expect(bad.detail).toBe("flip_average takes true or false, not '1'.");
    const plain = await post("/classify?flip_average=false", png, "image/png");
    expect(plain.status).toBe(200);
    expect(((await plain.json()) as { timing: { flipAverage: boolean } }).timing.flipAverage).toBe(false);
  });

  it("404 for an unknown model, listing the served ones", async () => {
    const body = await expectProblem(await post("/v1/models/alexnet/classify", png, "image/png"), 404, "unknown-model");
    expect(body.available).toEqual(discoverModels().map((m) => m.id));
    await expectProblem(await post("/classify?model=alexnet", png, "image/png"), 404, "unknown-model");
    await expectProblem(await worker.fetch("/v1/models/alexnet"), 404, "unknown-model");
  });

  it("404 for an unknown route and 405 with Allow for a wrong method", async () => {
    await expectProblem(await worker.fetch("/nowhere"), 404, "not-found");
    const res = await worker.fetch("/classify");
    expect(res.headers.get("allow")).toBe("POST");
    await expectProblem(res, 405, "method-not-allowed");
  });
});

it("still classifies correctly after all of the above", async () => {
  const res = await post("/classify?top_k=1", png, "image/png");
  expect(res.status).toBe(200);
  const body = (await res.json()) as { results: { predictions: { label: string }[] }[] };
  expect(body.results[0]!.predictions).toEqual([expect.objectContaining({ label: "7" })]);
});
