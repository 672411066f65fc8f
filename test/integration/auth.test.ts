/**
 * Access control against the built Worker in workerd: write routes need a full-access key
 * (401 without one or with an unknown one, 403 with a classify-only key, 503 when none is
 * configured) and leave state untouched when refused; classify follows CLASSIFY_ACCESS.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { digit, encodeGray, mnistTest } from "../support/mnist";
import { TEST_API_KEY, TEST_CLASSIFY_KEY, startWorker, type RunningWorker } from "../support/worker";

const PROBLEM = "application/problem+json";
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const digits = mnistTest(3);

async function digitForm(): Promise<FormData> {
  const form = new FormData();
  form.append("image", new Blob([await encodeGray(digit(digits, 0), 28, 28, "png")], { type: "image/png" }), "7.png");
  form.append("label", "seven");
  return form;
}

/** Every request that changes state, fresh each time (bodies are single-use). */
async function writeRequests(id: string): Promise<[string, RequestInit][]> {
  const create = JSON.stringify({ id, backbone: "lenet" });
  return [
    ["/v1/classifiers", { method: "POST", headers: { "content-type": "application/json" }, body: create }],
    [`/finetune?classifier=${id}`, { method: "POST", body: await digitForm() }],
    [`/v1/classifiers/${id}/examples`, { method: "POST", body: await digitForm() }],
    [`/v1/classifiers/${id}/rollback`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"version": 1}' }],
    [`/v1/classifiers/${id}`, { method: "DELETE" }],
  ];
}

/** Send without the harness's default key: only the given headers. */
function raw(worker: RunningWorker, path: string, init: RequestInit, headers: Record<string, string>) {
  return fetch(new URL(path, worker.url), { ...init, headers: { ...(init.headers as Record<string, string>), ...headers } });
}

async function expectProblem(res: Response, status: number, slug: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toBe(PROBLEM);
  expect(((await res.json()) as { type: string }).type).toBe(`urn:cnn-edge:problem:${slug}`);
}

async function classifyDigit(worker: RunningWorker, headers: Record<string, string>) {
  const png = await encodeGray(digit(digits, 1), 28, 28, "png");
  return raw(worker, "/classify", { method: "POST", body: png }, { "content-type": "image/png", ...headers });
}

describe("default deployment settings (classify public, keys configured)", () => {
  let worker: RunningWorker;
  beforeAll(async () => {
    worker = await startWorker();
    // One classifier with two versions, so that refused writes have state to leave alone.
    expect((await worker.fetch("/v1/classifiers", { method: "POST", headers: { "content-type": "application/json" }, body: '{"id": "kept", "backbone": "lenet"}' })).status).toBe(201);
    expect((await worker.fetch("/finetune?classifier=kept", { method: "POST", body: await digitForm() })).status).toBe(200);
  });
  afterAll(() => worker?.dispose());

  it.each([
    ["no Authorization header", {}, 401, "authentication-required"],
    ["an unknown key", bearer("not-a-key"), 401, "invalid-api-key"],
    ["a Basic credential", { authorization: "Basic dGVzdDp0ZXN0" }, 401, "authentication-required"],
    ["a classify-only key", bearer(TEST_CLASSIFY_KEY), 403, "insufficient-scope"],
  ])("every write route refuses %s, with problem+json and WWW-Authenticate, and changes nothing", async (_, headers, status, slug) => {
    const before = await (await worker.fetch("/v1/classifiers/kept/versions")).text();
    for (const [path, init] of await writeRequests("kept")) {
      const res = await raw(worker, path, init, headers);
      expect(res.headers.get("www-authenticate"), path).toMatch(/^Bearer realm="cnn-edge"/);
      await expectProblem(res, status, slug);
    }
    for (const [path, init] of await writeRequests("fresh")) await raw(worker, path, init, headers);
    expect(await (await worker.fetch("/v1/classifiers/kept/versions")).text()).toBe(before);
    expect((await worker.fetch("/v1/classifiers/fresh")).status).toBe(404);
  });

  it("a full-access key creates, teaches, rolls back and deletes; the id can then be created anew", async () => {
    const statuses = [];
    for (const [path, init] of await writeRequests("lifecycle")) statuses.push((await raw(worker, path, init, bearer(TEST_API_KEY))).status);
    expect(statuses).toEqual([201, 200, 200, 201, 200]);
    await expectProblem(await worker.fetch("/v1/classifiers/lifecycle"), 404, "unknown-classifier");
    const again = await worker.fetch("/v1/classifiers", { method: "POST", headers: { "content-type": "application/json" }, body: '{"id": "lifecycle", "backbone": "lenet"}' });
    expect(again.status).toBe(201);
    expect(((await again.json()) as { version: number; examples: number })).toMatchObject({ version: 1, examples: 0 });
  });

  it("a served model's own classifier cannot be deleted", async () => {
    await expectProblem(await worker.fetch("/v1/classifiers/lenet", { method: "DELETE" }), 403, "classifier-read-only");
  });

  it("classify and reads need no key; /healthz says so", async () => {
    expect((await classifyDigit(worker, {})).status).toBe(200);
    expect((await raw(worker, "/v1/classifiers/kept", {}, {})).status).toBe(200);
    const health = (await (await raw(worker, "/healthz", {}, {})).json()) as { auth: unknown };
    expect(health.auth).toEqual({ classify: "public", writeKeysConfigured: true });
  });
});

describe("CLASSIFY_ACCESS=key, two full-access keys (a rotation)", () => {
  let worker: RunningWorker;
  beforeAll(async () => {
    worker = await startWorker({ bindings: { CLASSIFY_ACCESS: "key", API_KEYS: `old-key, ${TEST_API_KEY}` } });
  });
  afterAll(() => worker?.dispose());

  it("classify needs a key: none or unknown is 401; classify-only, old and new full keys answer", async () => {
    await expectProblem(await classifyDigit(worker, {}), 401, "authentication-required");
    await expectProblem(await classifyDigit(worker, bearer("old-key-2")), 401, "invalid-api-key");
    for (const key of [TEST_CLASSIFY_KEY, "old-key", TEST_API_KEY]) {
      const res = await classifyDigit(worker, bearer(key));
      expect(res.status).toBe(200);
      expect(((await res.json()) as { results: { predictions: { label: string }[] }[] }).results[0]!.predictions[0]!.label).toBe("2");
    }
  });

  it("reading a classifier needs a key too; the model listing and /healthz stay public", async () => {
    await expectProblem(await raw(worker, "/v1/classifiers/lenet", {}, {}), 401, "authentication-required");
    expect((await raw(worker, "/v1/classifiers/lenet", {}, bearer(TEST_CLASSIFY_KEY))).status).toBe(200);
    expect((await raw(worker, "/v1/models", {}, {})).status).toBe(200);
    expect((await raw(worker, "/healthz", {}, {})).status).toBe(200);
  });
});

describe("a deployment whose operator set no API_KEYS", () => {
  let worker: RunningWorker;
  beforeAll(async () => {
    worker = await startWorker({ bindings: { API_KEYS: undefined } });
  });
  afterAll(() => worker?.dispose());

  it("keeps write routes closed (503 auth-not-configured) whatever the key, and still classifies", async () => {
    for (const headers of [{}, bearer(TEST_API_KEY), bearer(TEST_CLASSIFY_KEY)]) {
      for (const [path, init] of await writeRequests("nobody")) await expectProblem(await raw(worker, path, init, headers), 503, "auth-not-configured");
    }
    expect((await classifyDigit(worker, {})).status).toBe(200);
    const health = (await (await raw(worker, "/healthz", {}, {})).json()) as { auth: { writeKeysConfigured: boolean } };
    expect(health.auth.writeKeysConfigured).toBe(false);
  });
});
