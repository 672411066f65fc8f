/**
 * The images a load test sends: the committed samples (samples/, 10 per class) in a mix of
 * sizes and formats, made with sharp, each with the label a correct server answers.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";

export interface Payload {
  /** Sample file and variant, e.g. "cat-train-4501.jpg as photo-jpeg". */
  name: string;
  /** The data set's label: what a correct classifier answers. */
  label: string;
  variant: Variant;
  contentType: string;
  bytes: Buffer;
}

/**
 * One in four of each: the sample as stored (28x28 PNG or 32x32 JPEG), the sample in the other
 * format, a phone-photo-sized 1024x1024 JPEG, and a 512x512 PNG. Upscaled squares, so that the
 * server's resize or centre crop sees the whole object.
 */
export const VARIANTS = ["original", "small-other-format", "photo-jpeg", "photo-png"] as const;
export type Variant = (typeof VARIANTS)[number];

const SAMPLE_SETS: Record<string, string> = { MNIST: "mnist", "CIFAR-10": "cifar10" };
const SAMPLES = join(import.meta.dirname, "samples");

/** The data sets load tests have samples of (a model's manifest names its data set). */
export const DATASETS = Object.keys(SAMPLE_SETS);

async function encode(file: Buffer, variant: Variant): Promise<{ bytes: Buffer; contentType: string }> {
  const isPng = file[0] === 0x89;
  const image = sharp(file);
  switch (variant) {
    case "original":
      return { bytes: file, contentType: isPng ? "image/png" : "image/jpeg" };
    case "small-other-format":
      return isPng
        ? { bytes: await image.jpeg({ quality: 90 }).toBuffer(), contentType: "image/jpeg" }
        : { bytes: await image.png().toBuffer(), contentType: "image/png" };
    case "photo-jpeg":
      return { bytes: await image.resize(1024, 1024, { kernel: "cubic" }).jpeg({ quality: 85 }).toBuffer(), contentType: "image/jpeg" };
    case "photo-png":
      return { bytes: await image.resize(512, 512, { kernel: "cubic" }).png().toBuffer(), contentType: "image/png" };
  }
}

/**
 * A 4000x3000 (12-megapixel) photo-like JPEG, smooth gradients and noise, as a phone sends:
 * 3.6 MiB at quality 90.
 *
 * @example
 * const photo = await twelveMegapixelJpeg(); // Buffer
 */
export async function twelveMegapixelJpeg(): Promise<Buffer> {
  const width = 4000;
  const height = 3000;
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      const noise = ((x * 7919 + y * 104729) % 23) - 11;
      pixels[i] = (x * 255) / width + noise;
      pixels[i + 1] = (y * 255) / height + noise;
      pixels[i + 2] = 128 + 100 * Math.sin((x + y) / 200) + noise;
    }
  }
  return sharp(pixels, { raw: { width, height, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

/**
 * `count` payloads of a data set's samples, classes interleaved and variants in turn.
 *
 * @example
 * const payloads = await makePayloads("MNIST", 40); // 4 per digit, 10 of each variant
 */
export async function makePayloads(dataset: string, count: number): Promise<Payload[]> {
  const set = SAMPLE_SETS[dataset];
  if (!set) throw new Error(`no load-test samples for data set '${dataset}' (have: ${DATASETS.join(", ")})`);
  const files = readdirSync(join(SAMPLES, set)).sort();
  const byClass = new Map<string, string[]>();
  for (const file of files) {
    const label = file.slice(0, file.indexOf("-"));
    byClass.set(label, [...(byClass.get(label) ?? []), file]);
  }
  const classes = [...byClass.keys()];
  const payloads: Payload[] = [];
  for (let i = 0; i < count; i++) {
    const label = classes[i % classes.length]!;
    const pool = byClass.get(label)!;
    const file = pool[Math.floor(i / classes.length) % pool.length]!;
    const variant = VARIANTS[i % VARIANTS.length]!;
    const encoded = await encode(readFileSync(join(SAMPLES, set, file)), variant);
    payloads.push({ name: `${file} as ${variant}`, label, variant, ...encoded });
  }
  return payloads;
}

/**
 * A multipart body teaching `payloads` (image parts and label fields), as POST /finetune takes it.
 *
 * @example
 * const { body, contentType } = await finetuneBody(payloads.slice(0, 2));
 */
export async function finetuneBody(payloads: Payload[]): Promise<{ body: Buffer; contentType: string }> {
  const form = new FormData();
  payloads.forEach((p, i) => {
    form.append("image", new Blob([new Uint8Array(p.bytes)], { type: p.contentType }), `example-${i}`);
    form.append("label", p.label);
  });
  const request = new Request("http://loadtest.invalid", { method: "POST", body: form });
  return { body: Buffer.from(await request.arrayBuffer()), contentType: request.headers.get("content-type")! };
}
