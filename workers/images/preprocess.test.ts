import { describe, expect, it } from "vitest";
import { centerCrop, normalise, resize, toModelInput, toPlanar, type PlanarImage, type RgbaImage } from "./preprocess";

function rgba(width: number, height: number, pixel: (x: number, y: number) => [number, number, number, number]): RgbaImage {
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set(pixel(x, y), (y * width + x) * 4);
  return { width, height, data };
}

function plane(width: number, height: number, value: (x: number, y: number) => number): PlanarImage {
  const data = new Float32Array(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data[y * width + x] = value(x, y);
  return { width, height, channels: 1, data };
}

describe("toPlanar", () => {
  it("converts to grayscale with BT.601 luma weights", () => {
    const image = rgba(3, 1, (x) => [
      [255, 0, 0, 255],
      [0, 255, 0, 255],
      [0, 0, 255, 255],
    ][x] as [number, number, number, number]);
    const gray = toPlanar(image, 1);
    expect(gray.channels).toBe(1);
    expect(gray.data[0]).toBeCloseTo(0.299 * 255, 3);
    expect(gray.data[1]).toBeCloseTo(0.587 * 255, 3);
    expect(gray.data[2]).toBeCloseTo(0.114 * 255, 3);
  });

  it("keeps gray pixels exactly", () => {
    const image = rgba(256, 1, (x) => [x, x, x, 255]);
    expect(Array.from(toPlanar(image, 1).data)).toEqual(Array.from({ length: 256 }, (_, x) => x));
  });

  it("splits RGB into planes (CHW)", () => {
    const image = rgba(2, 1, (x) => (x === 0 ? [10, 20, 30, 255] : [40, 50, 60, 255]));
    expect(Array.from(toPlanar(image, 3).data)).toEqual([10, 40, 20, 50, 30, 60]);
  });

  it("composites transparent pixels over black", () => {
    const image = rgba(2, 1, (x) => (x === 0 ? [200, 200, 200, 0] : [200, 100, 50, 128]));
    const rgb = toPlanar(image, 3).data;
    expect(rgb[0]).toBe(0);
    expect(rgb[1]).toBeCloseTo((200 * 128) / 255, 3);
    expect(rgb[3]).toBeCloseTo((100 * 128) / 255, 3);
  });
});

describe("resize", () => {
  it("returns the image itself at the same size", () => {
    const image = plane(28, 28, (x, y) => x * y);
    expect(resize(image, 28, 28)).toBe(image);
  });

  it("averages whole blocks when downscaling by an integer factor", () => {
    const image = plane(4, 4, (x, y) => (x < 2 ? 0 : 100) + (y < 2 ? 0 : 10));
    expect(Array.from(resize(image, 2, 2).data)).toEqual([0, 100, 10, 110]);
  });

  it("weights partly covered pixels when downscaling by a fraction", () => {
    // 3 -> 2: output 0 covers source 0 fully and half of source 1.
    const out = resize(plane(3, 1, (x) => [0, 30, 90][x]!), 2, 1).data;
    expect(out[0]).toBeCloseTo((0 + 0.5 * 30) / 1.5, 4);
    expect(out[1]).toBeCloseTo((0.5 * 30 + 90) / 1.5, 4);
  });

  it("preserves the mean brightness when downscaling", () => {
    const image = plane(280, 280, (x, y) => (x * 7 + y * 13) % 256);
    const mean = (d: Float32Array) => d.reduce((s, v) => s + v, 0) / d.length;
    expect(mean(resize(image, 28, 28).data)).toBeCloseTo(mean(image.data), 1);
  });

  it("interpolates linearly when upscaling, and keeps constants constant", () => {
    const up = resize(plane(2, 1, (x) => (x === 0 ? 0 : 100)), 4, 1).data;
    expect(Array.from(up)).toEqual([0, 25, 75, 100]);
    const flat = resize(plane(3, 5, () => 42), 17, 9).data;
    for (const v of flat) expect(v).toBeCloseTo(42, 4);
  });

  it("resizes every channel", () => {
    const rgb: PlanarImage = { width: 2, height: 2, channels: 3, data: new Float32Array([1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]) };
    expect(Array.from(resize(rgb, 1, 1).data)).toEqual([1, 2, 3]);
  });
});

describe("centerCrop", () => {
  it("keeps the largest centred region of the requested aspect ratio", () => {
    const tall = plane(3, 7, (x, y) => y * 10 + x);
    const square = centerCrop(tall, 32, 32);
    expect([square.width, square.height]).toEqual([3, 3]);
    expect(Array.from(square.data)).toEqual([20, 21, 22, 30, 31, 32, 40, 41, 42]);
  });

  it("returns the image itself when it already has that aspect ratio", () => {
    const image = plane(64, 64, () => 1);
    expect(centerCrop(image, 32, 32)).toBe(image);
  });
});

describe("normalise", () => {
  it("scales to [0, 1] and standardises each channel with its own mean and std", () => {
    const rgb: PlanarImage = { width: 1, height: 1, channels: 3, data: new Float32Array([0, 127.5, 255]) };
    const out = normalise(rgb, { scale: 1 / 255, mean: [0.5, 0.5, 0.25], std: [0.5, 0.25, 0.5] });
    expect(out[0]).toBeCloseTo(-1, 6);
    expect(out[1]).toBeCloseTo(0, 6);
    expect(out[2]).toBeCloseTo(1.5, 6);
  });
});

describe("toModelInput", () => {
  it("turns an RGBA image into the model's normalised CHW tensor", () => {
    const spec = { channels: 1 as const, width: 28, height: 28, scale: 1 / 255, mean: [0.1307], std: [0.3081], resize: "stretch" as const };
    const input = toModelInput(rgba(56, 56, () => [255, 255, 255, 255]), spec);
    expect(input).toHaveLength(28 * 28);
    for (const v of input) expect(v).toBeCloseTo((1 - 0.1307) / 0.3081, 5);
  });

  it("center-crops a wide photo to the model's aspect ratio before resizing", () => {
    // 6x2: black on the outer 2 columns each side, white in the middle 2 columns.
    const photo = rgba(6, 2, (x) => (x >= 2 && x < 4 ? [255, 255, 255, 255] : [0, 0, 0, 255]));
    const spec = { channels: 3 as const, width: 1, height: 1, scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1] };
    expect(Array.from(toModelInput(photo, { ...spec, resize: "center-crop" }))).toEqual([1, 1, 1]);
    const stretched = toModelInput(photo, { ...spec, resize: "stretch" });
    expect(stretched[0]).toBeCloseTo(1 / 3, 6);
  });
});
