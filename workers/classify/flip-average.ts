/**
 * Flip averaging, a serving option: a model trained on mirrored images (its manifest's
 * `input.mirrorable`) can answer with the mean of its outputs for an image and for the image's
 * mirror, one point or so of accuracy for a second pass of the network. Each request chooses
 * (?flip_average=), or the model's default does (config.json `flipAverage`, else on). The
 * mirrors run in the same batch as the images, and both outputs are averaged: since the head is
 * linear, the mean logits are the head applied to the mean embedding, which is what a
 * classifier's head is taught from.
 */
import type { ServedModel } from "../models/manifest";
import { InvalidParameterError } from "../problems/problems";

/**
 * Whether a request for this model runs the mirror pass: its own choice, else the model's
 * default. A graph exported with the average inside it (`architecture.flipAverage`, the first
 * CIFAR-10 exports) always does.
 *
 * @throws InvalidParameterError when the request asks for what the model cannot do
 * @example
 * flipAverageFor(getModel("resnet-edge"), undefined); // true: the model's default
 */
export function flipAverageFor(model: ServedModel, requested: boolean | undefined): boolean {
  const { manifest } = model;
  if (manifest.architecture.flipAverage) {
    if (requested === false) {
      throw new InvalidParameterError("flip_average", `${manifest.id} v${manifest.version} averages the mirror image inside its graph, so it always runs both passes.`);
    }
    return true;
  }
  if (!manifest.input.mirrorable) {
    if (requested) throw new InvalidParameterError("flip_average", `${manifest.id} was not trained on mirrored images, so their average is no better answer.`);
    return false;
  }
  return requested ?? model.config?.flipAverage ?? true;
}

/**
 * The batch followed by the mirror image of each of its `count` images (NCHW, mirrored along the
 * width).
 *
 * @example
 * withMirrors(new Float32Array([1, 2, 3]), 1, { channels: 1, height: 1, width: 3 }); // [1, 2, 3, 3, 2, 1]
 */
export function withMirrors(input: Float32Array, count: number, shape: { channels: number; height: number; width: number }): Float32Array {
  const { channels, height, width } = shape;
  const rows = count * channels * height;
  const out = new Float32Array(2 * rows * width);
  out.set(input.subarray(0, rows * width));
  for (let row = 0; row < rows; row++) {
    const from = row * width;
    const to = (rows + row) * width;
    for (let x = 0; x < width; x++) out[to + x] = input[from + width - 1 - x]!;
  }
  return out;
}

/**
 * The mean of each image's output and its mirror's, from the outputs of a withMirrors batch:
 * `count` rows of `size` values.
 *
 * @example
 * averageMirrors(new Float32Array([1, 2, 3, 4]), 1, 2); // [2, 3]
 */
export function averageMirrors(output: Float32Array, count: number, size: number): Float32Array {
  const half = count * size;
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) out[i] = (output[i]! + output[half + i]!) / 2;
  return out;
}
