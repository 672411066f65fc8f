/**
 * Damaged images of all three formats posted to the Worker in workerd: every one gets a 200 or
 * a 4xx problem+json, never a 5xx or a hang, and the Worker serves whole images afterwards.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, expect, it } from "vitest";
import { mutations, type Mutation } from "../support/image-mutations";
import { ROOT } from "../support/paths";
import { startWorker, type RunningWorker } from "../support/worker";

let worker: RunningWorker;
beforeAll(async () => {
  worker = await startWorker();
});
afterAll(() => worker?.dispose());

const fixture = (name: string) => new Uint8Array(readFileSync(join(ROOT, "test/fixtures", name)));
const TYPES = { png: "image/png", jpeg: "image/jpeg", webp: "image/webp" } as const;

interface Outcome {
  name: string;
  status: number;
  type: string;
}

async function post(format: keyof typeof TYPES, mutation: Mutation): Promise<Outcome> {
  const res = await worker.fetch("/classify?top_k=1", {
    method: "POST",
    body: mutation.bytes,
    headers: { "content-type": TYPES[format] },
    signal: AbortSignal.timeout(15_000), // a hang fails the test instead of stalling it
  });
  const body = (await res.json()) as { type?: string };
  if (res.status !== 200) expect(res.headers.get("content-type"), `${format} ${mutation.name}`).toBe("application/problem+json");
  return { name: mutation.name, status: res.status, type: body.type ?? "ok" };
}

/** Run `jobs` with at most `concurrency` in flight. */
async function pool<T>(jobs: (() => Promise<T>)[], concurrency: number): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]!();
    }
  }));
  return results;
}

it("answers every damaged PNG, JPEG and WebP with 200 or a 4xx problem, never a 5xx or a hang", async () => {
  // A JPEG large enough to be decoded at 1/8 scale from its DC coefficients (workers/images/jpeg-eighth.ts).
  const large = new Uint8Array(await sharp(fixture("mnist-test-1-label-2.jpg")).resize(1024, 1024).jpeg({ quality: 80 }).toBuffer());
  const sources: [keyof typeof TYPES, Uint8Array<ArrayBuffer>, number][] = [
    ["png", fixture("mnist-test-0-label-7.png"), 512],
    ["jpeg", fixture("mnist-test-1-label-2.jpg"), 600],
    ["webp", fixture("mnist-test-2-label-1.webp"), 146],
    ["jpeg", large, 300],
  ];
  const jobs = sources.flatMap(([format, bytes, flips]) => mutations(bytes, flips).map((m) => () => post(format, m)));
  const outcomes = await pool(jobs, 8);
  const tally: Record<string, number> = {};
  for (const o of outcomes) tally[`${o.status} ${o.type}`] = (tally[`${o.status} ${o.type}`] ?? 0) + 1;
  console.log(`image fuzz: ${outcomes.length} damaged images`, tally);
  expect(outcomes.filter((o) => o.status >= 500)).toEqual([]);
  expect(outcomes.every((o) => o.status === 200 || (o.status >= 400 && o.status < 500))).toBe(true);
  expect(outcomes.filter((o) => o.status === 422).length).toBeGreaterThan(100);

  // Whole images still classify, in batches as before.
  const whole = await Promise.all(Array.from({ length: 8 }, () => post("png", { name: "whole", bytes: fixture("mnist-test-0-label-7.png") })));
  expect(whole.map((o) => o.status)).toEqual(Array(8).fill(200));
}, 300_000);

it("refuses the PNG with a wrong IDAT CRC and no IEND with 422 image-decode-failed", async () => {
  const png = fixture("mnist-test-0-label-7.png");
  const view = new DataView(png.buffer);
  let at = 8;
  while (String.fromCharCode(...png.subarray(at + 4, at + 8)) !== "IDAT") at += 12 + view.getUint32(at);
  const end = at + 12 + view.getUint32(at);
  const damaged = png.slice(0, end);
  damaged[end - 1] = damaged[end - 1]! ^ 0xff;
  const res = await worker.fetch("/classify", { method: "POST", body: damaged, headers: { "content-type": "image/png" } });
  expect(res.status).toBe(422);
  expect(((await res.json()) as { type: string }).type).toBe("urn:cnn-edge:problem:image-decode-failed");
});
