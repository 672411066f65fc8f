import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ImageDecodeError } from "../problems/problems";
import { checkPngChunks, crc32 } from "./png-chunks";

const png = new Uint8Array(readFileSync(new URL("../../test/fixtures/mnist-test-0-label-7.png", import.meta.url)));

/** Offsets of the PNG's chunks, by type. */
function chunks(bytes: Uint8Array): { type: string; at: number; length: number }[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const found = [];
  for (let at = 8; at + 8 <= bytes.length; ) {
    const length = view.getUint32(at);
    found.push({ type: String.fromCharCode(...bytes.subarray(at + 4, at + 8)), at, length });
    at += 12 + length;
  }
  return found;
}

describe("checkPngChunks", () => {
  it("computes PNG's CRC-32", () => {
    expect(crc32(new TextEncoder().encode("IEND"))).toBe(0xae426082);
  });

  it("accepts a whole PNG", () => {
    expect(() => checkPngChunks(png)).not.toThrow();
  });

  it("refuses a PNG whose IDAT CRC is wrong and whose tail (IEND) is cut", () => {
    const idat = chunks(png).find((c) => c.type === "IDAT")!;
    const damaged = png.slice(0, idat.at + 12 + idat.length);
    damaged[idat.at + 8 + idat.length] = damaged[idat.at + 8 + idat.length]! ^ 0xff;
    expect(() => checkPngChunks(damaged)).toThrow(ImageDecodeError);
    expect(() => checkPngChunks(damaged)).toThrow(/IDAT chunk at byte \d+ fails its CRC check/);
  });

  it("refuses a PNG cut at any chunk boundary before IEND", () => {
    const boundaries = chunks(png).map((c) => c.at).slice(1);
    expect(boundaries.length).toBeGreaterThan(1);
    for (const at of boundaries) expect(() => checkPngChunks(png.slice(0, at)), `cut at ${at}`).toThrow(/truncated/);
  });

  it("refuses a chunk length that runs past the file, and one byte flipped anywhere after the signature", () => {
    const long = png.slice();
    new DataView(long.buffer).setUint32(8, 0x7fffffff);
    expect(() => checkPngChunks(long)).toThrow(/claims \d+ bytes/);
    for (let i = 8; i < png.length; i++) {
      const flipped = png.slice();
      flipped[i] = flipped[i]! ^ 0x01;
      expect(() => checkPngChunks(flipped), `byte ${i}`).toThrow(ImageDecodeError);
    }
  });
});
