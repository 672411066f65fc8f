import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { ImageDecodeError } from "../problems/problems";
import { crc32 } from "./png-chunks";
import { decodePng } from "./png-decode";

/** A 37x23 test card with a gradient, a ramp of alpha and sharp edges (odd sizes exercise the Adam7 passes). */
function card(channels: 3 | 4): Buffer {
  const [w, h] = [37, 23];
  const px = Buffer.alloc(w * h * channels);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * channels;
      px[i] = (x * 7) & 255;
      px[i + 1] = (y * 11) & 255;
      px[i + 2] = (x * y) & 255;
      if (channels === 4) px[i + 3] = x < 5 ? 0 : (x * 255) / (w - 1);
    }
  }
  return px;
}
const raw = (channels: 3 | 4) => sharp(card(channels), { raw: { width: 37, height: 23, channels } });

/** sharp's (libvips/libspng) RGBA pixels of the same file: the reference. */
async function reference(png: Buffer): Promise<Buffer> {
  return sharp(png).ensureAlpha().toColourspace("srgb").raw({ depth: "uchar" }).toBuffer();
}

const CASES: [string, () => Promise<Buffer>][] = [
  ["RGB 8-bit", () => raw(3).png().toBuffer()],
  ["RGBA 8-bit", () => raw(4).png().toBuffer()],
  ["RGBA 8-bit, Adam7 interlaced", () => raw(4).png({ progressive: true }).toBuffer()],
  ["gray 8-bit", () => raw(3).toColourspace("b-w").png().toBuffer()],
  ["gray 16-bit", () => raw(3).toColourspace("grey16").png().toBuffer()],
  ["RGB 16-bit", () => raw(3).toColourspace("rgb16").png().toBuffer()],
  ["RGBA 16-bit, interlaced", () => raw(4).toColourspace("rgb16").png({ progressive: true }).toBuffer()],
  ["palette 8-bit with tRNS", () => raw(4).png({ palette: true, dither: 0 }).toBuffer()],
  ["palette 4-bit", () => raw(3).png({ palette: true, colours: 16, dither: 0 }).toBuffer()],
  ["palette 2-bit", () => raw(3).png({ palette: true, colours: 4, dither: 0 }).toBuffer()],
  ["palette 1-bit, interlaced", () => raw(3).png({ palette: true, colours: 2, dither: 0, progressive: true }).toBuffer()],
];

describe("decodePng", () => {
  for (const [name, make] of CASES) {
    it(`decodes ${name} as libspng does (within 1 level: 16-bit rounding)`, async () => {
      const png = await make();
      const decoded = await decodePng(new Uint8Array(png));
      const expected = await reference(png);
      expect([decoded.width, decoded.height]).toEqual([37, 23]);
      let worst = 0;
      for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(decoded.data[i]! - expected[i]!));
      expect(worst).toBeLessThanOrEqual(1);
    });
  }

  it("refuses a PNG whose chunks are whole but whose compressed data is not (its CRC recomputed)", async () => {
    const png = new Uint8Array(await raw(3).png().toBuffer());
    const view = new DataView(png.buffer);
    let at = 8;
    while (String.fromCharCode(...png.subarray(at + 4, at + 8)) !== "IDAT") at += 12 + view.getUint32(at);
    const length = view.getUint32(at);
    for (let i = 0; i < 8; i++) png[at + 10 + i] = 0xff; // inside the deflate stream
    view.setUint32(at + 8 + length, crc32(png.subarray(at + 4, at + 8 + length)));
    await expect(decodePng(png)).rejects.toThrow(ImageDecodeError);
  });

  it("keeps decoding after thousands of refused files (the WASM codec it replaced stopped after ~740)", async () => {
    const good = new Uint8Array(await raw(3).png().toBuffer());
    const bad = good.slice(0, 60);
    for (let i = 0; i < 2000; i++) await expect(decodePng(bad)).rejects.toThrow(ImageDecodeError);
    expect((await decodePng(good)).width).toBe(37);
  });
});
