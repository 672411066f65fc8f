/** Model discovery and the read-only routes: /healthz, /v1/models, /v1/models/{id}. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { digit, encodeGray, mnistTest } from "../support/mnist";
import { ROOT } from "../support/paths";
import { startWorker, type RunningWorker } from "../support/worker";

let worker: RunningWorker;
const manifest = JSON.parse(readFileSync(join(ROOT, "models", "lenet", "1", "manifest.json"), "utf8"));

beforeAll(async () => {
  worker = await startWorker();
});
afterAll(() => worker?.dispose());

describe("model routes", () => {
  it("GET /healthz names the served models", async () => {
    const res = await worker.fetch("/healthz");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok", models: ["lenet"], defaultModel: "lenet" });
  });

  it("GET /v1/models summarises every model discovered under models/", async () => {
    const body = (await (await worker.fetch("/v1/models")).json()) as { default: string; models: Record<string, unknown>[] };
    expect(body.default).toBe("lenet");
    expect(body.models).toEqual([
      expect.objectContaining({
        id: "lenet",
        version: manifest.version,
        labels: 10,
        input: { channels: 1, height: 28, width: 28 },
        metrics: manifest.metrics,
        bytes: manifest.artifact.bytes,
      }),
    ]);
  });

  it("GET /v1/models/{id} returns the manifest committed beside the artifact", async () => {
    expect(await (await worker.fetch("/v1/models/lenet")).json()).toEqual(manifest);
  });

  it("the committed manifest reports a test accuracy of at least 99.2 %", () => {
    expect(manifest.metrics.testAccuracy).toBeGreaterThanOrEqual(0.992);
    expect(manifest.training.smoke).toBe(false);
  });
});

describe("sessions", () => {
  it("the first request creates the session and later ones reuse it", async () => {
    const fresh = await startWorker();
    try {
      const png = await encodeGray(digit(mnistTest(1), 0), 28, 28, "png");
      const classify = async () =>
        (await (await fresh.fetch("/classify", { method: "POST", headers: { "content-type": "image/png" }, body: png })).json()) as {
          timing: { coldStart: boolean };
        };
      const [first, second] = await Promise.all([classify(), classify()]);
      expect([first.timing.coldStart, second.timing.coldStart]).toEqual([true, false]);
      expect((await classify()).timing.coldStart).toBe(false);
    } finally {
      await fresh.dispose();
    }
  });
});
