/**
 * Fine-tuning, measured through the HTTP API of the built Worker in workerd (Miniflare), with
 * LeNet (trained on MNIST digits) as the frozen backbone and Fashion-MNIST as what it is taught:
 * - few-shot: a new classifier taught k = 1, 5, 10, 50 examples per class, accuracy on the
 *   10,000 test images after each;
 * - the whole training set streamed in calls of 100: the learning curve (table, and an SVG plot
 *   written to test/bench/results/);
 * - latency of calls of 1, 10 and 100 examples, split into embedding and head update, and the
 *   time from an acknowledged call to a /classify that uses its version;
 * - forgetting: a copy of LeNet's own classifier taught the ten Fashion classes, its accuracy
 *   on the 10,000 MNIST test digits before and after.
 * Run: npm run bench:finetune
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { it } from "vitest";
import { FASHION_LABELS, fashionMnist } from "../support/fashion";
import { digit, encodeGray, mnistTest, type Digits, type EncodedImage } from "../support/mnist";
import { ROOT } from "../support/paths";
import { quantile } from "../../scripts/stats.ts";
import { startWorker, type RunningWorker } from "../support/worker";

const CALL_SIZE = 100;
const CURVE_EVERY = 50; // calls between points of the learning curve
const CURVE_TEST_IMAGES = 2000; // test images per curve point (the final point uses all 10,000)
const LATENCY_CALLS = { 1: 50, 10: 50, 100: 20 } as const;
const RESULTS = join(ROOT, "test", "bench", "results");

interface FinetuneBody {
  classifier: { version: number };
  metrics: { examples: number; accuracyBefore: number };
  timing: { embedMs: number; updateMs: number; totalMs: number };
}

const pngsOf = (set: Digits, indices: number[]) => Promise.all(indices.map((i) => encodeGray(digit(set, i), 28, 28, "png")));
const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

async function create(worker: RunningWorker, id: string, init: "empty" | "pretrained") {
  const res = await worker.fetch("/v1/classifiers", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ id, backbone: "lenet", init }) });
  if (res.status !== 201) throw new Error(`create ${id}: ${res.status} ${await res.text()}`);
}

async function teach(worker: RunningWorker, id: string, pngs: EncodedImage[], labels: string[]): Promise<FinetuneBody & { clientMs: number }> {
  const form = new FormData();
  pngs.forEach((png, i) => {
    form.append("image", new Blob([png], { type: "image/png" }), `${i}.png`);
    form.append("label", labels[i]!);
  });
  const start = performance.now();
  const res = await worker.fetch(`/finetune?classifier=${id}`, { method: "POST", body: form });
  if (res.status !== 200) throw new Error(`finetune ${id}: ${res.status} ${await res.text()}`);
  return { ...((await res.json()) as FinetuneBody), clientMs: performance.now() - start };
}

/** Top-1 accuracy of a classifier on images, classified over HTTP in multipart batches of 32. */
async function accuracy(worker: RunningWorker, id: string, pngs: EncodedImage[], labels: string[]): Promise<number> {
  let correct = 0;
  for (let start = 0; start < pngs.length; start += 32) {
    const form = new FormData();
    pngs.slice(start, start + 32).forEach((png, i) => form.append("image", new Blob([png], { type: "image/png" }), `${start + i}.png`));
    const res = await worker.fetch(`/classify?classifier=${id}&top_k=1`, { method: "POST", body: form });
    const body = (await res.json()) as { results: { predictions: { label: string }[] }[] };
    body.results.forEach((r, i) => r.predictions[0]!.label === labels[start + i] && correct++);
  }
  return correct / pngs.length;
}

function curveSvg(points: { examples: number; accuracy: number }[], fewShot: { examples: number; accuracy: number }[]): string {
  const [w, h, left, bottom] = [640, 360, 56, 40];
  const maxX = Math.max(...points.map((p) => p.examples));
  const x = (v: number) => left + (Math.log10(v) / Math.log10(maxX)) * (w - left - 16);
  const y = (v: number) => h - bottom - v * (h - bottom - 16);
  const line = points.map((p, i) => `${i ? "L" : "M"}${x(p.examples).toFixed(1)},${y(p.accuracy).toFixed(1)}`).join(" ");
  const dots = fewShot.map((p) => `<circle cx="${x(p.examples).toFixed(1)}" cy="${y(p.accuracy).toFixed(1)}" r="4" fill="#d95f02"/>`).join("");
  const yTicks = [0, 0.2, 0.4, 0.6, 0.8, 1].map((v) => `<text x="${left - 8}" y="${y(v) + 4}" text-anchor="end">${(v * 100).toFixed(0)} %</text><line x1="${left}" x2="${w - 16}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`).join("");
  const xTicks = [10, 100, 1000, 10000, 60000].filter((v) => v <= maxX).map((v) => `<text x="${x(v)}" y="${h - bottom + 16}" text-anchor="middle">${v.toLocaleString("en")}</text>`).join("");
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>${yTicks}${xTicks}
<path d="${line}" fill="none" stroke="#1b9e77" stroke-width="2"/>${dots}
<text x="${(w + left) / 2}" y="${h - 6}" text-anchor="middle">examples taught (log scale)</text>
<text x="${left}" y="12">Fashion-MNIST test accuracy: LeNet backbone, head taught over HTTP (line: calls of 100; dots: k-shot)</text>
</svg>\n`;
}

it("fine-tuning: few-shot, learning curve, latency, forgetting", { timeout: 3_600_000 }, async () => {
  const train = fashionMnist("train");
  const test = fashionMnist("t10k");
  const testPngs = await pngsOf(test, range(test.count));
  const testLabels = Array.from(test.labels, (l) => FASHION_LABELS[l]!);
  const worker = await startWorker();
  const lines: string[] = [];
  const log = (line: string) => {
    console.log(line);
    lines.push(line);
  };
  try {
    // Few-shot: the first k training images of each class, topped up from k to the next k.
    await create(worker, "fashion-few", "empty");
    const byClass = FASHION_LABELS.map((_, c) => range(train.count).filter((i) => train.labels[i] === c));
    const fewShot: { k: number; examples: number; version: number; accuracy: number }[] = [];
    let taughtK = 0;
    for (const k of [1, 5, 10, 50]) {
      const indices = byClass.flatMap((list) => list.slice(taughtK, k));
      let version = 0;
      for (let s = 0; s < indices.length; s += CALL_SIZE) {
        const chunk = indices.slice(s, s + CALL_SIZE);
        version = (await teach(worker, "fashion-few", await pngsOf(train, chunk), chunk.map((i) => FASHION_LABELS[train.labels[i]!]!))).classifier.version;
      }
      taughtK = k;
      fewShot.push({ k, examples: 10 * k, version, accuracy: await accuracy(worker, "fashion-few", testPngs, testLabels) });
      console.log(`few-shot k=${k}: ${(fewShot.at(-1)!.accuracy * 100).toFixed(2)} %`);
    }

    // The whole training set in calls of 100, in the data set's own (shuffled) order.
    await create(worker, "fashion-stream", "empty");
    const curve: { calls: number; examples: number; accuracy: number; prequential: number }[] = [];
    const updates: number[] = [];
    let prequential = 0;
    const calls = train.count / CALL_SIZE;
    for (let call = 0; call < calls; call++) {
      const indices = range(CALL_SIZE, call * CALL_SIZE);
      const body = await teach(worker, "fashion-stream", await pngsOf(train, indices), indices.map((i) => FASHION_LABELS[train.labels[i]!]!));
      updates.push(body.timing.updateMs);
      prequential += body.metrics.accuracyBefore;
      if ((call + 1) % CURVE_EVERY === 0 || call === 0 || call + 1 === calls) {
        const n = call + 1 === calls ? test.count : CURVE_TEST_IMAGES;
        const acc = await accuracy(worker, "fashion-stream", testPngs.slice(0, n), testLabels.slice(0, n));
        curve.push({ calls: call + 1, examples: body.metrics.examples, accuracy: acc, prequential: prequential / (call + 1) });
        console.log(`stream: ${call + 1}/${calls} calls, ${body.metrics.examples} examples, test accuracy ${(acc * 100).toFixed(2)} % (${n} images), update p50 ${quantile(updates, 0.5).toFixed(0)} ms`);
      }
    }

    // Latency by call size, on the streamed classifier (10 classes, 60,000 examples stored).
    const latency: Record<string, string>[] = [];
    let offset = 0;
    for (const [size, count] of Object.entries(LATENCY_CALLS).map(([s, c]) => [Number(s), c] as const)) {
      const rows: (FinetuneBody & { clientMs: number })[] = [];
      for (let i = 0; i < count; i++) {
        const indices = range(size, offset % (test.count - size));
        offset += size;
        rows.push(await teach(worker, "fashion-stream", indices.map((j) => testPngs[j]!), indices.map((j) => testLabels[j]!)));
      }
      const stat = (pick: (r: (typeof rows)[number]) => number) => `${quantile(rows.map(pick), 0.5).toFixed(1)} / ${quantile(rows.map(pick), 0.99).toFixed(1)}`;
      latency.push({ size: String(size), calls: String(count), client: stat((r) => r.clientMs), embed: stat((r) => r.timing.embedMs), update: stat((r) => r.timing.updateMs) });
    }
    // Acknowledged to visible: the first /classify after an acknowledged call.
    const visible: number[] = [];
    for (let i = 0; i < 20; i++) {
      const acked = await teach(worker, "fashion-stream", [testPngs[i]!], [testLabels[i]!]);
      const start = performance.now();
      const res = await worker.fetch("/classify?classifier=fashion-stream", { method: "POST", headers: { "content-type": "image/png" }, body: testPngs[i]! });
      const seen = ((await res.json()) as { classifier: { version: number } }).classifier.version;
      if (seen < acked.classifier.version) throw new Error(`classify saw version ${seen} after version ${acked.classifier.version} was acknowledged`);
      visible.push(performance.now() - start);
    }

    // Forgetting: LeNet's own head copied, taught 50 examples of each Fashion class.
    const digits = mnistTest(10_000);
    const digitPngs = await pngsOf(digits, range(digits.count));
    const digitLabels = Array.from(digits.labels, String);
    await create(worker, "digits-fashion", "pretrained");
    const before = await accuracy(worker, "digits-fashion", digitPngs, digitLabels);
    const k50 = byClass.flatMap((list) => list.slice(0, 50));
    for (let s = 0; s < k50.length; s += CALL_SIZE) {
      const chunk = k50.slice(s, s + CALL_SIZE);
      await teach(worker, "digits-fashion", await pngsOf(train, chunk), chunk.map((i) => FASHION_LABELS[train.labels[i]!]!));
    }
    const after = await accuracy(worker, "digits-fashion", digitPngs, digitLabels);
    const fashionAfter = await accuracy(worker, "digits-fashion", testPngs, testLabels);

    const pct = (v: number) => `${(v * 100).toFixed(2)} %`;
    log("\n### Few-shot (new classifier on LeNet, Fashion-MNIST test set, 10,000 images)\n");
    log("| examples per class | examples | version | accuracy |\n|---:|---:|---:|---:|");
    for (const r of fewShot) log(`| ${r.k} | ${r.examples} | ${r.version} | ${pct(r.accuracy)} |`);
    log(`\n### Learning curve (training set streamed in calls of ${CALL_SIZE}; ${CURVE_TEST_IMAGES} test images per point, all 10,000 at the end)\n`);
    log("| calls | examples | test accuracy | prequential accuracy (before each call) |\n|---:|---:|---:|---:|");
    for (const r of curve) log(`| ${r.calls} | ${r.examples} | ${pct(r.accuracy)} | ${pct(r.prequential)} |`);
    log("\n### Latency (ms, p50 / p99; server-side embedding = decode + LeNet, update = head training in the Durable Object)\n");
    log("| examples per call | calls | client | embedding | head update |\n|---:|---:|---:|---:|---:|");
    for (const r of latency) log(`| ${r.size} | ${r.calls} | ${r.client} | ${r.embed} | ${r.update} |`);
    log(`\nAcknowledged call -> /classify using its version: p50 ${quantile(visible, 0.5).toFixed(1)} ms, max ${Math.max(...visible).toFixed(1)} ms (20 calls; the first /classify after each acknowledgement always saw its version).`);
    log(`\n### Forgetting (copy of LeNet's head taught 50 examples of each of the 10 Fashion classes, in calls of 100)\n`);
    log(`MNIST test digits (10,000): ${pct(before)} before, ${pct(after)} after (${((after - before) * 100).toFixed(2)} points); Fashion-MNIST test: ${pct(fashionAfter)}.`);

    mkdirSync(RESULTS, { recursive: true });
    writeFileSync(join(RESULTS, "finetune.md"), lines.join("\n") + "\n");
    writeFileSync(join(RESULTS, "fashion-mnist-learning-curve.svg"), curveSvg(curve, fewShot));
  } finally {
    await worker.dispose();
  }
});
