import { describe, expect, it } from "vitest";
import { serverTiming } from "./server-timing";

describe("serverTiming", () => {
  it("writes the figures present, in a fixed order, rounded to microseconds", () => {
    expect(serverTiming({ inferenceMs: 1.23456, decodeMs: 0.5 })).toBe('decode;dur=0.5;desc="image decoding and preprocessing", inference;dur=1.235;desc="model run"');
  });

  it("leaves out what was not measured and writes nothing for no figures", () => {
    expect(serverTiming({ updateMs: 7, queueMs: Number.NaN })).toBe('update;dur=7;desc="head training"');
    expect(serverTiming({})).toBe("");
  });
});
