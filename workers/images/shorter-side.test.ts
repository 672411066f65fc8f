/**
 * The Worker's ImageNet preprocessing against torchvision's own transforms (Resize(256),
 * CenterCrop(224), ToTensor, Normalize) on PIL, on the same PNG pixels: photos of several shapes,
 * smaller and larger than 256, odd and even margins.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { PYTHON } from "../../test/support/paths";
import { toModelInput, type InputSpec } from "./preprocess";
import { shorterSideSize } from "./shorter-side";

const IMAGENET: InputSpec = { channels: 3, width: 224, height: 224, scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], resize: "shorter-side", shorterSide: 256 };

const TORCHVISION = `
import sys, numpy as np
from PIL import Image
import torchvision.transforms as T
t = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
for path in sys.argv[1:]:
    sys.stdout.buffer.write(t(Image.open(path).convert("RGB")).numpy().astype("<f4").tobytes())
`;

/** A smooth photo-like gradient with noise, so that every filter tap matters. */
async function photo(width: number, height: number, seed: number): Promise<Buffer> {
  const data = Buffer.alloc(width * height * 3);
  let state = seed;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      state = (state * 1103515245 + 12345) & 0x7fffffff;
      const noise = (state >> 16) % 64;
      const i = (y * width + x) * 3;
      data[i] = (x * 255) / width * 0.7 + noise;
      data[i + 1] = (y * 255) / height * 0.7 + noise;
      data[i + 2] = ((x + y) % 97) * 2 + noise / 2;
    }
  }
  return sharp(data, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

describe("resize 'shorter-side' (Resize(256) + CenterCrop(224))", () => {
  it("sizes the shorter side as torchvision does, truncating the longer", () => {
    expect(shorterSideSize(640, 480, 256)).toEqual({ width: 341, height: 256 });
    expect(shorterSideSize(333, 500, 256)).toEqual({ width: 256, height: 384 });
    expect(shorterSideSize(256, 256, 256)).toEqual({ width: 256, height: 256 });
  });

  it("gives torchvision's tensor on PIL for the same pixels, to float rounding", async () => {
    const sizes = [[640, 480], [333, 500], [257, 1023], [225, 300], [1200, 799], [256, 256]] as const;
    const dir = mkdtempSync(join(tmpdir(), "cnn-edge-resize-"));
    const paths = await Promise.all(sizes.map(async ([w, h], i) => {
      const path = join(dir, `photo-${w}x${h}.png`);
      writeFileSync(path, await photo(w, h, i + 1));
      return path;
    }));
    const out = execFileSync(PYTHON, ["-c", TORCHVISION, ...paths], { maxBuffer: 1 << 28 });
    const reference = new Float32Array(out.buffer, out.byteOffset, out.byteLength / 4);
    const size = 3 * 224 * 224;
    expect(reference.length).toBe(sizes.length * size);
    for (const [i, path] of paths.entries()) {
      const { data, info } = await sharp(path).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
      const ours = toModelInput({ width: info.width, height: info.height, data }, IMAGENET);
      let max = 0;
      for (let j = 0; j < size; j++) max = Math.max(max, Math.abs(ours[j]! - reference[i * size + j]!));
      console.log(`${sizes[i]!.join("x")}: max |Worker - torchvision| ${max.toExponential(2)}`);
      // Equal pixel levels: what remains is float32 rounding of (x / 255 - mean) / std.
      expect(max).toBeLessThan(1e-5);
    }
  });
});
