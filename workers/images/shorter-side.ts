/**
 * ImageNet-style preprocessing as torchvision does it on a PIL image: `Resize(shorter)` (the
 * shorter side to `shorter` pixels, aspect kept, PIL's antialiased bilinear filter) then
 * `CenterCrop(height, width)`. The resize is PIL's arithmetic to the bit (Resample.c: triangle
 * filter widened by the scale, 22-bit fixed-point coefficients, each pass rounded to 8 bits), so
 * that a model trained behind those transforms sees in the Worker the pixels it saw in training.
 */
import type { PlanarImage } from "./preprocess";

const PRECISION_BITS = 22; // Pillow's, for 8-bit images
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);

/** Per output pixel: the first source pixel and the fixed-point weights of the ones it reads. */
function pilBilinearCoefficients(inSize: number, outSize: number): { start: Int32Array; weights: Float64Array[] } {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale; // the bilinear (triangle) filter's support is 1, widened when shrinking
  const start = new Int32Array(outSize);
  const weights: Float64Array[] = [];
  for (let out = 0; out < outSize; out++) {
    const centre = (out + 0.5) * scale;
    const first = Math.max(Math.trunc(centre - support + 0.5), 0);
    const last = Math.min(Math.trunc(centre + support + 0.5), inSize);
    const k = new Float64Array(last - first);
    let total = 0;
    for (let x = 0; x < k.length; x++) {
      const distance = Math.abs((x + first - centre + 0.5) / filterScale);
      k[x] = distance < 1 ? 1 - distance : 0;
      total += k[x]!;
    }
    for (let x = 0; x < k.length; x++) {
      const normalised = total === 0 ? k[x]! : k[x]! / total;
      k[x] = Math.trunc(normalised * ONE + (normalised < 0 ? -0.5 : 0.5));
    }
    start[out] = first;
    weights.push(k);
  }
  return { start, weights };
}

const clip8 = (fixedPoint: number) => Math.min(255, Math.max(0, Math.floor(fixedPoint / ONE)));

/**
 * Resize each plane (values 0..255) to width x height as PIL's `Image.resize(..., BILINEAR)`:
 * rows first, then columns, each pass rounded to whole 8-bit levels.
 *
 * @example
 * pilResize(planar, 256, 341); // what torchvision's Resize(256) makes of a 480x640 photo
 */
export function pilResize(image: PlanarImage, width: number, height: number): PlanarImage {
  if (image.width === width && image.height === height) return image;
  const xs = pilBilinearCoefficients(image.width, width);
  const ys = pilBilinearCoefficients(image.height, height);
  const rows = new Float32Array(image.height * width);
  const out = new Float32Array(width * height * image.channels);
  for (let c = 0; c < image.channels; c++) {
    const plane = c * image.width * image.height;
    for (let y = 0; y < image.height; y++) {
      for (let x = 0; x < width; x++) {
        const k = xs.weights[x]!;
        const base = plane + y * image.width + xs.start[x]!;
        let sum = HALF;
        for (let i = 0; i < k.length; i++) sum += k[i]! * image.data[base + i]!;
        rows[y * width + x] = clip8(sum);
      }
    }
    for (let y = 0; y < height; y++) {
      const k = ys.weights[y]!;
      const first = ys.start[y]!;
      for (let x = 0; x < width; x++) {
        let sum = HALF;
        for (let i = 0; i < k.length; i++) sum += k[i]! * rows[(first + i) * width + x]!;
        out[c * width * height + y * width + x] = clip8(sum);
      }
    }
  }
  return { width, height, channels: image.channels, data: out };
}

/** Python's round(): halves go to the even neighbour (torchvision's CenterCrop offsets use it). */
const roundHalfEven = (value: number) => {
  const floor = Math.floor(value);
  const diff = value - floor;
  if (diff !== 0.5) return Math.round(value);
  return floor % 2 === 0 ? floor : floor + 1;
};

/**
 * The size torchvision's `Resize(shorter)` gives an image: the shorter side `shorter`, the longer
 * side scaled and truncated.
 *
 * @example
 * shorterSideSize(640, 480, 256); // { width: 341, height: 256 }
 */
export function shorterSideSize(width: number, height: number, shorter: number): { width: number; height: number } {
  if (width <= height) return { width: shorter, height: Math.trunc((shorter * height) / width) };
  return { width: Math.trunc((shorter * width) / height), height: shorter };
}

/**
 * torchvision's `CenterCrop(height, width)` of an image at least that large: the offsets are
 * round((size - crop) / 2), halves to even.
 *
 * @example
 * cropCentre(resized, 224, 224);
 */
export function cropCentre(image: PlanarImage, width: number, height: number): PlanarImage {
  const left = roundHalfEven((image.width - width) / 2);
  const top = roundHalfEven((image.height - height) / 2);
  const out = new Float32Array(width * height * image.channels);
  for (let c = 0; c < image.channels; c++) {
    for (let y = 0; y < height; y++) {
      const from = c * image.width * image.height + (top + y) * image.width + left;
      out.set(image.data.subarray(from, from + width), c * width * height + y * width);
    }
  }
  return { width, height, channels: image.channels, data: out };
}

/**
 * `Resize(shorter)` then `CenterCrop(height, width)`. An image whose shorter side is under the
 * crop after resizing (a `shorter` below the crop size) is cropped to what it has and resized
 * the rest of the way, rather than padded with black as torchvision would.
 *
 * @example
 * const planar224 = resizeShorterSideAndCrop(planar, 256, 224, 224);
 */
export function resizeShorterSideAndCrop(image: PlanarImage, shorter: number, width: number, height: number): PlanarImage {
  const size = shorterSideSize(image.width, image.height, shorter);
  const resized = pilResize(image, size.width, size.height);
  const cropped = cropCentre(resized, Math.min(width, resized.width), Math.min(height, resized.height));
  return pilResize(cropped, width, height);
}
