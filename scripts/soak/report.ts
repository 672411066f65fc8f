/** The soak's per-window table (markdown) and chart (SVG): latency, throughput and errors, memory. */
import { escapeXml, panel } from "../loadtest/report.ts";
import type { TrafficWindow } from "./traffic.ts";

const mb = (bytes: number | undefined) => (bytes === undefined ? "-" : (bytes / 2 ** 20).toFixed(1));

/**
 * One row per window.
 *
 * @example
 * console.log(windowTable(result.windows, 30));
 */
export function windowTable(windows: readonly TrafficWindow[], windowS: number): string {
  const rows = windows.map(
    (w) =>
      `| ${w.t} | ${w.requests} | ${(w.requests / windowS).toFixed(0)} | ${w.ok} | ${w.expected4xx} | ${w.hungUp} | ${w.unexpected} | ${w.serverErrors} | ${w.failed} | ${w.p50Ms.toFixed(1)} | ${w.p99Ms.toFixed(1)} | ${mb(w.probe.workerdRssBytes)} | ${mb(w.probe.ortHeapBytes)} |`,
  );
  return [
    "| s | requests | req/s | 2xx | expected 4xx | hung up | unexpected | 5xx | failed | p50 ms | p99 ms | workerd RSS MiB | ORT heap MiB |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...rows,
  ].join("\n");
}

/**
 * The soak chart: p50/p99 latency, requests/s with 5xx and unexpected answers per second, and memory.
 *
 * @example
 * writeFileSync("soak.svg", soakChartSvg("lenet, 32 clients, 10 min", result.windows, 30));
 */
export function soakChartSvg(title: string, windows: readonly TrafficWindow[], windowS: number): string {
  const [width, height] = [760, 660];
  const t = windows.map((w) => w.t);
  const latency = panel(t, [
    { name: "p50 latency", color: "#1b9e77", values: windows.map((w) => w.p50Ms) },
    { name: "p99 latency", color: "#d95f02", values: windows.map((w) => w.p99Ms) },
  ], "ms", 40, 160, width);
  const throughput = panel(t, [
    { name: "requests/s", color: "#7570b3", values: windows.map((w) => w.requests / windowS) },
    { name: "5xx/s", color: "#e7298a", values: windows.map((w) => w.serverErrors / windowS) },
    { name: "unexpected/s", color: "#a6761d", values: windows.map((w) => w.unexpected / windowS) },
  ], "per second", 250, 160, width);
  const memory = panel(t, [
    { name: "workerd RSS", color: "#66a61e", values: windows.map((w) => (w.probe.workerdRssBytes ?? 0) / 2 ** 20) },
    { name: "ORT heap", color: "#e6ab02", values: windows.map((w) => (w.probe.ortHeapBytes ?? 0) / 2 ** 20) },
  ], "MiB", 460, 160, width);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="${width / 2}" y="22" text-anchor="middle" font-size="14">${escapeXml(title)}</text>${latency}${throughput}${memory}
<text x="${(width - 56) / 2}" y="${height - 12}" text-anchor="middle">seconds into the run (one point per ${windowS}-second window)</text>
</svg>
`;
}
