/**
 * GET /openapi.json: a valid OpenAPI 3.1 document (checked by swagger-parser), and a contract
 * that holds: real answers of every documented route, success and refusal, from the Worker in
 * workerd, validate against the schema the document gives for their status and content type
 * (Ajv, JSON Schema 2020-12, as OpenAPI 3.1 uses). /docs renders it from static assets alone.
 */
import SwaggerParser from "@apidevtools/swagger-parser";
import { Ajv2020 } from "ajv/dist/2020.js";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { digit, encodeGray, mnistTest, type EncodedImage } from "../support/mnist";
import { ROOT } from "../support/paths";
import { TEST_API_KEY, startWorker, type RunningWorker } from "../support/worker";

type Document = { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: object }> }> }>>; components: object };

let worker: RunningWorker;
let png: EncodedImage;
let document: Document;

beforeAll(async () => {
  worker = await startWorker();
  png = await encodeGray(digit(mnistTest(1), 0), 28, 28, "png");
  const res = await worker.fetch("/openapi.json");
  expect(res.status).toBe(200);
  document = (await res.json()) as Document;
});
afterAll(() => worker?.dispose());

it("is a valid OpenAPI 3.1 document with the auth scheme, the limits and a schema for every answer", async () => {
  const copy = structuredClone(document);
  await SwaggerParser.validate(copy as never); // throws on any violation of the OpenAPI schema or a dangling $ref
  expect((document as unknown as { openapi: string }).openapi).toBe("3.1.0");
  expect(JSON.stringify(document)).toContain(`at most ${32 * 1024 * 1024} bytes`);
  expect((document.components as { securitySchemes: Record<string, { scheme: string }> }).securitySchemes.apiKey!.scheme).toBe("bearer");
  for (const [path, methods] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(methods)) {
      for (const [status, response] of Object.entries(operation.responses)) {
        if (status !== "304") expect(response.content, `${method} ${path} ${status}`).toBeDefined();
      }
    }
  }
});

const auth = { authorization: `Bearer ${TEST_API_KEY}` };
const image = () => ({ method: "POST", headers: { "content-type": "image/png" }, body: png });
const jsonBody = (body: unknown) => ({ method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify(body) });
const examples = (labels: string[]) => {
  const form = new FormData();
  for (const label of labels) {
    form.append("image", new Blob([png], { type: "image/png" }));
    form.append("label", label);
  }
  return { method: "POST", headers: auth, body: form };
};

it("real answers of every route, success and refusal, match the document", async () => {
  const id = `contract-${process.pid}`;
  // LeNet's own graph, registered as a user's model would be (its class scores are its 'logits' output).
  const registration = (bytes: Uint8Array<ArrayBuffer>) => {
    const form = new FormData();
    form.append("model", new Blob([bytes]), "lenet.onnx");
    for (const [name, value] of Object.entries({ id: `${id}-model`, labels: "0\n1\n2\n3\n4\n5\n6\n7\n8\n9", preset: "mnist", output: "logits" })) form.append(name, value);
    return { method: "POST", headers: auth, body: form };
  };
  // [documented path, method, request path, init, expected status]
  const calls: [string, string, string, RequestInit, number][] = [
    ["/classify", "post", "/classify?top_k=2", image(), 200],
    ["/classify", "post", "/classify?top_k=0", image(), 400],
    ["/classify", "post", "/classify", { method: "POST", headers: { "content-type": "image/png" }, body: new Uint8Array([1, 2, 3]) }, 415],
    ["/v1/models/{id}/classify", "post", "/v1/models/lenet/classify?include=logits,embedding", image(), 200],
    ["/v1/models/{id}/classify", "post", "/v1/models/no-such-model/classify", image(), 404],
    ["/v1/models", "get", "/v1/models", {}, 200],
    ["/v1/models/{id}", "get", "/v1/models/resnet-edge", {}, 200],
    ["/v1/models/{id}", "get", "/v1/models/no-such-model", {}, 404],
    ["/v1/models/{id}/model.onnx", "get", "/v1/models/lenet/model.onnx", {}, 200],
    ["/v1/models", "post", "/v1/models", registration(new Uint8Array(readFileSync(join(ROOT, "models", "lenet", "1", "model.onnx")))), 201],
    ["/v1/models", "post", "/v1/models", registration(new TextEncoder().encode("not a model")), 422],
    ["/v1/models/{id}", "get", `/v1/models/${id}-model?version=1`, {}, 200],
    ["/v1/models/{id}", "delete", `/v1/models/${id}-model`, { method: "DELETE", headers: auth }, 200],
    ["/v1/models/{id}", "delete", "/v1/models/lenet", { method: "DELETE", headers: auth }, 403],
    ["/v1/classifiers", "post", "/v1/classifiers", jsonBody({ id, backbone: "lenet" }), 201],
    ["/v1/classifiers", "post", "/v1/classifiers", jsonBody({ id, backbone: "lenet" }), 409],
    ["/v1/classifiers", "post", "/v1/classifiers", jsonBody({ id: "Bad Id", backbone: "lenet" }), 400],
    ["/v1/classifiers", "post", "/v1/classifiers", { method: "POST", headers: { "content-type": "application/json", authorization: "Bearer not-a-key" }, body: "{}" }, 401],
    ["/finetune", "post", `/finetune?classifier=${id}`, examples(["zero", "one"]), 200],
    ["/finetune", "post", "/finetune", examples(["zero"]), 400],
    ["/v1/classifiers/{id}/examples", "post", `/v1/classifiers/${id}/examples`, examples(["two"]), 200],
    ["/v1/classifiers/{id}/examples", "post", "/v1/classifiers/lenet/examples", examples(["two"]), 403],
    ["/v1/classifiers/{id}", "get", `/v1/classifiers/${id}`, {}, 200],
    ["/v1/classifiers/{id}", "get", "/v1/classifiers/lenet", {}, 200],
    ["/v1/classifiers/{id}", "get", "/v1/classifiers/nobody-here", {}, 404],
    ["/v1/classifiers/{id}/versions", "get", `/v1/classifiers/${id}/versions`, {}, 200],
    ["/v1/classifiers/{id}/rollback", "post", `/v1/classifiers/${id}/rollback`, jsonBody({ version: 2 }), 201],
    ["/v1/classifiers/{id}/rollback", "post", `/v1/classifiers/${id}/rollback`, jsonBody({ version: 0 }), 400],
    ["/v1/classifiers/{id}/classify", "post", `/v1/classifiers/${id}/classify?version=3`, image(), 200],
    ["/v1/classifiers/{id}/classify", "post", `/v1/classifiers/${id}/classify?version=99`, image(), 404],
    ["/v1/classifiers/{id}", "delete", `/v1/classifiers/${id}`, { method: "DELETE", headers: auth }, 200],
    ["/v1/classifiers/{id}", "delete", "/v1/classifiers/lenet", { method: "DELETE", headers: auth }, 403],
    ["/healthz", "get", "/healthz", {}, 200],
    ["/metrics", "get", "/metrics", {}, 200],
    ["/openapi.json", "get", "/openapi.json", {}, 200],
  ];
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addSchema({ ...document, $id: "openapi.json" });
  const pointer = (...parts: string[]) => parts.map((p) => p.replace(/~/g, "~0").replace(/\//g, "~1")).join("/");
  const succeeded = new Set<string>();
  for (const [path, method, url, init, status] of calls) {
    const res = await worker.fetch(url, init);
    const what = `${method.toUpperCase()} ${url}`;
    expect(res.status, what).toBe(status);
    const type = res.headers.get("content-type")!.split(";")[0]!;
    const documented = document.paths[path]?.[method]?.responses[String(status)];
    expect(documented?.content?.[type], `${what}: ${status} ${type} is not documented`).toBeDefined();
    if (status < 300) succeeded.add(`${method} ${path}`);
    if (!type.includes("json")) {
      await res.arrayBuffer();
      continue;
    }
    const validate = ajv.getSchema(`openapi.json#/${pointer("paths", path, method, "responses", String(status), "content", type, "schema")}`)!;
    const body = await res.json();
    expect(validate(body), `${what}: ${JSON.stringify(validate.errors)}`).toBe(true);
  }
  // The check has teeth: an answer missing its results, or with a probability as text, fails it.
  const classifyAnswer = ajv.getSchema(`openapi.json#/${pointer("paths", "/classify", "post", "responses", "200", "content", "application/json", "schema")}`)!;
  expect(classifyAnswer({ model: { id: "lenet", version: 1 }, timing: {} })).toBe(false);
  // Every documented operation answered successfully at least once.
  const operations = Object.entries(document.paths).flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method} ${path}`));
  expect(operations.filter((op) => !succeeded.has(op))).toEqual([]);
});

it("/docs is the interactive reference, served from static assets with nothing from a CDN", async () => {
  const page = await worker.fetch("/docs/");
  expect(page.status).toBe(200);
  const html = await page.text();
  expect(html).toContain("/openapi.json");
  for (const src of html.matchAll(/(?:src|href)="([^"]+)"/g)) {
    expect(src[1], "a same-origin path").toMatch(/^\//);
    if (src[1] === "/" || src[1] === "/openapi.json") continue;
    expect((await worker.fetch(src[1]!)).status, src[1]).toBe(200);
  }
});
