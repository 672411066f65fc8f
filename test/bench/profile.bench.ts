/**
 * Where a request's CPU time goes (npm run bench:profile; issue 18): the built Worker in plain
 * `workerd serve` (npm run serve's runtime) with V8's inspector open, loaded with one-image POSTs
 * at concurrency PROFILE_CONNECTIONS (default 8) for PROFILE_SECONDS (default 10) per model
 * (PROFILE_MODELS, default lenet and resnet-edge-int8-static, one pass of the graph), while a CPU
 * profile samples every 200 us. The samples are attributed to the request path's steps by the
 * source file of each function (cpu-profile.ts), and printed as CPU ms per request beside
 * workerd's whole CPU time from /proc. Writes test/.build/profile-<model>.cpuprofile (open it in
 * Chrome DevTools' Performance panel) and test/.build/bench-profile.md.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "vitest";
import { discoverModels } from "../../scripts/model-repository.ts";
import { freePort, startPlainWorkerd } from "../../scripts/workerd/serve.ts";
import { BUILD_DIR, ROOT } from "../support/paths";
import { REQUEST_PATH_STEPS, captureProfile, readSourceMap, stepTimes } from "./cpu-profile";
import { loadClassify } from "./http-load";
import { cpuSeconds } from "./process-cpu";
import { graphOnlyQuery, uploadsFor } from "./worker-timing";

const MODELS = (process.env.PROFILE_MODELS ?? "lenet,resnet-edge-int8-static").split(",");
const CONNECTIONS = Number(process.env.PROFILE_CONNECTIONS ?? 8);
const SECONDS = Number(process.env.PROFILE_SECONDS ?? 10);
const ORDER = [...REQUEST_PATH_STEPS.map((s) => s.name), "other JavaScript", "(garbage collector)", "(program)"];

it("CPU time per request, step by step, from a V8 profile of the Worker in workerd", async () => {
  const sourceMap = readSourceMap(BUILD_DIR);
  const out = join(ROOT, "test", ".build");
  mkdirSync(out, { recursive: true });
  const lines = [
    `Plain workerd, one-image POSTs at concurrency ${CONNECTIONS} for ${SECONDS} s per model, V8 sampling every 200 us (profiling adds its own cost); CPU ms per request answered. "(program)" is workerd's native work (HTTP, streams, the event loop); "idle" the thread waiting.`,
    "",
    `| step | ${MODELS.join(" | ")} |`,
    `|---|${MODELS.map(() => "---:").join("|")}|`,
  ];
  const columns: Map<string, string>[] = [];
  for (const id of MODELS) {
    const model = discoverModels().find((m) => m.id === id);
    if (!model) throw new Error(`${id} is not served`);
    const inspectorPort = await freePort();
    const worker = await startPlainWorkerd({ dir: BUILD_DIR, stateDir: mkdtempSync(join(tmpdir(), "cnn-edge-profile-")), requestLog: "drop", inspectorPort });
    try {
      const uploads = (await uploadsFor(model)).slice(0, 1);
      const query = graphOnlyQuery(model);
      await loadClassify(worker.url, id, uploads, CONNECTIONS, 2, query); // warm: session, JIT
      const before = cpuSeconds(worker.pid);
      const { profile, result } = await captureProfile(inspectorPort, () => loadClassify(worker.url, id, uploads, CONNECTIONS, SECONDS, query));
      const workerdCpuMs = (cpuSeconds(worker.pid) - before) * 1000;
      writeFileSync(join(out, `profile-${id}.cpuprofile`), JSON.stringify(profile));
      const answered = result.requests - result.errors;
      const steps = stepTimes(profile, sourceMap);
      const busy = [...steps].filter(([name]) => name !== "(idle)").reduce((sum, [, ms]) => sum + ms, 0);
      const column = new Map<string, string>();
      for (const name of ORDER) {
        const ms = steps.get(name) ?? 0;
        column.set(name, `${(ms / answered).toFixed(3)} (${((100 * ms) / busy).toFixed(1)} %)`);
      }
      column.set("sampled, all steps", `${(busy / answered).toFixed(3)}`);
      column.set("workerd process CPU (/proc)", `${(workerdCpuMs / answered).toFixed(3)}`);
      column.set("requests answered (req/s)", `${answered} (${result.imagesPerSecond.toFixed(0)})`);
      columns.push(column);
      console.log(`profile ${id}: ${answered} requests, ${(busy / answered).toFixed(3)} sampled CPU ms/request, ${(workerdCpuMs / answered).toFixed(3)} workerd CPU ms/request`);
    } finally {
      await worker.dispose();
    }
  }
  for (const name of [...ORDER, "sampled, all steps", "workerd process CPU (/proc)", "requests answered (req/s)"]) {
    lines.push(`| ${name} | ${columns.map((c) => c.get(name)).join(" | ")} |`);
  }
  const table = lines.join("\n");
  console.log(`\n${table}\n`);
  writeFileSync(join(out, "bench-profile.md"), `${table}\n`);
}, 600_000);
