import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { ImageDecodeError, UnsupportedMediaTypeError } from "../problems/problems";
import { probeImage, sniffFormat } from "./probe";

async function encoded(width: number, height: number, format: "png" | "jpeg" | "webp", options: object = {}): Promise<Uint8Array> {
  const image = sharp({ create: { width, height, channels: 3, background: { r: 200, g: 30, b: 90 } } });
  return new Uint8Array(await image.toFormat(format, options).toBuffer());
}

describe("probeImage", () => {
  const cases: [string, "png" | "jpeg" | "webp", object][] = [
    ["PNG", "png", {}],
    ["baseline JPEG", "jpeg", {}],
    ["progressive JPEG", "jpeg", { progressive: true }],
    ["lossy WebP (VP8)", "webp", {}],
    ["lossless WebP (VP8L)", "webp", { lossless: true }],
  ];
  for (const [name, format, options] of cases) {
    it(`reads the size of a ${name} from its header`, async () => {
      for (const [w, h] of [
        [1, 1],
        [28, 28],
        [640, 427],
        [3001, 17],
      ] as const) {
        expect(probeImage(await encoded(w, h, format, options))).toEqual({ format, width: w, height: h });
      }
    });
  }

  it("reads the canvas size of an extended WebP (VP8X, with alpha)", async () => {
    const bytes = new Uint8Array(
      await sharp({ create: { width: 300, height: 200, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0.5 } } }).webp().toBuffer(),
    );
    expect(String.fromCharCode(...bytes.subarray(12, 16))).toBe("VP8X");
    expect(probeImage(bytes)).toEqual({ format: "webp", width: 300, height: 200 });
  });

  it("refuses bytes that are no image format it knows", () => {
    expect(sniffFormat(new TextEncoder().encode("GIF89a......"))).toBeUndefined();
    expect(() => probeImage(new TextEncoder().encode("hello, world"))).toThrow(UnsupportedMediaTypeError);
  });

  it("refuses truncated headers", async () => {
    const png = await encoded(10, 10, "png");
    const jpeg = await encoded(10, 10, "jpeg");
    const webp = await encoded(10, 10, "webp");
    expect(() => probeImage(png.subarray(0, 12))).toThrow(ImageDecodeError);
    expect(() => probeImage(jpeg.subarray(0, 20))).toThrow(ImageDecodeError);
    expect(() => probeImage(webp.subarray(0, 16))).toThrow(ImageDecodeError);
  });

  it("refuses a header that declares a zero size", async () => {
    const png = await encoded(4, 4, "png");
    new DataView(png.buffer, png.byteOffset).setUint32(16, 0);
    expect(() => probeImage(png)).toThrow(/0x4/);
  });
});
