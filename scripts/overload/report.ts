/** The overload benchmark's figures per step of offered load: the markdown table and the chart (goodput and latency against clients). */
import { escapeXml, panel } from "../loadtest/report.ts";
import { quantile } from "../stats.ts";
import type { Outcome } from "./clients.ts";

/** What one step of offered load measured. */
export interface StepResult {
  clients: number;
  durationS: number;
  requests: number;
  ok: number;
  refused: number;
  /** Refusals by reason. */
  reasons: Record<string, number>;
  /** Answers that were neither 2xx nor a proper refusal, requests that timed out or got no answer. */
  bad: number;
  timeouts: number;
  failed: number;
  p50Ms: number;
  p99Ms: number;
  refusalP50Ms: number;
  refusalP99Ms: number;
  peakRssBytes?: number;
  ortHeapBytes?: number;
  /** The admission controller's high-water mark of in-flight bytes, and its budget (/healthz). */
  peakInFlightBytes?: number;
  budgetBytes?: number;
  /** A lone request right after the step: its status and time. */
  after: { status: number; ms: number };
}

/**
 * A step's figures from its outcomes.
 *
 * @example
 * const step = summarise(256, 40, outcomes, probes);
 */
export function summarise(clients: number, durationS: number, outcomes: readonly Outcome[], probes: Omit<StepResult, "clients" | "durationS" | "requests" | "ok" | "refused" | "reasons" | "bad" | "timeouts" | "failed" | "p50Ms" | "p99Ms" | "refusalP50Ms" | "refusalP99Ms">): StepResult {
  const of = (result: Outcome["result"]) => outcomes.filter((o) => o.result === result);
  const ok = of("ok").map((o) => o.latencyMs);
  const refused = of("refused");
  const reasons: Record<string, number> = {};
  for (const r of refused) reasons[r.reason ?? "?"] = (reasons[r.reason ?? "?"] ?? 0) + 1;
  const refusalMs = refused.map((o) => o.latencyMs);
  return {
    clients,
    durationS,
    requests: outcomes.length,
    ok: ok.length,
    refused: refused.length,
    reasons,
    bad: of("bad").length,
    timeouts: of("timeout").length,
    failed: of("failed").length,
    p50Ms: quantile(ok, 0.5),
    p99Ms: quantile(ok, 0.99),
    refusalP50Ms: quantile(refusalMs, 0.5),
    refusalP99Ms: quantile(refusalMs, 0.99),
    ...probes,
  };
}

const mib = (bytes: number | undefined) => (bytes === undefined ? "-" : (bytes / 2 ** 20).toFixed(0));
const ms = (value: number) => value.toFixed(0);

/**
 * One row per step.
 *
 * @example
 * console.log(stepTable(steps));
 */
export function stepTable(steps: readonly StepResult[]): string {
  const rows = steps.map((s) => {
    const reasons = Object.entries(s.reasons).map(([reason, n]) => `${reason} ${n}`).join(", ") || "-";
    return `| ${s.clients} | ${s.requests} | ${(s.ok / s.durationS).toFixed(2)} | ${s.refused} (${reasons}) | ${s.bad} / ${s.timeouts} / ${s.failed} | ${ms(s.p50Ms)} | ${ms(s.p99Ms)} | ${s.refused ? `${ms(s.refusalP50Ms)} / ${ms(s.refusalP99Ms)}` : "-"} | ${mib(s.peakRssBytes)} | ${mib(s.ortHeapBytes)} | ${mib(s.peakInFlightBytes)} / ${mib(s.budgetBytes)} | ${s.after.status} in ${ms(s.after.ms)} ms |`;
  });
  return [
    "| clients | requests | 2xx/s | refused (by reason) | bad / timed out / no answer | p50 ms (2xx) | p99 ms (2xx) | refusal p50 / p99 ms | workerd peak RSS MiB | ORT heap MiB | peak in-flight / budget MiB | a request right after |",
    "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ...rows,
  ].join("\n");
}

/**
 * The chart: goodput (2xx/s) and refusals/s, then p50/p99 latency of answered requests, and peak RSS, against offered clients.
 *
 * @example
 * writeFileSync("overload.svg", overloadChartSvg("12 MP photos to resnet-edge-int8-static", steps));
 */
export function overloadChartSvg(title: string, steps: readonly StepResult[]): string {
  const [width, height] = [760, 660];
  const x = steps.map((s) => s.clients);
  const rate = panel(x, [
    { name: "2xx/s (goodput)", color: "#1b9e77", values: steps.map((s) => s.ok / s.durationS) },
    { name: "refused/s", color: "#d95f02", values: steps.map((s) => s.refused / s.durationS) },
    { name: "timed out/s", color: "#e7298a", values: steps.map((s) => s.timeouts / s.durationS) },
  ], "per second", 40, 160, width);
  const latency = panel(x, [
    { name: "p50 (2xx)", color: "#7570b3", values: steps.map((s) => s.p50Ms) },
    { name: "p99 (2xx)", color: "#a6761d", values: steps.map((s) => s.p99Ms) },
    { name: "p99 refusal", color: "#e6ab02", values: steps.map((s) => s.refusalP99Ms) },
  ], "ms", 250, 160, width);
  // The title names the mix, the clients and the step length: one line each, so that none is cut off.
  const titleLines = title.split("; ").map((line, i) => `\n<text x="${width / 2}" y="${14 + 14 * i}" text-anchor="middle" font-size="${i === 0 ? 13 : 12}">${escapeXml(line)}</text>`).join("");
  const memory = panel(x, [{ name: "workerd peak RSS", color: "#66a61e", values: steps.map((s) => (s.peakRssBytes ?? 0) / 2 ** 20) }], "MiB", 460, 160, width);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
${titleLines}${rate}${latency}${memory}
<text x="${(width - 56) / 2}" y="${height - 12}" text-anchor="middle">offered load: clients, each sending its next request as soon as it has an answer</text>
</svg>
`;
}
