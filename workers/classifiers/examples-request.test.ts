import { describe, expect, it } from "vitest";
import { ProblemError } from "../problems/problems";
import { checkLabel, readLabelledImages } from "./examples-request";

// The smallest valid PNG: 1x1, 8-bit grayscale.
const PNG = Uint8Array.from(atob("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg=="), (c) => c.charCodeAt(0));

const post = (body: BodyInit, type?: string) =>
  new Request("http://x/finetune", { method: "POST", body, ...(type ? { headers: { "content-type": type } } : {}) });

async function problem(pending: Promise<unknown>): Promise<string> {
  const err = await pending.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ProblemError);
  return (err as ProblemError).slug;
}

describe("readLabelledImages", () => {
  it("pairs multipart images with their labels, or one label with all", async () => {
    const form = new FormData();
    form.append("image", new Blob([PNG]), "a.png");
    form.append("label", "cat");
    form.append("image", new Blob([PNG]), "b.png");
    form.append("label", " dog ");
    form.append("classifier", "pets");
    expect(await readLabelledImages(post(form))).toMatchObject({ classifier: "pets", labels: ["cat", "dog"], images: [{ name: "a.png" }, { name: "b.png" }] });

    const one = new FormData();
    one.append("label", "cat");
    one.append("image", new Blob([PNG]), "a.png");
    one.append("image", new Blob([PNG]), "b.png");
    expect((await readLabelledImages(post(one))).labels).toEqual(["cat", "cat"]);
  });

  it("reads JSON examples with base64 images, data: URLs included", async () => {
    const b64 = btoa(String.fromCharCode(...PNG));
    const body = JSON.stringify({ examples: [{ image: b64, label: "cat" }, { image: `data:image/png;base64,${b64}`, label: "dog" }] });
    const read = await readLabelledImages(post(body, "application/json"));
    expect(read.labels).toEqual(["cat", "dog"]);
    expect(read.images.map((i) => i.header)).toEqual([
      { format: "png", width: 1, height: 1 },
      { format: "png", width: 1, height: 1 },
    ]);
  });

  it("refuses what it cannot pair or read", async () => {
    expect(await problem(readLabelledImages(post("x", "text/plain")))).toBe("unsupported-media-type");
    expect(await problem(readLabelledImages(post("{", "application/json")))).toBe("invalid-request");
    expect(await problem(readLabelledImages(post(JSON.stringify({ examples: "no" }), "application/json")))).toBe("invalid-parameter");
    const form = new FormData();
    form.append("image", new Blob([PNG]), "a.png");
    expect(await problem(readLabelledImages(post(form)))).toBe("invalid-parameter"); // no label
  });
});

describe("checkLabel", () => {
  it("trims labels and refuses non-strings, blanks and long ones", () => {
    expect(checkLabel(" cat ", 0)).toBe("cat");
    expect(() => checkLabel(3, 0)).toThrow(/must be a string/);
    expect(() => checkLabel(" ", 0)).toThrow(/empty/);
    expect(() => checkLabel("x".repeat(65), 0)).toThrow(/longer than 64/);
  });
});
