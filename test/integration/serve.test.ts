/**
 * `npm run serve`: the built Worker in plain workerd on $PORT, with the bindings and local state
 * of `npm start`: the development key of .dev.vars, the models of the repository (R2-served ones
 * included) and Durable Objects kept on disk, so that a classifier, and a model registered
 * through the API, outlive a restart.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { discoverModels } from "../../scripts/model-repository.ts";
import { cifarValidation } from "../support/cifar";
import { digit, encodeGray, mnistTest } from "../support/mnist";
import { ROOT } from "../support/paths";

const state = mkdtempSync(join(tmpdir(), "cnn-edge-serve-"));
let server: ChildProcess | undefined;
const stop = async () => {
  if (!server?.pid || server.exitCode !== null) return;
  const exited = new Promise((resolve) => server!.on("exit", resolve));
  process.kill(-server.pid, "SIGTERM");
  await exited;
};
afterAll(async () => {
  await stop();
  rmSync(state, { recursive: true, force: true });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/** Start `npm run serve -- --state <state>` on `port`; resolves with what it printed once it listens. */
function serve(port: number): Promise<string> {
  server = spawn("npm", ["run", "serve", "--", "--state", state], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port) },
    detached: true, // its own process group, so that workerd stops with it
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new Promise((resolve, reject) => {
    let log = "";
    const onData = (chunk: Buffer) => {
      log += chunk.toString();
      if (log.includes(`plain workerd at http://127.0.0.1:${port}/`)) resolve(log);
    };
    server!.stdout!.on("data", onData);
    server!.stderr!.on("data", onData);
    server!.on("exit", (code) => reject(new Error(`npm run serve exited with ${code}:\n${log}`)));
  });
}

it("npm run serve answers on $PORT in plain workerd, serves R2-stored models, and keeps classifiers and registered models in its state folder across a restart", async () => {
  const port = await freePort();
  const log = await serve(port);
  const base = `http://127.0.0.1:${port}`;

  const png = await encodeGray(digit(mnistTest(2), 1), 28, 28, "png");
  const res = await fetch(`${base}/classify`, { method: "POST", headers: { "content-type": "image/png" }, body: png });
  expect(res.status).toBe(200);
  expect(((await res.json()) as { results: { predictions: { label: string }[] }[] }).results[0]!.predictions[0]!.label).toBe("2");
  const health = (await (await fetch(`${base}/healthz`)).json()) as { engine: { host: string } };
  expect(health.engine.host).toBe("workerd");
  for (const model of discoverModels().filter((m) => m.source.kind === "r2" && m.manifest.serving.servable)) {
    const served = await fetch(`${base}/v1/models/${model.id}/classify`, { method: "POST", headers: { "content-type": "image/jpeg" }, body: cifarValidation(1)[0]!.bytes });
    expect(served.status, model.id).toBe(200);
  }

  const key = /development API key \(full access, from \.dev\.vars\): (\S+)/.exec(log)?.[1];
  expect(key, log).toBeDefined();
  const auth = { authorization: `Bearer ${key}` };
  const id = `serve-test-${process.pid}`;
  const made = await fetch(`${base}/v1/classifiers`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ id, backbone: "lenet", init: "empty" }) });
  expect(made.status).toBe(201);
  const form = new FormData();
  form.append("image", new Blob([png], { type: "image/png" }));
  form.append("label", "two");
  expect((await fetch(`${base}/finetune?classifier=${id}`, { method: "POST", headers: auth, body: form })).status).toBe(200);
  expect(readdirSync(join(state, "v3", "do"))).toContain("cnn-edge-ClassifierObject"); // wrangler dev's layout
  // A model registered through the API: its files go to the state folder's stand-in for R2.
  const upload = new FormData();
  upload.append("model", new Blob([new Uint8Array(readFileSync(join(ROOT, "models", "lenet", "1", "model.onnx")))]), "digits.onnx");
  for (const [name, value] of Object.entries({ id: `${id}-model`, labels: [...Array(10).keys()].join("\n"), preset: "mnist", output: "logits" })) upload.append(name, value);
  const registered = await fetch(`${base}/v1/models`, { method: "POST", headers: auth, body: upload });
  expect(registered.status, await registered.clone().text()).toBe(201);

  await stop();
  await serve(port);
  const versions = (await (await fetch(`${base}/v1/classifiers/${id}/versions`)).json()) as { versions: { version: number; labels: string[] }[] };
  expect(versions.versions[0]).toMatchObject({ version: 2, labels: ["two"] });
  const again = await fetch(`${base}/classify?classifier=${id}`, { method: "POST", headers: { "content-type": "image/png" }, body: png });
  expect(((await again.json()) as { results: { predictions: { label: string }[] }[] }).results[0]!.predictions[0]!.label).toBe("two");
  const byRegistered = await fetch(`${base}/v1/models/${id}-model/classify`, { method: "POST", headers: { "content-type": "image/png" }, body: png });
  expect(byRegistered.status, await byRegistered.clone().text()).toBe(200);
  expect(((await byRegistered.json()) as { results: { predictions: { label: string }[] }[] }).results[0]!.predictions[0]!.label).toBe("2");
}, 180_000);
