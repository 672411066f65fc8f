/**
 * The README's promise: `npm start` serves every committed model with nothing else set up (it
 * puts the R2-served artifacts into wrangler's local bucket first and gives the Worker a
 * development API key, which it prints), and extra arguments pass through to wrangler dev.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { afterAll, expect, it } from "vitest";
import { discoverModels } from "../../scripts/model-repository.ts";
import { cifarValidation } from "../support/cifar";
import { digit, encodeGray, mnistTest } from "../support/mnist";
import { ROOT } from "../support/paths";

let server: ChildProcess | undefined;
afterAll(() => {
  if (server?.pid) process.kill(-server.pid, "SIGTERM");
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/** Resolves with everything npm start printed up to "Ready". */
function waitForReady(child: ChildProcess, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let log = "";
    const onData = (chunk: Buffer) => {
      log += chunk.toString();
      if (log.includes(`Ready on http://127.0.0.1:${port}`)) resolve(log);
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.on("exit", (code) => reject(new Error(`npm start exited with ${code}:\n${log}`)));
  });
}

it("npm start -- --port N serves /classify on 127.0.0.1:N, R2-served models included, and its write routes with the key it prints", async () => {
  const port = await freePort();
  server = spawn("npm", ["start", "--", "--port", String(port), "--ip", "127.0.0.1"], {
    cwd: ROOT,
    detached: true, // its own process group, so that wrangler and workerd stop with it
    stdio: ["ignore", "pipe", "pipe"],
  });
  const log = await waitForReady(server, port);

  const png = await encodeGray(digit(mnistTest(2), 1), 28, 28, "png");
  const res = await fetch(`http://127.0.0.1:${port}/classify`, { method: "POST", headers: { "content-type": "image/png" }, body: png });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { results: { predictions: { label: string; probability: number }[] }[] };
  expect(body.results[0]!.predictions[0]).toMatchObject({ label: "2" });
  expect(body.results[0]!.predictions[0]!.probability).toBeGreaterThan(0.9);

  for (const model of discoverModels().filter((m) => m.source.kind === "r2" && m.manifest.serving.servable)) {
    const jpeg = cifarValidation(1)[0]!.bytes;
    const served = await fetch(`http://127.0.0.1:${port}/v1/models/${model.id}/classify`, {
      method: "POST",
      headers: { "content-type": "image/jpeg" },
      body: jpeg,
    });
    expect(served.status).toBe(200);
  }

  // Writes need the development key that npm start printed, as a deployment needs its API_KEYS.
  const key = /development API key \(full access, from \.dev\.vars\): (\S+)/.exec(log)?.[1];
  expect(key, log).toBeDefined();
  const id = `dev-server-test-${process.pid}`;
  const create = () => ({ method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ id, backbone: "lenet" }) });
  expect((await fetch(`http://127.0.0.1:${port}/v1/classifiers`, create())).status).toBe(401);
  const made = await fetch(`http://127.0.0.1:${port}/v1/classifiers`, { ...create(), headers: { ...create().headers, authorization: `Bearer ${key}` } });
  expect(made.status).toBe(201);
  const removed = await fetch(`http://127.0.0.1:${port}/v1/classifiers/${id}`, { method: "DELETE", headers: { authorization: `Bearer ${key}` } });
  expect(removed.status).toBe(200);
});
