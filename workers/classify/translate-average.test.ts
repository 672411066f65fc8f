import { describe, expect, it } from "vitest";
import type { ServedModel } from "../models/manifest";
import { ProblemError } from "../problems/problems";
import { TRANSLATE_VIEWS, averageTranslations, translateAverageFor, withTranslations } from "./translate-average";

describe("withTranslations", () => {
  // one image, one channel, 3x3: value = 10 * row + column
  const shape = { channels: 1, height: 3, width: 3 };
  const image = Float32Array.from([0, 1, 2, 10, 11, 12, 20, 21, 22]);
  const view = (out: Float32Array, v: number) => Array.from(out.subarray(v * 9, (v + 1) * 9));

  it("runs the image, its mirror, and both one-pixel shifts with their mirrors, reflected at the border", () => {
    const out = withTranslations(image, 1, shape);
    expect(out.length).toBe(TRANSLATE_VIEWS * 9);
    expect(view(out, 0)).toEqual(Array.from(image));
    expect(view(out, 1)).toEqual([2, 1, 0, 12, 11, 10, 22, 21, 20]);
    // torch: F.pad(x, (1,1,1,1), 'reflect')[..., 0:3, 0:3]: row -1 reads row 1, column -1 column 1
    expect(view(out, 2)).toEqual([11, 10, 11, 1, 0, 1, 11, 10, 11]);
    expect(view(out, 3)).toEqual([11, 10, 11, 1, 0, 1, 11, 10, 11].reduce<number[]>((rows, _, i, all) => (i % 3 ? rows : [...rows, ...all.slice(i, i + 3).reverse()]), []));
    // [..., 2:5, 2:5]: row 3 reads row 1
    expect(view(out, 4)).toEqual([11, 12, 11, 21, 22, 21, 11, 12, 11]);
    expect(view(out, 5)).toEqual([11, 12, 11, 21, 22, 21, 11, 12, 11].reduce<number[]>((rows, _, i, all) => (i % 3 ? rows : [...rows, ...all.slice(i, i + 3).reverse()]), []));
  });

  it("keeps images and channels apart, view by view", () => {
    const two = Float32Array.from({ length: 2 * 2 * 9 }, (_, i) => i); // two images of two channels
    const out = withTranslations(two, 2, { channels: 2, height: 3, width: 3 });
    expect(Array.from(out.subarray(0, 36))).toEqual(Array.from(two));
    expect(out[36 + 9 * 3]).toBe(two[9 * 3 + 2]); // the mirror of image 2, channel 2 starts with its top-right pixel
  });
});

it("averageTranslations weighs the image and its mirror a quarter each, the shifted views an eighth", () => {
  const output = Float32Array.from([8, 80, 4, 40, 16, 160, 0, 0, 8, 80, 0, 0]); // six views of one image, two values each
  expect(Array.from(averageTranslations(output, 1, 2))).toEqual([0.25 * 8 + 0.25 * 4 + 0.125 * (16 + 8), 0.25 * 80 + 0.25 * 40 + 0.125 * (160 + 80)]);
});

describe("translateAverageFor", () => {
  const model = (architecture: object, input: object) => ({ manifest: { id: "m", version: 2, architecture, input } }) as unknown as ServedModel;
  const parameter = (fn: () => unknown) => {
    try {
      fn();
    } catch (error) {
      return error instanceof ProblemError ? { status: error.status, parameter: (error.extensions as { parameter?: string }).parameter } : error;
    }
    return undefined;
  };

  it("is off unless asked, and runs only beside flip averaging on a one-view graph", () => {
    const cifar = model({}, { mirrorable: true });
    expect(translateAverageFor(cifar, undefined, true)).toBe(false);
    expect(translateAverageFor(cifar, false, true)).toBe(false);
    expect(translateAverageFor(cifar, true, true)).toBe(true);
    expect(parameter(() => translateAverageFor(cifar, true, false))).toEqual({ status: 400, parameter: "translate_average" });
    expect(parameter(() => translateAverageFor(model({}, { mirrorable: false }), true, false))).toEqual({ status: 400, parameter: "translate_average" });
    expect(parameter(() => translateAverageFor(model({ flipAverage: true }, { mirrorable: true }), true, true))).toEqual({ status: 400, parameter: "translate_average" });
  });
});
