import { describe, expect, it } from "vitest";
import { parsePrometheus, sampleValue } from "../../test/support/prometheus";
import { Counter, Gauge, Histogram, Registry } from "./prometheus";

describe("Registry", () => {
  it("renders counters, gauges and histograms that Prometheus's own parser reads back", () => {
    const registry = new Registry();
    const requests = registry.add(new Counter("demo_requests_total", "Requests.\nSecond line.", ["route", "status_class"]));
    const latency = registry.add(new Histogram("demo_latency_seconds", "Latency.", ["model"], [0.01, 0.001, 0.1]));
    registry.add(new Gauge("demo_resident", "Resident sessions.", () => [[{ session: "lenet@1:wasm" }, 1]]));
    requests.inc({ route: '/a "quoted" \\ path\nnext', status_class: "2xx" });
    requests.inc({ status_class: "2xx", route: '/a "quoted" \\ path\nnext' }, 2);
    requests.inc({ route: "/b", status_class: "4xx" });
    requests.inc({ route: "/b", status_class: "4xx" }, -5);
    for (const [model, seconds] of [["lenet", 0.0005], ["lenet", 0.05], ["lenet", 3], ["vgg", 0.002]] as const) latency.observe({ model }, seconds);
    latency.observe({ model: "lenet" }, Number.NaN);

    const families = parsePrometheus(registry.render());
    expect(families.map((f) => [f.name, f.type])).toEqual([["demo_requests", "counter"], ["demo_latency_seconds", "histogram"], ["demo_resident", "gauge"]]);
    expect(families[0]!.help).toBe("Requests.\nSecond line.");
    expect(sampleValue(families, "demo_requests_total", { route: '/a "quoted" \\ path\nnext' })).toBe(3);
    expect(sampleValue(families, "demo_requests_total", { route: "/b" })).toBe(1);
    // Buckets sorted, cumulative, +Inf equal to the count; NaN not observed.
    const lenetBuckets = families[1]!.samples.filter((s) => s.name === "demo_latency_seconds_bucket" && s.labels.model === "lenet").map((s) => [s.labels.le, s.value]);
    expect(lenetBuckets).toEqual([["0.001", 1], ["0.01", 1], ["0.1", 2], ["+Inf", 3]]);
    expect(sampleValue(families, "demo_latency_seconds_count", { model: "lenet" })).toBe(3);
    expect(sampleValue(families, "demo_latency_seconds_sum", { model: "lenet" })).toBeCloseTo(3.0505, 10);
    expect(sampleValue(families, "demo_latency_seconds_count", { model: "vgg" })).toBe(1);
    expect(sampleValue(families, "demo_resident", { session: "lenet@1:wasm" })).toBe(1);
  });

  it("writes a metric with no observations as its HELP and TYPE lines alone", () => {
    const registry = new Registry();
    registry.add(new Counter("idle_total", "Nothing yet."));
    expect(registry.render()).toBe("# HELP idle_total Nothing yet.\n# TYPE idle_total counter\n");
  });
});
