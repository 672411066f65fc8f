import { describe, expect, it } from "vitest";
import { accessLogLine } from "./log-line";
import { analyticsDataPoint } from "./analytics-events";

describe("analyticsDataPoint", () => {
  it("puts a classification's route, model and timings in the documented columns", () => {
    const line = accessLogLine(
      { requestId: "r1", method: "POST", route: "/v1/models/:id/classify", path: "/v1/models/lenet/classify", status: 200, durationMs: 3.5 },
      { model: { id: "lenet", version: 1 }, timing: { decodeMs: 0.4, queueMs: 0.1, inferenceMs: 1.2, batch: { images: 4, requests: 2 }, coldStart: true } },
    );
    expect(analyticsDataPoint(line)).toEqual({
      indexes: ["lenet"],
      blobs: ["/v1/models/:id/classify", "lenet", "2xx", "", "POST", ""],
      doubles: [200, 3.5, 0.4, 0.1, 1.2, 4, 1, 1, 0, 0],
    });
  });

  it("indexes a request that ran no model by its route, and counts a fine-tune's examples", () => {
    const refused = accessLogLine({ requestId: "r2", method: "GET", route: null, path: "/nope", status: 404, durationMs: 0.2, problem: "not-found" });
    expect(analyticsDataPoint(refused)).toMatchObject({ indexes: ["unmatched"], blobs: ["unmatched", "", "4xx", "not-found", "GET", ""] });
    const taught = accessLogLine(
      { requestId: "r3", method: "POST", route: "/finetune", path: "/finetune", status: 200, durationMs: 9, classifierChange: { kind: "finetune", examples: 12 } },
      { model: { id: "lenet", version: 1 }, classifier: { id: "digits", version: 3 }, timing: { decodeMs: 1, inferenceMs: 2, updateMs: 5 } },
    );
    expect(analyticsDataPoint(taught).blobs[5]).toBe("digits");
    expect(analyticsDataPoint(taught).doubles.slice(8)).toEqual([12, 1]);
  });
});
