import { describe, expect, it } from "vitest";
import { quantile } from "../stats";
import { chartSvg, statusCounts, timeline } from "./report";

describe("quantile", () => {
  it("takes the nearest rank", () => {
    expect(quantile([4, 1, 3, 2], 0.5)).toBe(2);
    expect(quantile([1, 2, 3, 4], 0.99)).toBe(4);
    expect(quantile([], 0.5)).toBe(0);
  });
});

describe("timeline", () => {
  it("buckets by completion second, keeps empty seconds, counts non-2xx and failures as errors", () => {
    const seconds = timeline([
      { at: 100, latencyMs: 10, status: 200 },
      { at: 900, latencyMs: 30, status: 503 },
      { at: 2500, latencyMs: 20, status: 0 },
    ]);
    expect(seconds).toEqual([
      { t: 0, requests: 2, errors: 1, p50Ms: 10, p99Ms: 30 },
      { t: 1, requests: 0, errors: 0, p50Ms: 0, p99Ms: 0 },
      { t: 2, requests: 1, errors: 1, p50Ms: 20, p99Ms: 20 },
    ]);
  });
});

describe("statusCounts", () => {
  it("counts by status, requests without an answer as failed", () => {
    const samples = [200, 200, 503, 0].map((status, at) => ({ at, latencyMs: 1, status }));
    expect(statusCounts(samples)).toEqual({ 200: 2, 503: 1, failed: 1 });
  });
});

describe("chartSvg", () => {
  it("draws one line per series in two panels, with the title escaped", () => {
    const svg = chartSvg("a < b", timeline([{ at: 100, latencyMs: 10, status: 200 }, { at: 1100, latencyMs: 12, status: 200 }]));
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg).toContain("a &lt; b");
    expect(svg.match(/<path /g)).toHaveLength(4);
  });
});
