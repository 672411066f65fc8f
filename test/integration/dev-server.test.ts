/**
 * The README's promise: `npm start` serves every committed model with nothing else set up (it
 * puts the R2-served artifacts into wrangler's local bucket first), and extra arguments pass
 * through to wrangler dev.
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

function waitForReady(child: ChildProcess, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let log = "";
    const onData = (chunk: Buffer) => {
      log += chunk.toString();
      if (log.includes(`Ready on http://127.0.0.1:${port}`)) resolve();
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.on("exit", (code) => reject(new Error(`npm start exited with ${code}:\n${log}`)));
  });
}

it("npm start -- --port N serves /classify on 127.0.0.1:N, R2-served models included", async () => {
  const port = await freePort();
  server = spawn("npm", ["start", "--", "--port", String(port), "--ip", "127.0.0.1"], {
    cwd: ROOT,
    detached: true, // its own process group, so that wrangler and workerd stop with it
    stdio: ["ignore", "pipe", "pipe"],
  });
  await waitForReady(server, port);

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
});
