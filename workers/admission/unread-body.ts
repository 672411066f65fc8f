/**
 * What admission takes an unread body for: the bytes it will hold once read, and the format of
 * the image it is, as far as its headers say.
 */
import { mediaType } from "../classify/request";
import { IMAGE_MEDIA_TYPES, type ImageFormat } from "../images/probe";

/**
 * What a body will hold once read: its Content-Length, or the route's limit when it declares
 * none (a chunked upload may be that large; one declared larger is refused with 413 unread).
 *
 * @example
 * bodyBytesToHold(new Headers({ "content-length": "3000" }), 32 * 2 ** 20); // { bytes: 3000, declared: true }
 */
export function bodyBytesToHold(headers: Headers, limit: number): { bytes: number; declared: boolean } {
  const length = Number(headers.get("content-length") ?? NaN);
  return Number.isInteger(length) && length >= 0 ? { bytes: Math.min(length, limit), declared: true } : { bytes: limit, declared: false };
}

/**
 * The image format a body's Content-Type names, or undefined (multipart, anything else).
 *
 * @example
 * bodyImageFormat(new Headers({ "content-type": "image/png" })); // "png"
 */
export function bodyImageFormat(headers: Headers): ImageFormat | undefined {
  const type = mediaType(headers.get("content-type"));
  return (Object.keys(IMAGE_MEDIA_TYPES) as ImageFormat[]).find((format) => IMAGE_MEDIA_TYPES[format] === type);
}
