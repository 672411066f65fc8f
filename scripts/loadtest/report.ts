/**
 * What a load test measured, per second and overall, and the chart of it: latency (p50, p99)
 * and throughput over time, as an SVG a browser opens.
 */
import { quantile } from "../stats.ts";

/** One response (or failed request) as the load generator saw it. */
export interface Sample {
  /** Milliseconds from the start of the load to the answer. */
  at: number;
  latencyMs: number;
  /** HTTP status, or 0 for a request that got no response (timeout, connection error). */
  status: number;
}

/** Whether a sample is a failure: a non-2xx answer, or no answer at all. */
export function isError(sample: Sample): boolean {
  return sample.status < 200 || sample.status >= 300;
}

/**
 * Samples counted by status code ("failed" for requests that got no answer).
 *
 * @example
 * statusCounts([{ at: 1, latencyMs: 5, status: 200 }, { at: 2, latencyMs: 0, status: 0 }]); // { 200: 1, failed: 1 }
 */
export function statusCounts(samples: readonly Sample[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const { status } of samples) {
    const key = status === 0 ? "failed" : String(status);
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

export interface Second {
  /** Seconds from the start. */
  t: number;
  requests: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
}

/**
 * Samples grouped by the second they completed in (seconds with none are kept, with zeros).
 *
 * @example
 * timeline([{ at: 1500, latencyMs: 12, status: 200 }]); // [{ t: 0, ... }, { t: 1, requests: 1, ... }]
 */
export function timeline(samples: readonly Sample[]): Second[] {
  const seconds = samples.length ? Math.floor(Math.max(...samples.map((s) => s.at)) / 1000) + 1 : 0;
  const buckets = Array.from({ length: seconds }, () => [] as Sample[]);
  for (const sample of samples) buckets[Math.floor(sample.at / 1000)]!.push(sample);
  return buckets.map((bucket, t) => {
    const latencies = bucket.map((s) => s.latencyMs);
    return {
      t,
      requests: bucket.length,
      errors: bucket.filter(isError).length,
      p50Ms: quantile(latencies, 0.5),
      p99Ms: quantile(latencies, 0.99),
    };
  });
}

export interface Series {
  name: string;
  color: string;
  values: number[];
}

/**
 * One panel of a chart: lines over x values (seconds), y from 0 to a rounded maximum.
 *
 * @example
 * const svgPart = panel([1, 2], [{ name: "p99", color: "#d95f02", values: [5, 7] }], "ms", 40, 170, 760);
 */
export function panel(seconds: number[], series: Series[], unit: string, top: number, height: number, width: number): string {
  const left = 64;
  const right = width - 120;
  const max = niceCeiling(Math.max(1, ...series.flatMap((s) => s.values)));
  const last = Math.max(1, seconds.at(-1) ?? 1);
  const x = (t: number) => left + (t / last) * (right - left);
  const y = (v: number) => top + height - (v / max) * height;
  const grid = [0, 0.25, 0.5, 0.75, 1]
    .map((f) => `<line x1="${left}" x2="${right}" y1="${y(f * max)}" y2="${y(f * max)}" stroke="#e5e5e5"/><text x="${left - 6}" y="${y(f * max) + 4}" text-anchor="end">${+(f * max).toPrecision(3)}</text>`)
    .join("");
  const lines = series
    .map((s, i) => {
      const d = s.values.map((v, k) => `${k ? "L" : "M"}${x(seconds[k]!).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
      return `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"/><text x="${right + 8}" y="${top + 14 + i * 16}" fill="${s.color}">${s.name}</text>`;
    })
    .join("");
  const ticks = [...new Set([0, 0.25, 0.5, 0.75, 1].map((f) => Math.round(f * last)))]
    .map((t) => `<text x="${x(t)}" y="${top + height + 14}" text-anchor="middle" fill="#666">${t}</text>`)
    .join("");
  return `${grid}${ticks}<text x="12" y="${top + height / 2}" transform="rotate(-90 12 ${top + height / 2})" text-anchor="middle">${unit}</text>${lines}`;
}

function niceCeiling(v: number): number {
  const power = 10 ** Math.floor(Math.log10(v));
  return ([1, 2, 2.5, 5, 10].find((m) => m * power >= v) ?? 10) * power;
}

/**
 * The load test's chart: latency p50/p99 (top) and requests/s with errors/s (bottom), per second.
 *
 * @example
 * writeFileSync("report.svg", chartSvg("lenet at 8 connections", timeline(samples)));
 */
export function chartSvg(title: string, seconds: Second[]): string {
  const [width, height] = [760, 480];
  const t = seconds.map((s) => s.t + 1); // a second's figures are plotted at its end
  const latency = panel(t, [
    { name: "p50 latency", color: "#1b9e77", values: seconds.map((s) => s.p50Ms) },
    { name: "p99 latency", color: "#d95f02", values: seconds.map((s) => s.p99Ms) },
  ], "ms", 40, 170, width);
  const throughput = panel(t, [
    { name: "requests/s", color: "#7570b3", values: seconds.map((s) => s.requests) },
    { name: "errors/s", color: "#e7298a", values: seconds.map((s) => s.errors) },
  ], "per second", 260, 170, width);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="${width / 2}" y="22" text-anchor="middle" font-size="14">${escapeXml(title)}</text>${latency}${throughput}
<text x="${(width - 56) / 2}" y="${height - 12}" text-anchor="middle">seconds into the run</text>
</svg>
`;
}

export function escapeXml(text: string): string {
  return text.replace(/[<>&"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;" })[c]!);
}
