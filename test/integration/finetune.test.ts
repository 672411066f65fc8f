/**
 * Fine-tuning through HTTP against the built Worker in workerd: classifiers in Durable Objects
 * with SQLite storage, embeddings from the real LeNet, real Fashion-MNIST and MNIST images.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FASHION_LABELS, fashionMnist } from "../support/fashion";
import { digit, encodeGray, mnistTest, type EncodedImage } from "../support/mnist";
import { startWorker, type RunningWorker } from "../support/worker";

interface Example {
  png: EncodedImage;
  label: string;
}
interface FinetuneBody {
  classifier: { id: string; version: number };
  labels: string[];
  metrics: { loss: number; accuracy: number; accuracyBefore: number; taught: number; examples: number; classes: number; newClasses: string[]; updateMs: number };
  timing: { embedMs: number; updateMs: number; totalMs: number };
}
interface ClassifyBody {
  classifier?: { id: string; version: number };
  results: { predictions: { label: string; probability: number }[]; logits?: number[] }[];
}
interface InfoBody {
  id: string;
  version: number;
  labels: string[];
  examples: number;
  baseExemplars: number;
}

const fashion = fashionMnist("t10k");
/** Fashion-MNIST test images of one class, skipping the first `skip` of them. */
async function fashionExamples(label: string, count: number, skip = 0): Promise<Example[]> {
  const c = FASHION_LABELS.indexOf(label);
  const out: Example[] = [];
  for (let i = 0, seen = 0; out.length < count; i++) {
    if (fashion.labels[i] !== c || seen++ < skip) continue;
    out.push({ png: await encodeGray(digit(fashion, i), 28, 28, "png"), label });
  }
  return out;
}

let worker: RunningWorker;
beforeAll(async () => {
  worker = await startWorker();
});
afterAll(() => worker?.dispose());

const json = (body: unknown): RequestInit => ({ method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

function form(examples: Example[], extra: Record<string, string> = {}): FormData {
  const data = new FormData();
  for (const [key, value] of Object.entries(extra)) data.append(key, value);
  examples.forEach((example, i) => {
    data.append("image", new Blob([example.png], { type: "image/png" }), `example-${i}.png`);
    data.append("label", example.label);
  });
  return data;
}

async function create(w: RunningWorker, id: string, init: "empty" | "pretrained" = "empty"): Promise<InfoBody> {
  const res = await w.fetch("/v1/classifiers", json({ id, backbone: "lenet", init }));
  expect(res.status).toBe(201);
  expect(res.headers.get("location")).toBe(`/v1/classifiers/${id}`);
  return (await res.json()) as InfoBody;
}

async function teach(w: RunningWorker, id: string, examples: Example[]): Promise<FinetuneBody> {
  const res = await w.fetch(`/finetune?classifier=${id}`, { method: "POST", body: form(examples) });
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as FinetuneBody;
}

async function classifyOne(w: RunningWorker, query: string, png: EncodedImage): Promise<ClassifyBody> {
  const res = await w.fetch(`/classify?${query}`, { method: "POST", headers: { "content-type": "image/png" }, body: png });
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as ClassifyBody;
}

async function describeClassifier(w: RunningWorker, id: string): Promise<InfoBody> {
  return (await (await w.fetch(`/v1/classifiers/${id}`)).json()) as InfoBody;
}

describe("a new classifier on the LeNet backbone", () => {
  it("learns new classes from multipart and JSON calls, and classifies unseen examples as them", async () => {
    const info = await create(worker, "fashion-few");
    expect(info).toMatchObject({ version: 1, labels: [], examples: 0, baseExemplars: 0 });
    const empty = await worker.fetch("/classify?classifier=fashion-few", { method: "POST", headers: { "content-type": "image/png" }, body: (await fashionExamples("Bag", 1))[0]!.png });
    expect(empty.status).toBe(409);

    const first = await teach(worker, "fashion-few", [...(await fashionExamples("Trouser", 10)), ...(await fashionExamples("Bag", 10))]);
    expect(first.classifier.version).toBe(2);
    expect(first.labels).toEqual(["Trouser", "Bag"]);
    expect(first.metrics).toMatchObject({ taught: 20, examples: 20, classes: 2, newClasses: ["Trouser", "Bag"] });

    const sneakers = await fashionExamples("Sneaker", 10);
    const res = await worker.fetch(
      "/v1/classifiers/fashion-few/examples",
      json({ examples: sneakers.map(({ png, label }) => ({ image: Buffer.from(png).toString("base64"), label })) }),
    );
    expect(res.status).toBe(200);
    const second = (await res.json()) as FinetuneBody;
    expect(second.classifier.version).toBe(3);
    expect(second.metrics).toMatchObject({ taught: 10, examples: 30, classes: 3, newClasses: ["Sneaker"] });

    let correct = 0;
    const unseen = [...(await fashionExamples("Trouser", 10, 10)), ...(await fashionExamples("Bag", 10, 10)), ...(await fashionExamples("Sneaker", 10, 10))];
    for (const example of unseen) {
      const body = await classifyOne(worker, "classifier=fashion-few", example.png);
      expect(body.classifier).toEqual({ id: "fashion-few", version: 3 });
      if (body.results[0]!.predictions[0]!.label === example.label) correct++;
    }
    console.log(`fashion-few: ${correct}/30 unseen examples right after 10 per class`);
    expect(correct).toBeGreaterThanOrEqual(24);
  });
});

describe("a copy of LeNet's own classifier", () => {
  const digits = mnistTest(300);
  let pngs: EncodedImage[];
  beforeAll(async () => {
    await create(worker, "digits-plus", "pretrained");
    pngs = await Promise.all(Array.from({ length: digits.count }, (_, i) => encodeGray(digit(digits, i), 28, 28, "png")));
  });

  it("starts as the model: version 1's head gives the model's own logits", async () => {
    for (const png of pngs.slice(0, 20)) {
      const model = await classifyOne(worker, "model=lenet&include=logits", png);
      const copy = await classifyOne(worker, "classifier=digits-plus&version=1&include=logits", png);
      const diff = Math.max(...model.results[0]!.logits!.map((v, i) => Math.abs(v - copy.results[0]!.logits![i]!)));
      expect(diff).toBeLessThan(1e-3);
    }
  });

  it("learns a new class without forgetting the digits", async () => {
    const accuracy = async (query: string) => {
      let correct = 0;
      for (const [i, png] of pngs.entries()) {
        if ((await classifyOne(worker, query, png)).results[0]!.predictions[0]!.label === String(digits.labels[i])) correct++;
      }
      return correct / pngs.length;
    };
    const before = await accuracy("classifier=digits-plus");
    const taught = await teach(worker, "digits-plus", await fashionExamples("Trouser", 30));
    expect(taught.labels).toEqual([..."0123456789", "Trouser"]);
    const after = await accuracy("classifier=digits-plus");
    console.log(`digits-plus: digit accuracy ${before} before, ${after} after learning 'Trouser'`);
    expect(after).toBeGreaterThanOrEqual(before - 0.01);
    const trousers = await fashionExamples("Trouser", 10, 30);
    let recognised = 0;
    for (const t of trousers) if ((await classifyOne(worker, "classifier=digits-plus", t.png)).results[0]!.predictions[0]!.label === "Trouser") recognised++;
    expect(recognised).toBeGreaterThanOrEqual(8);
  });

  it("is guarded: the served model's own classifier cannot be fine-tuned or rolled back", async () => {
    const res = await worker.fetch("/finetune?classifier=lenet", { method: "POST", body: form(await fashionExamples("Bag", 1)) });
    expect(res.status).toBe(403);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    expect(((await res.json()) as { type: string }).type).toBe("urn:cnn-edge:problem:classifier-read-only");
    expect((await worker.fetch("/v1/classifiers/lenet/rollback", json({ version: 1 }))).status).toBe(403);
    expect((await worker.fetch("/v1/classifiers", json({ id: "lenet", backbone: "lenet" }))).status).toBe(409);
    expect(await describeClassifier(worker, "lenet")).toMatchObject({ id: "lenet", readOnly: true, labels: [..."0123456789"] });
  });
});

describe("versions", () => {
  it("are listed, kept, and rolled back to as a new version; a client reads its own writes", async () => {
    await create(worker, "versioned");
    const bags = await fashionExamples("Bag", 6);
    const sandals = await fashionExamples("Sandal", 6);
    const v2 = await teach(worker, "versioned", bags.slice(0, 3));
    expect((await classifyOne(worker, "classifier=versioned", bags[5]!.png)).classifier!.version).toBeGreaterThanOrEqual(v2.classifier.version);
    const v3 = await teach(worker, "versioned", sandals.slice(0, 3));
    expect((await classifyOne(worker, "classifier=versioned", bags[5]!.png)).classifier!.version).toBeGreaterThanOrEqual(v3.classifier.version);
    expect(v3.labels).toEqual(["Bag", "Sandal"]);

    const rolled = await worker.fetch("/v1/classifiers/versioned/rollback", json({ version: 2 }));
    expect(rolled.status).toBe(201);
    expect(await rolled.json()).toMatchObject({ classifier: { id: "versioned", version: 4 }, rolledBackTo: 2, labels: ["Bag"], examples: 3 });
    expect(await describeClassifier(worker, "versioned")).toMatchObject({ version: 4, labels: ["Bag"], examples: 3 });
    const latest = await classifyOne(worker, "classifier=versioned", sandals[5]!.png);
    expect(latest.classifier!.version).toBe(4);
    expect(latest.results[0]!.predictions.map((p) => p.label)).toEqual(["Bag"]);
    const old = await classifyOne(worker, "classifier=versioned&version=3", sandals[5]!.png);
    expect(old.classifier!.version).toBe(3);
    expect(old.results[0]!.predictions[0]!.label).toBe("Sandal");

    const v5 = await teach(worker, "versioned", bags.slice(3, 5));
    expect(v5.metrics).toMatchObject({ examples: 5, classes: 1 }); // the rolled-back Sandals are no longer counted
    const { versions } = (await (await worker.fetch("/v1/classifiers/versioned/versions")).json()) as { versions: { version: number; kind: string; parent: number | null }[] };
    expect(versions.map((v) => [v.version, v.kind, v.parent])).toEqual([
      [5, "finetune", 4], [4, "rollback", 2], [3, "finetune", 2], [2, "finetune", 1], [1, "create", null],
    ]);
    const missing = await worker.fetch("/classify?classifier=versioned&version=9", { method: "POST", headers: { "content-type": "image/png" }, body: bags[0]!.png });
    expect(missing.status).toBe(404);
  });
});

describe("concurrency", () => {
  it("serialises 50 concurrent calls: every example counted once, versions strictly increasing", async () => {
    await create(worker, "crowd");
    const pool = [...(await fashionExamples("Coat", 50)), ...(await fashionExamples("Dress", 50))];
    const calls = Array.from({ length: 50 }, (_, i) => [pool[i]!, pool[50 + i]!]);
    const results = await Promise.all(calls.map((examples) => teach(worker, "crowd", examples)));
    const versions = results.map((r) => r.classifier.version).sort((a, b) => a - b);
    expect(versions).toEqual(Array.from({ length: 50 }, (_, i) => i + 2));
    // Each call saw the examples of exactly the calls before it.
    const byVersion = [...results].sort((a, b) => a.classifier.version - b.classifier.version);
    byVersion.forEach((r, i) => expect(r.metrics.examples).toBe(2 * (i + 1)));
    expect(await describeClassifier(worker, "crowd")).toMatchObject({ version: 51, examples: 100, labels: ["Coat", "Dress"] });
  });
});

describe("bad input", () => {
  it("gets a 4xx problem and leaves the classifier unchanged", async () => {
    await create(worker, "guarded");
    await teach(worker, "guarded", await fashionExamples("Bag", 2));
    const before = await describeClassifier(worker, "guarded");
    const bag = (await fashionExamples("Bag", 1))[0]!;
    const bagBase64 = Buffer.from(bag.png).toString("base64");
    const tooMany = Array.from({ length: 257 }, () => ({ image: bagBase64, label: "Bag" }));
    const manyClasses = Array.from({ length: 101 }, (_, i) => ({ image: bagBase64, label: `class ${i}` }));
    const cases: [string, RequestInit, number, string][] = [
      ["/finetune?classifier=guarded", { method: "POST", headers: { "content-type": "text/plain" }, body: "x" }, 415, "unsupported-media-type"],
      ["/finetune?classifier=guarded", json({ examples: [] }), 400, "invalid-request"],
      ["/finetune?classifier=guarded", json({ examples: tooMany }), 413, "payload-too-large"],
      ["/finetune?classifier=guarded", json({ examples: manyClasses }), 422, "too-many-classes"],
      ["/finetune?classifier=guarded", json({ examples: [{ image: bagBase64, label: 7 }] }), 400, "invalid-parameter"],
      ["/finetune?classifier=guarded", json({ examples: [{ image: bagBase64, label: "  " }] }), 400, "invalid-parameter"],
      ["/finetune?classifier=guarded", json({ examples: [{ image: "%%%", label: "Bag" }] }), 400, "invalid-parameter"],
      ["/finetune?classifier=guarded", json({ examples: [{ image: bagBase64, label: "Bag" }, { image: Buffer.from("not an image").toString("base64"), label: "Bag" }] }), 415, "unsupported-media-type"],
      ["/finetune?classifier=guarded", json({ examples: [{ image: bagBase64, label: "Bag" }, { image: Buffer.from(bag.png.subarray(0, 60)).toString("base64"), label: "Bag" }] }), 422, "image-decode-failed"],
      ["/finetune?classifier=guarded", json("nope"), 400, "invalid-parameter"],
      ["/finetune", json({ examples: [{ image: bagBase64, label: "Bag" }] }), 400, "invalid-parameter"],
      ["/finetune?classifier=nobody", json({ examples: [{ image: bagBase64, label: "Bag" }] }), 404, "unknown-classifier"],
      ["/v1/classifiers/guarded/rollback", json({ version: 99 }), 404, "unknown-version"],
      ["/v1/classifiers/guarded/rollback", json({ version: "two" }), 400, "invalid-parameter"],
      ["/v1/classifiers", json({ id: "guarded", backbone: "lenet" }), 409, "classifier-exists"],
      ["/v1/classifiers", json({ id: "Bad Id!", backbone: "lenet" }), 400, "invalid-parameter"],
      ["/v1/classifiers", json({ id: "other", backbone: "no-such-model" }), 404, "unknown-model"],
    ];
    for (const [path, init, status, slug] of cases) {
      const res = await worker.fetch(path, init);
      const body = (await res.json()) as { type: string; detail: string };
      expect([path, res.status, body.type]).toEqual([path, status, `urn:cnn-edge:problem:${slug}`]);
      expect(res.headers.get("content-type")).toBe("application/problem+json");
    }
    const mismatched = new FormData();
    mismatched.append("image", new Blob([bag.png], { type: "image/png" }), "a.png");
    mismatched.append("image", new Blob([bag.png], { type: "image/png" }), "b.png");
    mismatched.append("image", new Blob([bag.png], { type: "image/png" }), "c.png");
    mismatched.append("label", "Bag");
    mismatched.append("label", "Coat");
    expect((await worker.fetch("/finetune?classifier=guarded", { method: "POST", body: mismatched })).status).toBe(400);
    expect((await worker.fetch("/v1/classifiers/nobody")).status).toBe(404);
    expect(await describeClassifier(worker, "guarded")).toEqual(before);
    const { versions } = (await (await worker.fetch("/v1/classifiers/guarded/versions")).json()) as { versions: unknown[] };
    expect(versions).toHaveLength(2);
  });
});

describe("restarts", () => {
  it("keep every acknowledged version", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cnn-edge-do-"));
    try {
      const first = await startWorker({ persistDir: dir });
      let acknowledged: FinetuneBody;
      try {
        await create(first, "durable");
        await teach(first, "durable", await fashionExamples("Bag", 3));
        acknowledged = await teach(first, "durable", await fashionExamples("Sandal", 3));
      } finally {
        await first.dispose();
      }
      const second = await startWorker({ persistDir: dir });
      try {
        expect(await describeClassifier(second, "durable")).toMatchObject({ version: acknowledged.classifier.version, labels: ["Bag", "Sandal"], examples: 6 });
        const sandal = (await fashionExamples("Sandal", 1, 3))[0]!;
        const body = await classifyOne(second, "classifier=durable&version=3", sandal.png);
        expect(body.classifier).toEqual({ id: "durable", version: 3 });
        expect(body.results[0]!.predictions[0]!.label).toBe("Sandal");
      } finally {
        await second.dispose();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
