/**
 * Checking answers, not just status codes. Each image is classified once before the load
 * (the reference); under load, every 200 answer's top label must equal the reference for the
 * same image (a server that mixes up requests, or degrades under load, fails), and the top-1
 * accuracy against the data set's labels must reach a floor derived from the model's own
 * measured accuracy (a server that answers fast but wrong fails).
 */

/**
 * The lowest accuracy on `n` images that is consistent with a model measured at `accuracy`:
 * three binomial standard deviations below it, less `slack` for the resizing and re-encoding
 * the load test applies to its images.
 *
 * @example
 * accuracyFloor(0.99, 40); // 0.89
 */
export function accuracyFloor(accuracy: number, n: number, slack = 0.05): number {
  const sd = Math.sqrt((accuracy * (1 - accuracy)) / Math.max(n, 1));
  return Math.max(0, accuracy - 3 * sd - slack);
}

/**
 * The top label of a /classify answer (single image), or undefined if the body is not one.
 *
 * @example
 * topLabel('{"results":[{"predictions":[{"label":"7","probability":0.99}]}]}'); // "7"
 */
export function topLabel(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { results?: { predictions?: { label?: unknown }[] }[] };
    const label = parsed.results?.[0]?.predictions?.[0]?.label;
    return typeof label === "string" ? label : undefined;
  } catch {
    return undefined;
  }
}

export interface AnswerSummary {
  /** 200 answers checked. */
  checked: number;
  /** Of them, top label equal to the data set's label. */
  correct: number;
  accuracy: number;
  /** Of them, top label different from the reference answer for the same image. */
  inconsistent: number;
  /** A few inconsistent answers, for the report. */
  examples: { image: string; expected: string; reference: string; got: string }[];
}

/**
 * Tallies answers for images known by index.
 *
 * @example
 * const check = new AnswerCheck(images, reference);
 * check.record(3, responseBody);
 * check.summary().inconsistent; // 0
 */
export class AnswerCheck {
  private checked = 0;
  private correct = 0;
  private inconsistent = 0;
  private readonly examples: AnswerSummary["examples"] = [];
  private readonly images: readonly { name: string; label: string }[];
  private readonly reference: readonly (string | undefined)[];

  constructor(images: readonly { name: string; label: string }[], reference: readonly (string | undefined)[]) {
    this.images = images;
    this.reference = reference;
  }

  record(image: number, body: string): void {
    const got = topLabel(body) ?? "(no label)";
    const { name, label } = this.images[image]!;
    const reference = this.reference[image] ?? "(no reference)";
    this.checked++;
    if (got === label) this.correct++;
    if (got !== reference) {
      this.inconsistent++;
      if (this.examples.length < 5) this.examples.push({ image: name, expected: label, reference, got });
    }
  }

  summary(): AnswerSummary {
    const { checked, correct, inconsistent, examples } = this;
    return { checked, correct, accuracy: checked ? correct / checked : 0, inconsistent, examples };
  }
}
