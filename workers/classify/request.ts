/**
 * Reading the images of a classify request: the body is one image file, or multipart/form-data
 * with one or more `image` parts. Every limit is checked before any pixel is decoded.
 */
import { IMAGE_MEDIA_TYPES, probeImage, type ImageHeader } from "../images/probe";
import {
  ImageTooLargeError,
  IncompleteBodyError,
  InvalidParameterError,
  InvalidRequestError,
  PayloadTooLargeError,
  UnsupportedMediaTypeError,
} from "../problems/problems";
import { CLASSIFY_LIMITS } from "./limits";

export interface UploadedImage {
  /** The part's file name, or "body" for a raw image body. */
  name: string;
  bytes: Uint8Array;
  header: ImageHeader;
}

const ACCEPTED = [...Object.values(IMAGE_MEDIA_TYPES), "multipart/form-data"];

/**
 * The media type of a Content-Type header value, lower-cased, without parameters.
 *
 * @example
 * mediaType("Multipart/Form-Data; boundary=x"); // "multipart/form-data"
 */
export function mediaType(contentType: string | null | undefined): string {
  return (contentType ?? "").split(";")[0]!.trim().toLowerCase();
}

const bodyTooLarge = (limit: number) => new PayloadTooLargeError(`The request body exceeds ${limit} bytes.`, { maxRequestBytes: limit });

/**
 * A body's declared Content-Length (NaN without one), refusing one declared over `limit` from
 * the headers alone (admission runs it before anything else: workers/admission/admit-body.ts).
 *
 * @throws PayloadTooLargeError when the declared length is over the limit
 * @example
 * checkDeclaredLength(new Headers({ "content-length": "3000" }), 1024); // throws 413
 */
export function checkDeclaredLength(headers: Headers, limit: number): number {
  const declared = Number(headers.get("content-length") ?? NaN);
  if (declared > limit) throw bodyTooLarge(limit);
  return declared;
}

/**
 * Read a body up to `limit` bytes; a longer one is refused as soon as it passes the limit,
 * whatever its Content-Length said.
 *
 * @throws PayloadTooLargeError past the limit; IncompleteBodyError when the client stops sending (hangs up) before the end
 * @example
 * const body = await readBodyLimited(request, CLASSIFY_LIMITS.maxRequestBytes);
 */
export async function readBodyLimited(request: Request, limit: number): Promise<Uint8Array<ArrayBuffer>> {
  const declared = checkDeclaredLength(request.headers, limit);
  if (!request.body) return new Uint8Array(0);
  // A declared length within the limit is all the HTTP layer will deliver, so one native read
  // is safe, and it costs a small upload about a tenth of the stream loop below (profiled).
  if (Number.isInteger(declared) && declared >= 0) {
    let body: ArrayBuffer;
    try {
      body = await request.arrayBuffer();
    } catch {
      throw new IncompleteBodyError(undefined, declared);
    }
    if (body.byteLength > limit) throw bodyTooLarge(limit); // a Request made in-process may carry a wrong header
    return new Uint8Array(body);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = request.body.getReader();
  for (;;) {
    let chunk: ReadableStreamReadResult<Uint8Array>;
    try {
      chunk = await reader.read();
    } catch {
      throw new IncompleteBodyError(total, Number.isNaN(declared) ? undefined : declared);
    }
    const { done, value } = chunk;
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel();
      throw bodyTooLarge(limit);
    }
    chunks.push(value);
  }
  const body = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    body.set(chunk, at);
    at += chunk.byteLength;
  }
  return body;
}

/** Buffers that drained bodies are read into, reused: draining makes no garbage (workers/README.md, "Admission control"). */
const drainBuffers: Uint8Array<ArrayBuffer>[] = [];
const DRAIN_BUFFER_BYTES = 64 * 1024;

/**
 * Read and drop what is left of a refused request's body (up to `limit` bytes), so that the
 * client can finish sending before it reads the answer: a server that answers early and hangs
 * up makes HTTP/1.1 clients fail with EPIPE/ECONNRESET instead of showing the 4xx. It reads
 * into reused buffers (a BYOB reader), which measured 2-3 ms of the isolate's thread for a
 * 3.6 MB body where a default reader took 17. A client that sent `Expect: 100-continue` has not
 * sent its body, and never will once it has the answer: nothing to drain.
 *
 * @example
 * app.onError(async (err, c) => { await discardBody(c.req.raw, limit); return problemResponse(err, c); });
 */
export async function discardBody(request: Request, limit: number): Promise<void> {
  // A body declared over the limit is refused unread: waiting for it would be waiting for the attack.
  if (!request.body || request.bodyUsed || Number(request.headers.get("content-length") ?? 0) > limit) return;
  if (/^100-continue$/i.test(request.headers.get("expect") ?? "")) return;
  let buffer = drainBuffers.pop() ?? new Uint8Array(DRAIN_BUFFER_BYTES);
  try {
    const reader = request.body.getReader({ mode: "byob" });
    for (let total = 0; total <= limit; ) {
      const { done, value } = await reader.read(buffer);
      if (value) buffer = new Uint8Array(value.buffer as ArrayBuffer);
      if (done || !value) return;
      total += value.byteLength;
    }
    await reader.cancel();
  } catch {
    // The client went away (or the body cannot be read any more): there is nobody to wait for.
  } finally {
    if (buffer.byteLength === DRAIN_BUFFER_BYTES) drainBuffers.push(buffer);
  }
}

/**
 * Check one encoded image against the byte and pixel limits, from its header alone.
 *
 * @example
 * const image = checkImage("digit.png", bytes); // { name, bytes, header: { format, width, height } }
 */
export function checkImage(name: string, bytes: Uint8Array): UploadedImage {
  const { maxImageBytes, maxImageSide } = CLASSIFY_LIMITS;
  if (bytes.byteLength === 0) throw new InvalidRequestError(`Image '${name}' is empty.`);
  if (bytes.byteLength > maxImageBytes) {
    throw new PayloadTooLargeError(`Image '${name}' is ${bytes.byteLength} bytes; the limit is ${maxImageBytes}.`, { maxImageBytes });
  }
  const header = probeImage(bytes);
  const { width, height } = header;
  const [limitName, maxPixels] = header.format === "jpeg" ? ["maxJpegPixels", CLASSIFY_LIMITS.maxJpegPixels] : ["maxImagePixels", CLASSIFY_LIMITS.maxImagePixels];
  if (width * height > maxPixels || Math.max(width, height) > maxImageSide) {
    throw new ImageTooLargeError(
      `Image '${name}' is ${width}x${height} pixels; the limits are ${maxPixels} pixels and ${maxImageSide} per side.`,
      { [limitName]: maxPixels, maxImageSide },
    );
  }
  return { name, bytes, header };
}

/**
 * Parse a multipart/form-data body.
 *
 * @throws InvalidRequestError when it does not parse
 * @example
 * const form = await parseForm(body, request.headers.get("content-type")!);
 */
export async function parseForm(body: Uint8Array<ArrayBuffer>, contentType: string): Promise<FormData> {
  try {
    return await new Response(body, { headers: { "content-type": contentType } }).formData();
  } catch {
    throw new InvalidRequestError("The multipart/form-data body could not be parsed.");
  }
}

/**
 * Check the file parts named `image` of a form, in order.
 *
 * @example
 * const images = await imageParts(form.getAll("image"));
 */
export async function imageParts(parts: (string | File)[]): Promise<UploadedImage[]> {
  const images: UploadedImage[] = [];
  for (const [i, part] of parts.entries()) {
    if (typeof part === "string") throw new InvalidParameterError("image", `Part ${i} named 'image' is a text field, not a file.`);
    images.push(checkImage(part.name || `image ${i}`, new Uint8Array(await part.arrayBuffer())));
  }
  return images;
}

async function readMultipart(body: Uint8Array<ArrayBuffer>, contentType: string): Promise<UploadedImage[]> {
  const form = await parseForm(body, contentType);
  const parts = form.getAll("image");
  if (parts.length === 0) throw new InvalidRequestError("The form has no 'image' part.");
  if (parts.length > CLASSIFY_LIMITS.maxImagesPerRequest) {
    throw new PayloadTooLargeError(`The form has ${parts.length} images; the limit is ${CLASSIFY_LIMITS.maxImagesPerRequest}.`, {
      maxImagesPerRequest: CLASSIFY_LIMITS.maxImagesPerRequest,
    });
  }
  return imageParts(parts);
}

/**
 * Refuse a classify request whose Content-Type is neither an image nor multipart, from its
 * headers alone (admission runs it before anything else: workers/admission/admit-body.ts).
 *
 * @throws UnsupportedMediaTypeError
 * @example
 * checkImagesMediaType(new Headers({ "content-type": "text/plain" })); // throws 415
 */
export function checkImagesMediaType(headers: Headers): void {
  requireMediaType(headers, ACCEPTED, "Send an image file or multipart/form-data with 'image' parts.");
}

/**
 * A request's media type, when it is one of `accepted`.
 *
 * @throws UnsupportedMediaTypeError naming what is accepted and `howTo` send it
 * @example
 * requireMediaType(request.headers, ["application/json"], "Send JSON."); // "application/json"
 */
export function requireMediaType(headers: Headers, accepted: readonly string[], howTo: string): string {
  const type = mediaType(headers.get("content-type"));
  if (!accepted.includes(type)) {
    const detail = type ? `Content-Type '${type}' is not accepted.` : "The request has no Content-Type.";
    throw new UnsupportedMediaTypeError(`${detail} ${howTo}`, [...accepted]);
  }
  return type;
}

/**
 * The images of a classify request, each probed and checked against the limits.
 *
 * @throws UnsupportedMediaTypeError, PayloadTooLargeError, ImageTooLargeError, InvalidRequestError
 * @example
 * const images = await readImages(c.req.raw);
 */
export async function readImages(request: Request): Promise<UploadedImage[]> {
  checkImagesMediaType(request.headers);
  const contentType = request.headers.get("content-type");
  const isImage = mediaType(contentType) !== "multipart/form-data";
  const body = await readBodyLimited(request, CLASSIFY_LIMITS.maxRequestBytes);
  if (body.byteLength === 0) throw new InvalidRequestError("The request body is empty.");
  if (isImage) return [checkImage("body", body)];
  return readMultipart(body, contentType!);
}
