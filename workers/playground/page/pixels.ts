/** Decoding an image in the browser into the RGBA the shared preprocessing (workers/images) takes. */
import type { RgbaImage } from "../../images/preprocess";

/**
 * Decode image bytes with the browser's own codecs, pixels as stored: no colour-space
 * conversion and no premultiplied alpha, as the Worker's codecs decode them. PNG and WebP
 * (lossless) then give the Worker's pixels exactly; a JPEG may differ by a level here and there
 * between libjpeg-turbo builds.
 *
 * @example
 * const rgba = await decodeInBrowser(file);
 */
export async function decodeInBrowser(image: Blob): Promise<RgbaImage> {
  const bitmap = await createImageBitmap(image, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const context = canvas.getContext("2d", { willReadFrequently: true })!;
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  const { data, width, height } = context.getImageData(0, 0, canvas.width, canvas.height);
  return { width, height, data };
}
