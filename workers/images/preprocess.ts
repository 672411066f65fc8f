/**
 * Turn decoded pixels into a model's input tensor exactly as the training scripts do:
 * channel conversion, resize to the model's input size, scale to [0, 1], standardise.
 * Pure functions over typed arrays, so they run (and are tested) anywhere.
 */
import { resizeShorterSideAndCrop } from "./shorter-side";

/** Decoded image: 8-bit RGBA, row-major. */
export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8Array | Uint8ClampedArray;
}

/** Planar float image: `channels` planes of width x height, values on a 0..255 scale. */
export interface PlanarImage {
  width: number;
  height: number;
  channels: number;
  data: Float32Array;
}

/** What a model's manifest says about its input. */
export interface InputSpec {
  channels: 1 | 3;
  width: number;
  height: number;
  scale: number;
  mean: readonly number[];
  std: readonly number[];
  /**
   * How an image of another shape becomes width x height: "stretch" resizes it whole (aspect
   * ratio not kept; right for MNIST-style inputs that already fill the frame), "center-crop"
   * crops the largest centred region of the model's aspect ratio first (photos), "shorter-side"
   * resizes the shorter side to `shorterSide` and crops the centre (torchvision's ImageNet
   * transforms, Resize(256) + CenterCrop(224): shorter-side.ts).
   */
  resize: "stretch" | "center-crop" | "shorter-side";
  /** The shorter side's length before the centre crop, for resize "shorter-side". */
  shorterSide?: number;
}

// ITU-R BT.601 luma, the weights PIL's convert("L") and torchvision's Grayscale use.
const LUMA = [0.299, 0.587, 0.114] as const;

/**
 * RGBA to planar grayscale (1 channel) or RGB (3 channels). Transparent pixels are composited
 * over black, since alpha is not a channel any model here was trained with.
 *
 * @example
 * toPlanar({ width: 1, height: 1, data: new Uint8Array([255, 0, 0, 255]) }, 1).data; // [76.245]
 */
export function toPlanar(image: RgbaImage, channels: 1 | 3): PlanarImage {
  const pixels = image.width * image.height;
  const out = new Float32Array(pixels * channels);
  const src = image.data;
  for (let i = 0; i < pixels; i++) {
    const alpha = src[i * 4 + 3]! / 255;
    const r = src[i * 4]! * alpha;
    const g = src[i * 4 + 1]! * alpha;
    const b = src[i * 4 + 2]! * alpha;
    if (channels === 1) {
      out[i] = LUMA[0] * r + LUMA[1] * g + LUMA[2] * b;
    } else {
      out[i] = r;
      out[pixels + i] = g;
      out[2 * pixels + i] = b;
    }
  }
  return { width: image.width, height: image.height, channels, data: out };
}

/**
 * Source taps and weights for one axis. Downscaling averages every source pixel the output
 * pixel covers, weighted by the fraction covered (a box filter, so no source pixel is skipped);
 * upscaling interpolates linearly between the two nearest source centres (half-pixel aligned).
 */
function axisWeights(src: number, dst: number): { start: Int32Array; taps: Float32Array[] } {
  const start = new Int32Array(dst);
  const taps: Float32Array[] = [];
  const ratio = src / dst;
  for (let o = 0; o < dst; o++) {
    if (ratio > 1) {
      const lo = o * ratio;
      const hi = lo + ratio;
      const first = Math.floor(lo);
      const last = Math.min(Math.ceil(hi), src) - 1;
      const w = new Float32Array(last - first + 1);
      for (let s = first; s <= last; s++) w[s - first] = (Math.min(hi, s + 1) - Math.max(lo, s)) / ratio;
      start[o] = first;
      taps.push(w);
    } else {
      const centre = Math.min(Math.max((o + 0.5) * ratio - 0.5, 0), src - 1);
      const first = Math.min(Math.floor(centre), Math.max(src - 2, 0));
      const frac = centre - first;
      start[o] = first;
      taps.push(src === 1 ? new Float32Array([1]) : new Float32Array([1 - frac, frac]));
    }
  }
  return { start, taps };
}

/**
 * Resize each plane to width x height (separable: rows first, then columns).
 *
 * @example
 * resize(planar, 28, 28); // any size in, 28x28 out
 */
export function resize(image: PlanarImage, width: number, height: number): PlanarImage {
  if (image.width === width && image.height === height) return image;
  const xs = axisWeights(image.width, width);
  const ys = axisWeights(image.height, height);
  const srcPlane = image.width * image.height;
  const rows = new Float32Array(image.height * width);
  const out = new Float32Array(width * height * image.channels);
  for (let c = 0; c < image.channels; c++) {
    const plane = c * srcPlane;
    for (let y = 0; y < image.height; y++) {
      for (let x = 0; x < width; x++) {
        const w = xs.taps[x]!;
        const base = plane + y * image.width + xs.start[x]!;
        let sum = 0;
        for (let k = 0; k < w.length; k++) sum += w[k]! * image.data[base + k]!;
        rows[y * width + x] = sum;
      }
    }
    for (let y = 0; y < height; y++) {
      const w = ys.taps[y]!;
      const first = ys.start[y]!;
      for (let x = 0; x < width; x++) {
        let sum = 0;
        for (let k = 0; k < w.length; k++) sum += w[k]! * rows[(first + k) * width + x]!;
        out[c * width * height + y * width + x] = sum;
      }
    }
  }
  return { width, height, channels: image.channels, data: out };
}

/**
 * Scale and standardise in place of a copy: out = (value * scale - mean[c]) / std[c].
 *
 * @example
 * normalise(planar, { scale: 1 / 255, mean: [0.1307], std: [0.3081] });
 */
export function normalise(image: PlanarImage, spec: Pick<InputSpec, "scale" | "mean" | "std">): Float32Array {
  const plane = image.width * image.height;
  const out = new Float32Array(image.data.length);
  for (let c = 0; c < image.channels; c++) {
    const scale = Math.fround(spec.scale);
    const mean = Math.fround(spec.mean[c]!);
    const std = Math.fround(spec.std[c]!);
    for (let i = c * plane; i < (c + 1) * plane; i++) out[i] = (Math.fround(image.data[i]! * scale) - mean) / std;
  }
  return out;
}

/**
 * The largest centred region of `image` with the aspect ratio width:height.
 *
 * @example
 * centerCrop(planar640x480, 1, 1); // the middle 480x480
 */
export function centerCrop(image: PlanarImage, width: number, height: number): PlanarImage {
  const scale = Math.min(image.width / width, image.height / height);
  const cropWidth = Math.max(1, Math.round(width * scale));
  const cropHeight = Math.max(1, Math.round(height * scale));
  if (cropWidth === image.width && cropHeight === image.height) return image;
  const left = Math.floor((image.width - cropWidth) / 2);
  const top = Math.floor((image.height - cropHeight) / 2);
  const out = new Float32Array(cropWidth * cropHeight * image.channels);
  for (let c = 0; c < image.channels; c++) {
    for (let y = 0; y < cropHeight; y++) {
      const from = c * image.width * image.height + (top + y) * image.width + left;
      out.set(image.data.subarray(from, from + cropWidth), c * cropWidth * cropHeight + y * cropWidth);
    }
  }
  return { width: cropWidth, height: cropHeight, channels: image.channels, data: out };
}

/**
 * Decoded image to one CHW float tensor for a model with input `spec`.
 *
 * @example
 * const chw = toModelInput(await decodeImage(bytes, header), manifest.input);
 */
export function toModelInput(image: RgbaImage, spec: InputSpec): Float32Array {
  let planar = toPlanar(image, spec.channels);
  if (spec.resize === "shorter-side") return normalise(resizeShorterSideAndCrop(planar, spec.shorterSide ?? spec.height, spec.width, spec.height), spec);
  if (spec.resize === "center-crop") planar = centerCrop(planar, spec.width, spec.height);
  return normalise(resize(planar, spec.width, spec.height), spec);
}
