import { describe, expect, it } from "vitest";
import type { ServedModel } from "../models/manifest";
import { ProblemError } from "../problems/problems";
import { averageMirrors, flipAverageFor, withMirrors } from "./flip-average";

describe("withMirrors", () => {
  it("appends each image mirrored along its width, every channel and row", () => {
    // two images, 2 channels, 2 rows, 3 columns: values say image, channel, row, column
    const shape = { channels: 2, height: 2, width: 3 };
    const input = Float32Array.from({ length: 24 }, (_, i) => i);
    const out = withMirrors(input, 2, shape);
    expect(Array.from(out.subarray(0, 24))).toEqual(Array.from(input));
    for (let row = 0; row < 8; row++) {
      expect(Array.from(out.subarray(24 + row * 3, 27 + row * 3))).toEqual([row * 3 + 2, row * 3 + 1, row * 3]);
    }
  });

  it("leaves what follows the images alone (a batch buffer larger than its images)", () => {
    const out = withMirrors(new Float32Array([1, 2, 9, 9]), 1, { channels: 1, height: 1, width: 2 });
    expect(Array.from(out)).toEqual([1, 2, 2, 1]);
  });
});

it("averageMirrors means row i with row count + i", () => {
  expect(Array.from(averageMirrors(new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]), 2, 2))).toEqual([3, 4, 5, 6]);
});

describe("flipAverageFor", () => {
  const model = (architecture: object, input: object, config?: object) =>
    ({ manifest: { id: "m", version: 2, architecture, input }, config }) as unknown as ServedModel;
  const refusal = (fn: () => unknown) => {
    try {
      fn();
    } catch (error) {
      return error instanceof ProblemError ? { status: error.status, detail: error.message } : error;
    }
    return undefined;
  };

  it("follows the request, else the model's config, else runs both passes", () => {
    expect(flipAverageFor(model({}, { mirrorable: true }), undefined)).toBe(true);
    expect(flipAverageFor(model({}, { mirrorable: true }, { flipAverage: false }), undefined)).toBe(false);
    expect(flipAverageFor(model({}, { mirrorable: true }, { flipAverage: false }), true)).toBe(true);
    expect(flipAverageFor(model({}, { mirrorable: true }), false)).toBe(false);
  });

  it("never mirrors a model not trained on mirrors, and refuses a request to", () => {
    expect(flipAverageFor(model({}, {}), undefined)).toBe(false);
    expect(flipAverageFor(model({}, {}), false)).toBe(false);
    expect(refusal(() => flipAverageFor(model({}, {}), true))).toEqual({ status: 400, detail: "m was not trained on mirrored images, so their average is no better answer." });
  });

  it("a graph with the average inside always runs both, and refuses a single pass", () => {
    expect(flipAverageFor(model({ flipAverage: true }, { mirrorable: true }, { flipAverage: false }), undefined)).toBe(true);
    expect(refusal(() => flipAverageFor(model({ flipAverage: true }, {}), false))).toMatchObject({ status: 400 });
  });
});
