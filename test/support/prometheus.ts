/**
 * Parse a Prometheus text exposition with the Prometheus project's own Python client
 * (`prometheus_client.parser`, Debian's python3-prometheus-client): the parser a scraper's
 * behaviour is checked against, strict about the format, where the npm parsers drop histogram labels.
 */
import { execFileSync } from "node:child_process";
import { PYTHON } from "./paths";

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  type: string;
  help: string;
  samples: Sample[];
}

const PARSE = `
import json, sys
from prometheus_client.parser import text_string_to_metric_families
families = [{"name": f.name, "type": f.type, "help": f.documentation,
             "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples]}
            for f in text_string_to_metric_families(sys.stdin.read())]
print(json.dumps(families))
`;

/**
 * The families in `text`; throws where the parser refuses it.
 *
 * @example
 * const families = parsePrometheus(await (await fetch(url + "/metrics")).text());
 */
export function parsePrometheus(text: string): MetricFamily[] {
  return JSON.parse(execFileSync(PYTHON, ["-c", PARSE], { input: text, encoding: "utf8" })) as MetricFamily[];
}

/**
 * The value of the sample with this name whose labels include `labels`, summed over the matches
 * (0 when none matches, as an unobserved counter would be).
 *
 * @example
 * sampleValue(families, "cnn_edge_requests_total", { route: "/classify", status_class: "2xx" });
 */
export function sampleValue(families: MetricFamily[], name: string, labels: Record<string, string> = {}): number {
  return families
    .flatMap((family) => family.samples)
    .filter((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value))
    .reduce((sum, sample) => sum + sample.value, 0);
}
