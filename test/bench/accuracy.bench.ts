/**
 * The choice a user makes between served models and test-time averaging (npm run bench:accuracy):
 * for every servable model, the Worker's model-run milliseconds per image (timing.inferenceMs,
 * one-image requests, batching off, mean of 64) translate-averaged (six views), flip-averaged and
 * in one pass where the model lets a request choose, native onnxruntime-node's (1 thread, the graph alone), and the
 * validation accuracy of each mode from the manifest. Prints a markdown table and writes it,
 * with a scatter plot of accuracy against Worker ms/image, to test/.build/bench-accuracy.{md,svg}.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { it } from "vitest";
import { discoverModels, type RepositoryModel } from "../../scripts/model-repository.ts";
import { escapeXml } from "../../scripts/loadtest/report.ts";
import { BUILD_DIR } from "../support/paths";
import { startWorker } from "../support/worker";
import { engineMsPerImage } from "./engines";
import { graphOnlyQuery, uploadsFor, workerMsPerImage } from "./worker-timing";

/** How a request runs a model: airbench94's six views (translate_average=true), the image and its mirror, or one pass. */
type Mode = "translate" | "flip" | "single";

interface Point {
  model: string;
  mode: Mode;
  flipAverage: boolean;
  accuracy: number;
  accuracyOn: string;
  workerMs: number;
}

/** The manifest's accuracy for a mode: CIFAR-10 validation (translate-averaged, flip-averaged or single pass), else what it measured. */
function accuracyOf(model: RepositoryModel, mode: Mode): { accuracy: number; on: string } {
  const metrics = model.manifest.metrics as Record<string, number | undefined>;
  if (metrics.testAccuracy !== undefined && model.manifest.dataset === "MNIST") return { accuracy: metrics.testAccuracy, on: "MNIST test" };
  const accuracy = { translate: metrics.translateValidationAccuracy, flip: metrics.validationAccuracy, single: metrics.singlePassValidationAccuracy }[mode];
  return { accuracy: accuracy ?? NaN, on: "CIFAR-10 validation" };
}

/**
 * Accuracy (y) against Worker ms/image (x, log scale), one point per model and mode, a model's
 * two modes joined by a line.
 *
 * @example
 * writeFileSync("accuracy.svg", scatterSvg(points));
 */
export function scatterSvg(points: Point[]): string {
  const [width, height, left, right, top, bottom] = [840, 420, 64, 600, 40, 360];
  const xs = points.map((p) => p.workerMs);
  const [lo, hi] = [Math.log10(Math.min(...xs) / 1.5), Math.log10(Math.max(...xs) * 1.5)];
  const ys = points.map((p) => p.accuracy);
  const [ylo, yhi] = [Math.floor(Math.min(...ys) * 50) / 50, Math.min(1, Math.ceil(Math.max(...ys) * 50) / 50)];
  const x = (ms: number) => left + ((Math.log10(ms) - lo) / (hi - lo)) * (right - left);
  const y = (a: number) => bottom - ((a - ylo) / (yhi - ylo)) * (bottom - top);
  const colors = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"];
  const models = [...new Set(points.map((p) => p.model))];
  const grid = [0, 0.25, 0.5, 0.75, 1]
    .map((f) => ylo + f * (yhi - ylo))
    .map((a) => `<line x1="${left}" x2="${right}" y1="${y(a)}" y2="${y(a)}" stroke="#e5e5e5"/><text x="${left - 6}" y="${y(a) + 4}" text-anchor="end">${(100 * a).toFixed(1)} %</text>`)
    .join("");
  const ticks = [0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500]
    .filter((ms) => Math.log10(ms) >= lo && Math.log10(ms) <= hi)
    .map((ms) => `<line x1="${x(ms)}" x2="${x(ms)}" y1="${top}" y2="${bottom}" stroke="#f0f0f0"/><text x="${x(ms)}" y="${bottom + 16}" text-anchor="middle" fill="#666">${ms}</text>`)
    .join("");
  const marks = models
    .map((model, i) => {
      const color = colors[i % colors.length]!;
      const own = points.filter((p) => p.model === model).sort((a, b) => a.workerMs - b.workerMs);
      const path = own.length > 1 ? `<path d="${own.map((p, k) => `${k ? "L" : "M"}${x(p.workerMs).toFixed(1)},${y(p.accuracy).toFixed(1)}`).join(" ")}" stroke="${color}" fill="none"/>` : "";
      const dots = own.map((p) => `<circle cx="${x(p.workerMs).toFixed(1)}" cy="${y(p.accuracy).toFixed(1)}" r="${p.mode === "translate" ? 7 : 5}" fill="${p.flipAverage ? color : "white"}" stroke="${p.mode === "translate" ? "black" : color}" stroke-width="2"/>`).join("");
      return `${path}${dots}<circle cx="${right + 20}" cy="${top + 10 + i * 18}" r="5" fill="${color}"/><text x="${right + 30}" y="${top + 14 + i * 18}">${escapeXml(model)}</text>`;
    })
    .join("");
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="${width / 2}" y="22" text-anchor="middle" font-size="14">Accuracy against Worker ms/image (black ring: translate-averaged, filled: flip-averaged, open: one pass)</text>${grid}${ticks}${marks}
<text x="${(left + right) / 2}" y="${height - 20}" text-anchor="middle">Worker model run, ms per image (log scale)</text>
</svg>
`;
}

it("accuracy against Worker milliseconds per image, for every served model and flip mode", async () => {
  const models = discoverModels().filter((m) => m.manifest.serving.servable);
  const worker = await startWorker({ bindings: { DYNAMIC_BATCHING: "off" } });
  const points: Point[] = [];
  const nativeMs: Record<string, number> = {};
  try {
    for (const model of models) {
      const uploads = await uploadsFor(model);
      const choosable = graphOnlyQuery(model) !== "";
      const modes: Mode[] = choosable ? ["translate", "flip", "single"] : [model.manifest.architecture.flipAverage ? "flip" : "single"];
      const queries: Record<Mode, string> = { translate: "translate_average=true", flip: "flip_average=true", single: "flip_average=false" };
      for (const mode of modes) {
        const { accuracy, on } = accuracyOf(model, mode);
        const workerMs = await workerMsPerImage(worker, model, uploads, 1, choosable ? queries[mode] : "");
        points.push({ model: model.id, mode, flipAverage: mode !== "single", accuracy, accuracyOn: on, workerMs });
      }
      nativeMs[model.id] = await engineMsPerImage("ort-node 1 thread", model, 1);
      console.log(`bench: ${model.id} done`);
    }
  } finally {
    await worker.dispose();
  }
  const table = [
    "| model | averaging | accuracy | on | Worker ms/image | onnxruntime-node ms/image (graph, 1 thread) |",
    "|---|---|---:|---|---:|---:|",
    ...points.map((p) => `| ${p.model} | ${{ translate: "translate (6 views)", flip: "flip (2 views)", single: "none" }[p.mode]} | ${(100 * p.accuracy).toFixed(2)} % | ${p.accuracyOn} | ${p.workerMs.toFixed(2)} | ${nativeMs[p.model]!.toFixed(2)} |`),
  ].join("\n");
  console.log(`\n${table}\n`);
  const out = `${dirname(BUILD_DIR)}/bench-accuracy`;
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(`${out}.md`, `${table}\n`);
  writeFileSync(`${out}.svg`, scatterSvg(points));
  writeFileSync(`${out}.json`, JSON.stringify({ measuredAt: new Date().toISOString(), points, nativeMs }, null, 2));
}, 1_800_000);
