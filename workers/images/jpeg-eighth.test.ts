import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { CorruptJpegError, JpegNotReducibleError, decodeJpegEighth } from "./jpeg-eighth";

const WIDTH = 301;
const HEIGHT = 203;

/** Smooth colour ramps with a ripple: a photo's low frequencies, with edges that do not fall on blocks. */
function ramps(): Buffer {
  const raw = Buffer.alloc(WIDTH * HEIGHT * 3);
  for (let y = 0; y < HEIGHT; y++) {
    for (let x = 0; x < WIDTH; x++) {
      const i = (y * WIDTH + x) * 3;
      raw[i] = (x * 255) / WIDTH;
      raw[i + 1] = (y * 255) / HEIGHT;
      raw[i + 2] = 128 + 90 * Math.sin((x + 2 * y) / 60);
    }
  }
  return raw;
}

/** Mean and largest absolute difference between the 1/8 image and the full decode averaged over each 8x8 block. */
async function againstFullDecode(jpeg: Buffer): Promise<{ mean: number; max: number }> {
  const small = decodeJpegEighth(new Uint8Array(jpeg));
  expect([small.width, small.height]).toEqual([Math.ceil(WIDTH / 8), Math.ceil(HEIGHT / 8)]);
  const full = await sharp(jpeg).toColourspace("srgb").removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const channels = full.info.channels;
  let sum = 0;
  let max = 0;
  let n = 0;
  for (let by = 0; by < Math.floor(HEIGHT / 8); by++) {
    for (let bx = 0; bx < Math.floor(WIDTH / 8); bx++) {
      for (let c = 0; c < 3; c++) {
        let block = 0;
        for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) block += full.data[((by * 8 + y) * WIDTH + bx * 8 + x) * channels + Math.min(c, channels - 1)]!;
        const diff = Math.abs(block / 64 - small.data[(by * small.width + bx) * 4 + c]!);
        sum += diff;
        max = Math.max(max, diff);
        n++;
      }
      expect(small.data[(by * small.width + bx) * 4 + 3]).toBe(255);
    }
  }
  return { mean: sum / n, max };
}

describe("decodeJpegEighth", () => {
  const image = () => sharp(ramps(), { raw: { width: WIDTH, height: HEIGHT, channels: 3 } });

  it.each([
    ["baseline 4:4:4", { chromaSubsampling: "4:4:4" }],
    ["progressive 4:4:4 with optimised scans", { chromaSubsampling: "4:4:4", progressive: true, optimiseScans: true }],
  ] as const)("gives each block's mean, as a full decode does: %s", async (_, options) => {
    const { mean, max } = await againstFullDecode(await image().jpeg({ quality: 90, ...options }).toBuffer());
    expect(mean).toBeLessThan(1);
    expect(max).toBeLessThan(4);
  });

  it.each([
    ["baseline 4:2:0", {}],
    ["progressive 4:2:0", { progressive: true }],
  ] as const)("interpolates subsampled chroma close to a full decode: %s", async (_, options) => {
    const { mean, max } = await againstFullDecode(await image().jpeg({ quality: 90, ...options }).toBuffer());
    expect(mean).toBeLessThan(2);
    expect(max).toBeLessThan(24);
  });

  it("decodes grayscale to equal R, G and B", async () => {
    const jpeg = await image().grayscale().jpeg({ quality: 90 }).toBuffer();
    const { mean } = await againstFullDecode(jpeg);
    expect(mean).toBeLessThan(1);
    const { data } = decodeJpegEighth(new Uint8Array(jpeg));
    expect(data[40]).toBe(data[41]);
    expect(data[41]).toBe(data[42]);
  });

  it("leaves arithmetic-coded and CMYK files to the full decoder", async () => {
    const baseline = new Uint8Array(await image().jpeg({ quality: 90 }).toBuffer());
    const sof = baseline.findIndex((b, i) => b === 0xff && baseline[i + 1] === 0xc0);
    const arithmetic = baseline.slice();
    arithmetic[sof + 1] = 0xc9;
    expect(() => decodeJpegEighth(arithmetic)).toThrow(JpegNotReducibleError);
    const cmyk = new Uint8Array(await image().toColourspace("cmyk").jpeg({ quality: 90 }).toBuffer());
    expect(() => decodeJpegEighth(cmyk)).toThrow(JpegNotReducibleError);
  });

  it("refuses a file without a frame header or with a scan naming an unknown component", async () => {
    const baseline = new Uint8Array(await image().jpeg({ quality: 90 }).toBuffer());
    expect(() => decodeJpegEighth(new Uint8Array([0xff, 0xd8, 0xff, 0xd9]))).toThrow(CorruptJpegError);
    const sos = baseline.findIndex((b, i) => b === 0xff && baseline[i + 1] === 0xda);
    const broken = baseline.slice();
    broken[sos + 5] = 0x77; // first scan component id
    expect(() => decodeJpegEighth(broken)).toThrow(CorruptJpegError);
  });
});
