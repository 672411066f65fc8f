/**
 * cnn-edge against the server a user would build instead (npm run bench:peer; issue 18): the
 * built Worker in plain `workerd serve` (what `npm run serve` runs, no wrangler dev proxy), the
 * native peer (test/bench/peer/server.ts: node:http + sharp + onnxruntime-node, one thread), and
 * the runtime's ceiling (a hello-world Worker in the same workerd), measured in one run,
 * with the graph run once per image by both (flip_average=false for the CIFAR-10 models),
 * alternating, on the same image: one-image POSTs kept in flight by autocannon at concurrency 1,
 * 8 and 32 for PEER_SECONDS (default 10) each, PEER_ROUNDS (default 2) rounds; req/s, p50/p99,
 * and CPU time per request of each server process (user + system from /proc over the requests
 * it answered). Prints markdown tables with cnn-edge / peer ratios and writes
 * test/.build/bench-peer.{json,md}. Load generator and servers share this machine's cores.
 */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "vitest";
import { discoverModels } from "../../scripts/model-repository.ts";
import { startPlainWorkerd, type PlainWorkerd as BenchServer } from "../../scripts/workerd/serve.ts";
import { quantile } from "../../scripts/stats.ts";
import { BUILD_DIR, ROOT } from "../support/paths";
import { startHelloWorkerd } from "./hello-workerd";
import { loadClassify } from "./http-load";
import { cpuSeconds } from "./process-cpu";
import { graphOnlyQuery, uploadsFor } from "./worker-timing";

const MODELS = (process.env.PEER_MODELS ?? "lenet,resnet-edge-int8-static").split(",");
const CONCURRENCY = [1, 8, 32];
const SECONDS = Number(process.env.PEER_SECONDS ?? 10);
const ROUNDS = Number(process.env.PEER_ROUNDS ?? 2);
/**
 * Workers Paid (Standard usage model) beyond the monthly inclusions (10 M requests, 30 M CPU ms):
 * developers.cloudflare.com/workers/platform/pricing, as read on 2026-12-02.
 */
const WORKERS_PRICE = { perMillionRequests: 0.3, perMillionCpuMs: 0.02, read: "2026-12-02" };

/**
 * What a million classifications cost on Workers at `cpuMsPerRequest` (this machine's CPU time;
 * Cloudflare's CPUs differ): the request price plus the CPU-time price.
 *
 * @example
 * dollarsPerMillion(1.2); // 0.3 + 1.2 * 0.02 = 0.324
 */
export function dollarsPerMillion(cpuMsPerRequest: number): number {
  return WORKERS_PRICE.perMillionRequests + cpuMsPerRequest * WORKERS_PRICE.perMillionCpuMs;
}

/** Poll `url` until it answers below 500 (or `failed()` says the server is gone, or 30 s pass). */
async function waitForAnswer(url: URL, failed: () => boolean): Promise<void> {
  for (let tries = 0; tries < 300; tries++) {
    if (await fetch(url, { method: "POST", body: "" }).then((r) => r.status < 500, () => false)) return;
    if (failed()) throw new Error(`${url} exited before answering`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not answer in 30 s`);
}

/** Start the native peer on a model folder; resolves once its session is ready. */
async function startPeer(modelDir: string): Promise<BenchServer> {
  const child = spawn(process.execPath, [join(ROOT, "test", "bench", "peer", "server.ts"), modelDir, "0"], { stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise((resolve) => child.on("exit", resolve));
  const url = await new Promise<URL>((resolve, reject) => {
    child.stdout!.on("data", (chunk: Buffer) => {
      const found = /listening on (\S+)/.exec(chunk.toString());
      if (found) resolve(new URL(found[1]!));
    });
    child.on("exit", (code) => reject(new Error(`peer exited with ${code}`)));
  });
  await waitForAnswer(url, () => child.exitCode !== null);
  return { url, pid: child.pid!, dispose: async () => void (child.kill("SIGTERM"), await exited) };
}

interface Measurement {
  server: string;
  model: string;
  connections: number;
  reqPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  cpuMsPerRequest: number;
  errors: number;
}

it("cnn-edge in plain workerd beside the native Node peer and the runtime's hello-world ceiling", async () => {
  const stateDir = mkdtempSync(join(tmpdir(), "cnn-edge-peer-bench-"));
  const worker = await startPlainWorkerd({ dir: BUILD_DIR, stateDir, requestLog: "drop" });
  const hello = await startHelloWorkerd();
  const results: Measurement[] = [];
  try {
    for (const id of MODELS) {
      const model = discoverModels().find((m) => m.id === id);
      if (!model) throw new Error(`${id} is not served`);
      const upload = (await uploadsFor(model))[0]!;
      const peer = await startPeer(join(ROOT, "models", model.id, String(model.version)));
      const servers: [string, BenchServer][] = [["cnn-edge", worker], ["peer", peer], ...(id === MODELS[0] ? [["hello world", hello] as [string, BenchServer]] : [])];
      try {
        for (const connections of CONCURRENCY) {
          for (let round = 0; round < ROUNDS; round++) {
            for (const [name, server] of servers) {
              const before = cpuSeconds(server.pid);
              // One pass of the graph, as the peer runs it (no mirror average).
              const load = await loadClassify(server.url, model.id, [upload], connections, SECONDS, name === "cnn-edge" ? graphOnlyQuery(model) : "");
              const answered = load.requests - load.errors;
              results.push({
                server: name,
                model: id,
                connections,
                reqPerSecond: load.imagesPerSecond,
                p50Ms: load.p50Ms,
                p99Ms: load.p99Ms,
                cpuMsPerRequest: ((cpuSeconds(server.pid) - before) * 1000) / Math.max(1, answered),
                errors: load.errors,
              });
              console.log(`${id} ${name} c=${connections} round ${round + 1}: ${load.imagesPerSecond.toFixed(0)} req/s, p50 ${load.p50Ms} ms, p99 ${load.p99Ms} ms, ${results.at(-1)!.cpuMsPerRequest.toFixed(3)} CPU ms/req`);
            }
          }
        }
      } finally {
        await peer.dispose();
      }
    }
  } finally {
    await Promise.all([worker.dispose(), hello.dispose()]);
  }

  // Per model, server and concurrency: the median over rounds, and cnn-edge / peer.
  const summary = (model: string, server: string, connections: number) => {
    const runs = results.filter((r) => r.model === model && r.server === server && r.connections === connections);
    if (!runs.length) return undefined;
    const of = (key: keyof Measurement) => quantile(runs.map((r) => r[key] as number), 0.5);
    return { reqPerSecond: of("reqPerSecond"), p50Ms: of("p50Ms"), p99Ms: of("p99Ms"), cpuMsPerRequest: of("cpuMsPerRequest"), errors: runs.reduce((a, r) => a + r.errors, 0) };
  };
  const lines: string[] = [
    `cnn-edge: the built Worker in plain workerd (npm run serve's runtime); peer: node:http + sharp + onnxruntime-node 1 thread; ${SECONDS} s per point, median of ${ROUNDS} alternating rounds`,
    "",
    `$ per million on Workers: $${WORKERS_PRICE.perMillionRequests} per million requests + $${WORKERS_PRICE.perMillionCpuMs} per million CPU ms (Workers Paid beyond its inclusions, read ${WORKERS_PRICE.read}) at this machine's CPU time per request`,
    "",
    "| model | c | server | req/s | p50 ms | p99 ms | CPU ms/request | errors | cnn-edge / peer: req/s, p50, CPU | $ per million on Workers |",
    "|---|---:|---|---:|---:|---:|---:|---:|---|---:|",
  ];
  for (const model of MODELS) {
    for (const connections of CONCURRENCY) {
      const ours = summary(model, "cnn-edge", connections)!;
      const peer = summary(model, "peer", connections)!;
      for (const server of ["cnn-edge", "peer", "hello world"]) {
        const s = summary(model, server, connections);
        if (!s) continue;
        const ratio = server === "cnn-edge" ? `${(ours.reqPerSecond / peer.reqPerSecond).toFixed(2)}x, ${(ours.p50Ms / Math.max(peer.p50Ms, 0.5)).toFixed(2)}x, ${(ours.cpuMsPerRequest / peer.cpuMsPerRequest).toFixed(2)}x` : "";
        const price = server === "cnn-edge" ? `$${dollarsPerMillion(s.cpuMsPerRequest).toFixed(3)}` : "";
        lines.push(`| ${model} | ${connections} | ${server} | ${s.reqPerSecond.toFixed(0)} | ${s.p50Ms} | ${s.p99Ms} | ${s.cpuMsPerRequest.toFixed(3)} | ${s.errors} | ${ratio} | ${price} |`);
      }
    }
  }
  const table = lines.join("\n");
  console.log(`\n${table}\n`);
  mkdirSync(join(ROOT, "test", ".build"), { recursive: true });
  writeFileSync(join(ROOT, "test", ".build", "bench-peer.json"), JSON.stringify(results, null, 2));
  writeFileSync(join(ROOT, "test", ".build", "bench-peer.md"), `${table}\n`);
}, 3_600_000);
