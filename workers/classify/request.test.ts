import { describe, expect, it } from "vitest";
import { ImageTooLargeError, IncompleteBodyError, PayloadTooLargeError, UnsupportedMediaTypeError } from "../problems/problems";
import { classifyOptions } from "./options";
import { CLASSIFY_LIMITS } from "./limits";
import { checkImage, mediaType, readBodyLimited, readImages } from "./request";

function pngHeader(width: number, height: number): Uint8Array {
  const bytes = new Uint8Array(33);
  bytes.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]);
  const view = new DataView(bytes.buffer);
  view.setUint32(16, width);
  view.setUint32(20, height);
  return bytes;
}

describe("mediaType", () => {
  it("drops parameters and case", () => {
    expect(mediaType("Image/PNG; charset=binary")).toBe("image/png");
    expect(mediaType(null)).toBe("");
  });
});

describe("readBodyLimited", () => {
  it("reads a body within the limit", async () => {
    const body = await readBodyLimited(new Request("http://x/", { method: "POST", body: "abc" }), 3);
    expect(new TextDecoder().decode(body)).toBe("abc");
  });

  it("answers a body that breaks off before its declared Content-Length as incomplete", async () => {
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(new Uint8Array(6));
        controller.error(new Error("connection reset"));
      },
    });
    const request = new Request("http://x/", { method: "POST", body: stream, headers: { "content-length": "12" }, duplex: "half" } as RequestInit);
    const refusal = await readBodyLimited(request, 100).catch((err: unknown) => err);
    expect(refusal).toBeInstanceOf(IncompleteBodyError);
    expect((refusal as IncompleteBodyError).message).toMatch(/before the 12 bytes its Content-Length declared/);
  });

  it("refuses a body over the limit even without a Content-Length", async () => {
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(new Uint8Array(6));
        controller.enqueue(new Uint8Array(6));
        controller.close();
      },
    });
    const request = new Request("http://x/", { method: "POST", body: stream, duplex: "half" } as RequestInit);
    await expect(readBodyLimited(request, 10)).rejects.toBeInstanceOf(PayloadTooLargeError);
  });
});

describe("checkImage", () => {
  it("passes an image within the limits", () => {
    expect(checkImage("x.png", pngHeader(4096, 2048)).header).toEqual({ format: "png", width: 4096, height: 2048 });
  });

  it("refuses too many pixels, or too long a side, from the header alone", () => {
    expect(() => checkImage("x.png", pngHeader(4097, 2048))).toThrow(ImageTooLargeError);
    expect(() => checkImage("x.png", pngHeader(CLASSIFY_LIMITS.maxImageSide + 1, 1))).toThrow(ImageTooLargeError);
  });

  it("refuses an image over the byte limit", () => {
    const big = new Uint8Array(CLASSIFY_LIMITS.maxImageBytes + 1);
    big.set(pngHeader(10, 10));
    expect(() => checkImage("x.png", big)).toThrow(PayloadTooLargeError);
  });
});

describe("readImages", () => {
  it("refuses a content type that is neither an image nor multipart", async () => {
    const request = new Request("http://x/", { method: "POST", headers: { "content-type": "text/plain" }, body: "hi" });
    await expect(readImages(request)).rejects.toBeInstanceOf(UnsupportedMediaTypeError);
  });
});

describe("classifyOptions", () => {
  it("defaults to the top 5 and no raw outputs", () => {
    expect(classifyOptions({})).toEqual({ topK: 5, include: [], provider: "auto" });
  });

  it("parses top_k and include", () => {
    expect(classifyOptions({ top_k: "3", include: "logits,embedding" })).toEqual({ topK: 3, include: ["logits", "embedding"], provider: "auto" });
  });

  it.each(["0", "-1", "2.5", "five", ""])("refuses top_k=%s", (value) => {
    expect(() => classifyOptions({ top_k: value })).toThrow(/top_k/);
  });

  it("refuses an unknown include", () => {
    expect(() => classifyOptions({ include: "weights" })).toThrow(/include/);
  });

  it("takes the provider from the request, else from the deployment", () => {
    expect(classifyOptions({ provider: "wasm" }, "webgpu").provider).toBe("wasm");
    expect(classifyOptions({}, "webgpu").provider).toBe("webgpu");
    expect(classifyOptions({}, "cuda").provider).toBe("auto"); // an unknown deployment value
  });

  it("refuses an unknown provider in a request", () => {
    expect(() => classifyOptions({ provider: "cuda" })).toThrow(/provider takes auto, webgpu, wasm/);
  });

  it("parses flip_average, leaving the choice to the model when absent", () => {
    expect(classifyOptions({ flip_average: "true" }).flipAverage).toBe(true);
    expect(classifyOptions({ flip_average: "false" }).flipAverage).toBe(false);
    expect("flipAverage" in classifyOptions({})).toBe(false);
  });

  it.each(["1", "yes", "", "TRUE"])("refuses flip_average=%s", (value) => {
    expect(() => classifyOptions({ flip_average: value })).toThrow(`flip_average takes true or false, not '${value}'.`);
  });
});
