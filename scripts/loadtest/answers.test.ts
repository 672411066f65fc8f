import { describe, expect, it } from "vitest";
import { AnswerCheck, accuracyFloor, topLabel } from "./answers";

const answer = (label: string) => JSON.stringify({ results: [{ predictions: [{ label, probability: 0.9 }] }] });

describe("topLabel", () => {
  it("reads the first prediction of the first result", () => {
    expect(topLabel(answer("cat"))).toBe("cat");
  });
  it("is undefined for anything else", () => {
    for (const body of ["", "not json", "{}", '{"results":[]}', '{"results":[{"predictions":[{"label":3}]}]}']) expect(topLabel(body)).toBeUndefined();
  });
});

describe("accuracyFloor", () => {
  it("sits three standard deviations and the slack below the measured accuracy", () => {
    expect(accuracyFloor(0.9, 100)).toBeCloseTo(0.9 - 3 * 0.03 - 0.05, 10);
  });
  it("never goes below zero and tightens with more images", () => {
    expect(accuracyFloor(0.2, 10)).toBe(0);
    expect(accuracyFloor(0.9, 1000)).toBeGreaterThan(accuracyFloor(0.9, 100));
  });
});

describe("AnswerCheck", () => {
  const images = [{ name: "a", label: "cat" }, { name: "b", label: "dog" }];
  it("counts correct answers against labels and inconsistent ones against the reference", () => {
    // The reference got image b wrong: answering "cat" for it again is consistent, not correct.
    const check = new AnswerCheck(images, ["cat", "cat"]);
    check.record(0, answer("cat"));
    check.record(1, answer("cat"));
    check.record(1, answer("dog"));
    check.record(0, "garbage");
    expect(check.summary()).toMatchObject({ checked: 4, correct: 2, accuracy: 0.5, inconsistent: 2 });
    expect(check.summary().examples).toEqual([
      { image: "b", expected: "dog", reference: "cat", got: "dog" },
      { image: "a", expected: "cat", reference: "cat", got: "(no label)" },
    ]);
  });
});
