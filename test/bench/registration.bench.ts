/**
 * Registering models through the API, back to back (npm run bench:register): torchvision's
 * MobileNetV2 (10 classes, fixed batch 1: one measurement each) registered 20 times under one
 * id in the built Worker in plain workerd, each followed by a classify on the new version. Per
 * registration: its wall time and workerd's resident memory, which shows whether the runtime each
 * one starts to measure the model in is collected (workers/registry/fresh-runtime.ts). Prints a
 * markdown table and writes it to test/.build/bench-register.md.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "vitest";
import { residentBytes, startPlainWorkerd } from "../../scripts/workerd/serve.ts";
import { IMPORTED_CASES, exportCase } from "../support/imported-models";
import { BUILD_DIR, ROOT } from "../support/paths";

const REGISTRATIONS = 20;
const MiB = 2 ** 20;

it(`${REGISTRATIONS} registrations in a row: wall time and workerd's memory`, async () => {
  const file = readFileSync(exportCase(IMPORTED_CASES.find((c) => c.id === "mnv2-batch1")!));
  const state = mkdtempSync(join(tmpdir(), "cnn-edge-register-"));
  const worker = await startPlainWorkerd({ dir: BUILD_DIR, stateDir: state, secrets: { API_KEYS: "bench" }, requestLog: "drop" });
  const png = readFileSync(join(ROOT, "test", "fixtures", "mnist-test-0-label-7.png"));
  const rows = ["| registration | version | POST /v1/models ms | classify (first, new session) ms | workerd RSS MiB |", "|---:|---:|---:|---:|---:|"];
  rows.push(`| before | - | - | - | ${((residentBytes(worker.pid) ?? 0) / MiB).toFixed(0)} |`);
  try {
    for (let i = 1; i <= REGISTRATIONS; i++) {
      const form = new FormData();
      form.append("model", new Blob([new Uint8Array(file)]), "mnv2.onnx");
      form.append("id", "bench-register");
      form.append("labels", Array.from({ length: 10 }, (_, j) => `class-${j}`).join("\n"));
      let started = performance.now();
      const res = await fetch(new URL("/v1/models", worker.url), { method: "POST", headers: { authorization: "Bearer bench" }, body: form });
      const body = (await res.json()) as { version?: number; detail?: string };
      if (res.status !== 201) throw new Error(`registration ${i}: ${res.status} ${body.detail}`);
      const registerMs = performance.now() - started;
      started = performance.now();
      const answer = await fetch(new URL("/classify?model=bench-register", worker.url), { method: "POST", headers: { "content-type": "image/png" }, body: png });
      if (answer.status !== 200) throw new Error(`classify after registration ${i}: ${answer.status}`);
      await answer.arrayBuffer();
      rows.push(`| ${i} | ${body.version} | ${registerMs.toFixed(0)} | ${(performance.now() - started).toFixed(0)} | ${((residentBytes(worker.pid) ?? 0) / MiB).toFixed(0)} |`);
    }
  } finally {
    await worker.dispose();
    rmSync(state, { recursive: true, force: true });
  }
  const table = rows.join("\n");
  console.log(`\n${table}\n`);
  writeFileSync(join(ROOT, "test", ".build", "bench-register.md"), `${table}\n`);
});
