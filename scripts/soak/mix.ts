/**
 * The soak's traffic mix (shares of requests), as a deployment sees it: single images and
 * multipart batches to the main model and to an R2-served CIFAR-10 model, `include=embedding`,
 * fine-tune calls to a classifier, bad inputs that must get their 4xx, and clients that hang
 * up before sending their whole body or before reading the answer.
 */
import { finetuneBody, type Payload } from "../loadtest/payloads.ts";
import type { TrafficRequest, WeightedRequest } from "./traffic.ts";

export interface MixOptions {
  /** The main model and the load-test images of its data set. */
  model: string;
  images: Payload[];
  /** An R2-served CIFAR-10 model and CIFAR-10 images; omitted when the main model is that one. */
  second?: { model: string; images: Payload[] };
  /** A classifier on the main model to teach, and a full-access key; no fine-tuning without them. */
  classifier?: string;
  key?: string;
}

/** Shares of the mix, in percent. */
export const SHARES = {
  single: 38,
  batch: 8,
  embedding: 8,
  secondSingle: 6,
  secondBatch: 2,
  finetune: 3,
  bad: 15,
  hangUpMidBody: 10,
  hangUpBeforeAnswer: 10,
};

let turn = 0;
const next = <T>(items: readonly T[]): T => items[turn++ % items.length]!;

async function multipart(images: Payload[]): Promise<{ body: Buffer; contentType: string }> {
  const form = new FormData();
  images.forEach((p, i) => form.append("image", new Blob([new Uint8Array(p.bytes)], { type: p.contentType }), `image-${i}`));
  const request = new Request("http://soak.invalid", { method: "POST", body: form });
  return { body: Buffer.from(await request.arrayBuffer()), contentType: request.headers.get("content-type")! };
}

/** A 2xx check: the answer classifies `count` images (and carries an embedding when asked). */
function answers(count: number, embedding = false): (body: string) => string | undefined {
  return (body) => {
    const parsed = JSON.parse(body) as { results?: { predictions?: unknown[]; embedding?: number[] }[] };
    if (parsed.results?.length !== count) return `${parsed.results?.length ?? 0} results for ${count} images`;
    if (parsed.results.some((r) => !r.predictions?.length)) return "a result without predictions";
    if (embedding && parsed.results.some((r) => !r.embedding?.length)) return "no embedding";
    return undefined;
  };
}

/** A PNG cut inside its data, with its IEND gone: a damaged upload. */
function truncatedPng(images: Payload[]): Buffer | undefined {
  const png = images.find((p) => p.contentType === "image/png");
  return png && png.bytes.subarray(0, Math.floor(png.bytes.length * 0.6));
}

/**
 * The weighted requests of the mix.
 *
 * @example
 * const mix = await soakMix({ model: "lenet", images, second: { model: "resnet-edge", images: cifar } });
 */
export async function soakMix({ model, images, second, classifier, key }: MixOptions): Promise<WeightedRequest[]> {
  const auth: Record<string, string> = key ? { authorization: `Bearer ${key}` } : {};
  const classifyPath = (id: string, query = "top_k=3") => `/v1/models/${encodeURIComponent(id)}/classify?${query}`;
  const single = (id: string, pool: Payload[], kind: string, query?: string, check = answers(1, query?.includes("embedding"))): (() => TrafficRequest) => () => {
    const p = next(pool);
    return { kind, path: classifyPath(id, query), headers: { ...auth, "content-type": p.contentType }, body: p.bytes, expect: "2xx", check };
  };
  const form = (kind: string, id: string, bodies: { body: Buffer; contentType: string }[], count: number) => (): TrafficRequest => {
    const { body, contentType } = next(bodies);
    return { kind, path: classifyPath(id), headers: { ...auth, "content-type": contentType }, body, expect: "2xx", check: answers(count) };
  };
  const batches = await Promise.all(Array.from({ length: 4 }, (_, i) => multipart(images.slice(i * 4, i * 4 + 4))));
  const secondBatches = second ? await Promise.all(Array.from({ length: 4 }, (_, i) => multipart(second.images.slice(i * 2, i * 2 + 2)))) : [];
  const small = images.filter((p) => p.variant === "original");
  const lessons = classifier && key ? await Promise.all(Array.from({ length: 5 }, (_, i) => finetuneBody(small.slice(2 * i, 2 * i + 2)))) : [];
  const damaged = truncatedPng(images);
  const gif = Buffer.from("GIF89a\x01\x00\x01\x00\x00\x00\x00;", "latin1");

  const bad: (() => TrafficRequest)[] = [
    () => ({ kind: "bad: text/plain body", path: classifyPath(model), headers: { ...auth, "content-type": "text/plain" }, body: Buffer.from("hello"), expect: 415 }),
    () => ({ kind: "bad: empty body", path: classifyPath(model), headers: { ...auth, "content-type": "image/png" }, body: Buffer.alloc(0), expect: 400 }),
    () => ({ kind: "bad: top_k=0", path: classifyPath(model, "top_k=0"), headers: { ...auth, "content-type": images[0]!.contentType }, body: images[0]!.bytes, expect: 400 }),
    () => ({ kind: "bad: unknown model", path: classifyPath("no-such-model"), headers: { ...auth, "content-type": images[0]!.contentType }, body: images[0]!.bytes, expect: 404 }),
    () => ({ kind: "bad: GIF sent as PNG", path: classifyPath(model), headers: { ...auth, "content-type": "image/png" }, body: gif, expect: 415 }),
    ...(damaged ? [() => ({ kind: "bad: truncated PNG", path: classifyPath(model), headers: { ...auth, "content-type": "image/png" }, body: damaged, expect: 422 }) as TrafficRequest] : []),
    () => ({ kind: "bad: fine-tune without a key", path: `/finetune?classifier=${classifier ?? "soak"}`, headers: { "content-type": "multipart/form-data; boundary=x" }, body: Buffer.from("--x--\r\n"), expect: 401 }),
  ];
  const photo = images.filter((p) => p.variant !== "original");

  const mix: WeightedRequest[] = [
    { weight: SHARES.single, make: single(model, images, `${model} single`) },
    { weight: SHARES.batch, make: form(`${model} batch of 4`, model, batches, 4) },
    { weight: SHARES.embedding, make: single(model, small, `${model} include=embedding`, "top_k=1&include=embedding") },
    { weight: SHARES.bad, make: () => next(bad)() },
    { weight: SHARES.hangUpMidBody, make: () => ({ ...single(model, photo, "hang up mid-body")(), hangUp: "mid-body" }) },
    { weight: SHARES.hangUpBeforeAnswer, make: () => ({ ...single(model, images, "hang up before the answer")(), hangUp: "before-answer" }) },
  ];
  if (second) {
    mix.push(
      { weight: SHARES.secondSingle, make: single(second.model, second.images, `${second.model} single`) },
      { weight: SHARES.secondBatch, make: form(`${second.model} batch of 2`, second.model, secondBatches, 2) },
    );
  }
  if (lessons.length) {
    mix.push({ weight: SHARES.finetune, make: () => {
      const lesson = next(lessons);
      return { kind: "fine-tune", path: `/finetune?classifier=${encodeURIComponent(classifier!)}`, headers: { ...auth, "content-type": lesson.contentType }, body: lesson.body, expect: "2xx" };
    } });
  }
  return mix;
}
