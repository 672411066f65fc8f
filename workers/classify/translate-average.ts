/**
 * Translate averaging, a serving option beside flip averaging, off by default: airbench94's full
 * test-time augmentation. Each image runs as six views: itself and its mirror, and the image
 * shifted one pixel up-left and one pixel down-right (reflect-padded), each with its mirror; the
 * answer is half the mean of the first two and half the mean of the four shifted ones. It buys
 * a few tenths of accuracy for three times the model time of flip averaging (the model table).
 * Like the mirror pass, the views' outputs are averaged, embedding and logits alike, so a
 * classifier's linear head over the mean embedding gives the mean logits.
 */
import type { ServedModel } from "../models/manifest";
import { InvalidParameterError } from "../problems/problems";

/** Views of each image a translate-averaged batch runs: image, mirror, and two shifts with their mirrors. */
export const TRANSLATE_VIEWS = 6;

/**
 * Whether a request runs the translated views: only when it asks (the option is off by default),
 * and only with flip averaging, whose mirrors it extends, on a graph that runs one view per input.
 *
 * @throws InvalidParameterError when the request asks for it where it cannot run
 * @example
 * translateAverageFor(getModel("resnet-edge"), true, true); // true
 */
export function translateAverageFor(model: ServedModel, requested: boolean | undefined, flipAverage: boolean): boolean {
  if (!requested) return false;
  const { manifest } = model;
  if (manifest.architecture.flipAverage) {
    throw new InvalidParameterError("translate_average", `${manifest.id} v${manifest.version} averages the mirror image inside its graph, so it cannot run the shifted views on their own.`);
  }
  if (!flipAverage) {
    throw new InvalidParameterError("translate_average", `translate_average extends flip averaging${manifest.input.mirrorable ? "; it cannot run with flip_average=false" : `, and ${manifest.id} was not trained on mirrored images`}.`);
  }
  return true;
}

/** Index `i` (at most one pixel outside) reflected into 0..size-1, as torch's 'reflect' padding does: -1 reads 1, size reads size - 2. */
const reflect = (i: number, size: number) => (i < 0 ? -i : i >= size ? 2 * size - 2 - i : i);

/**
 * The batch of `count` images (NCHW) as six views of each, view by view: the images, their
 * mirrors, the images shifted one pixel towards the bottom-right (content from one up and one
 * left), their mirrors, the images shifted towards the top-left, their mirrors.
 *
 * @example
 * withTranslations(new Float32Array([1, 2, 3]), 1, { channels: 1, height: 1, width: 3 }).length; // 18
 */
export function withTranslations(input: Float32Array, count: number, shape: { channels: number; height: number; width: number }): Float32Array {
  const { channels, height, width } = shape;
  const plane = height * width;
  const block = count * channels * plane;
  const out = new Float32Array(TRANSLATE_VIEWS * block);
  const views: [number, boolean][] = [[0, false], [0, true], [-1, false], [-1, true], [1, false], [1, true]];
  for (const [v, [shift, mirrored]] of views.entries()) {
    for (let p = 0; p < count * channels; p++) {
      const from = p * plane;
      const to = v * block + p * plane;
      for (let y = 0; y < height; y++) {
        const sy = reflect(y + shift, height);
        for (let x = 0; x < width; x++) {
          const sx = reflect(x + shift, width);
          out[to + y * width + (mirrored ? width - 1 - x : x)] = input[from + sy * width + sx]!;
        }
      }
    }
  }
  return out;
}

/**
 * The answer of each image from the outputs of a withTranslations batch (`count` images of
 * `size` values): a quarter each for the image and its mirror, an eighth each for the four
 * shifted views, as airbench94 weighs them.
 *
 * @example
 * averageTranslations(new Float32Array([4, 4, 0, 0, 0, 0]), 1, 1); // [2]
 */
export function averageTranslations(output: Float32Array, count: number, size: number): Float32Array {
  const block = count * size;
  const weights = [0.25, 0.25, 0.125, 0.125, 0.125, 0.125];
  const out = new Float32Array(block);
  for (let i = 0; i < block; i++) {
    let sum = 0;
    for (const [v, weight] of weights.entries()) sum += weight * output[v * block + i]!;
    out[i] = sum;
  }
  return out;
}
