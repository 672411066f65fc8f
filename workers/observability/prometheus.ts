/**
 * Counters, gauges and histograms with labels, rendered in Prometheus's text exposition format
 * (version 0.0.4). Small on purpose: prom-client needs Node's process and cluster modules, which a
 * Worker does not have, and the service's metrics need nothing more than this.
 */

export type Labels = Record<string, string>;

/** The content type of the text format, for the /metrics answer. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** A label value as the format writes it: backslash, double quote and newline escaped. */
function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function labelText(labels: Labels): string {
  const pairs = Object.entries(labels).map(([name, value]) => `${name}="${escapeLabelValue(value)}"`);
  return pairs.length ? `{${pairs.join(",")}}` : "";
}

function numberText(value: number): string {
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return Number.isNaN(value) ? "NaN" : String(value);
}

/** A series' key: its label values in the metric's label order. */
function seriesKey(labelNames: readonly string[], labels: Labels): string {
  return JSON.stringify(labelNames.map((name) => labels[name] ?? ""));
}

function ordered(labelNames: readonly string[], labels: Labels): Labels {
  return Object.fromEntries(labelNames.map((name) => [name, labels[name] ?? ""]));
}

interface Metric {
  render(): string;
}

function header(name: string, help: string, type: string): string {
  return `# HELP ${name} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}\n# TYPE ${name} ${type}\n`;
}

/** A monotonically increasing count per label set. */
export class Counter implements Metric {
  private readonly series = new Map<string, { labels: Labels; value: number }>();
  constructor(readonly name: string, readonly help: string, readonly labelNames: readonly string[] = []) {}

  /**
   * @example
   * requests.inc({ route: "/classify", status_class: "2xx" });
   */
  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) return;
    const key = seriesKey(this.labelNames, labels);
    const entry = this.series.get(key) ?? { labels: ordered(this.labelNames, labels), value: 0 };
    entry.value += by;
    this.series.set(key, entry);
  }

  render(): string {
    const lines = [...this.series.values()].map(({ labels, value }) => `${this.name}${labelText(labels)} ${numberText(value)}`);
    return header(this.name, this.help, "counter") + lines.map((line) => `${line}\n`).join("");
  }
}

/** A value read when the metrics are rendered (resident models, say), one per label set. */
export class Gauge implements Metric {
  constructor(readonly name: string, readonly help: string, private readonly collect: () => [Labels, number][]) {}

  render(): string {
    return header(this.name, this.help, "gauge") + this.collect().map(([labels, value]) => `${this.name}${labelText(labels)} ${numberText(value)}\n`).join("");
  }
}

/** Observations counted into cumulative buckets, with their sum and count, per label set. */
export class Histogram implements Metric {
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  readonly buckets: readonly number[];
  constructor(readonly name: string, readonly help: string, readonly labelNames: readonly string[], buckets: readonly number[]) {
    this.buckets = [...buckets].sort((a, b) => a - b);
  }

  /**
   * @example
   * inferenceSeconds.observe({ model: "lenet" }, 0.0012);
   */
  observe(labels: Labels, value: number): void {
    if (!Number.isFinite(value)) return;
    const key = seriesKey(this.labelNames, labels);
    const entry = this.series.get(key) ?? { labels: ordered(this.labelNames, labels), counts: this.buckets.map(() => 0), sum: 0, count: 0 };
    this.buckets.forEach((bound, i) => {
      if (value <= bound) entry.counts[i]! += 1;
    });
    entry.sum += value;
    entry.count += 1;
    this.series.set(key, entry);
  }

  render(): string {
    let text = header(this.name, this.help, "histogram");
    for (const { labels, counts, sum, count } of this.series.values()) {
      this.buckets.forEach((bound, i) => {
        text += `${this.name}_bucket${labelText({ ...labels, le: numberText(bound) })} ${counts[i]}\n`;
      });
      text += `${this.name}_bucket${labelText({ ...labels, le: "+Inf" })} ${count}\n`;
      text += `${this.name}_sum${labelText(labels)} ${numberText(sum)}\n`;
      text += `${this.name}_count${labelText(labels)} ${count}\n`;
    }
    return text;
  }
}

/**
 * Every metric in one exposition, in the order they were added.
 *
 * @example
 * const registry = new Registry();
 * const requests = registry.add(new Counter("requests_total", "Requests answered.", ["status_class"]));
 * requests.inc({ status_class: "2xx" });
 * registry.render(); // '# HELP requests_total Requests answered.\n# TYPE requests_total counter\nrequests_total{status_class="2xx"} 1\n'
 */
export class Registry {
  private readonly metrics: Metric[] = [];

  add<M extends Metric>(metric: M): M {
    this.metrics.push(metric);
    return metric;
  }

  render(): string {
    return this.metrics.map((metric) => metric.render()).join("");
  }
}
