/**
 * Reading the labelled examples of a fine-tune call, in either of two forms:
 * - multipart/form-data: `image` file parts and `label` text fields, the i-th label for the
 *   i-th image (or one label for all of them), and optionally a `classifier` field;
 * - application/json: {"classifier"?: id, "examples": [{"image": base64, "label": string}, ...]}.
 * Everything is checked before anything is decoded or stored.
 */
import { CLASSIFY_LIMITS } from "../classify/limits";
import { checkImage, imageParts, parseForm, readBodyLimited, requireMediaType, type UploadedImage } from "../classify/request";
import { InvalidParameterError, InvalidRequestError, PayloadTooLargeError } from "../problems/problems";
import { FINETUNE_LIMITS } from "./limits";

export interface LabelledImages {
  /** The classifier the body names, if it names one. */
  classifier?: string;
  images: UploadedImage[];
  labels: string[];
}

const ACCEPTED = ["multipart/form-data", "application/json"];

/**
 * A label, trimmed; refused when it is not a non-empty string within the length limit.
 *
 * @example
 * checkLabel(" cat ", 0); // "cat"
 */
export function checkLabel(label: unknown, i: number): string {
  if (typeof label !== "string") throw new InvalidParameterError("label", `Example ${i}: the label must be a string, not ${label === null ? "null" : typeof label}.`);
  const trimmed = label.trim();
  if (!trimmed) throw new InvalidParameterError("label", `Example ${i}: the label is empty.`);
  if (trimmed.length > FINETUNE_LIMITS.maxLabelLength) {
    throw new InvalidParameterError("label", `Example ${i}: the label is longer than ${FINETUNE_LIMITS.maxLabelLength} characters.`);
  }
  return trimmed;
}

function checkCount(count: number) {
  if (count === 0) throw new InvalidRequestError("The call has no examples.");
  if (count > FINETUNE_LIMITS.maxExamplesPerCall) {
    throw new PayloadTooLargeError(`The call has ${count} examples; the limit is ${FINETUNE_LIMITS.maxExamplesPerCall}.`, {
      maxExamplesPerCall: FINETUNE_LIMITS.maxExamplesPerCall,
    });
  }
}

function decodeBase64(text: unknown, i: number): Uint8Array {
  if (typeof text !== "string") throw new InvalidParameterError("image", `Example ${i}: the image must be a base64 string.`);
  try {
    return Uint8Array.from(atob(text.replace(/^data:[^,]*,/, "")), (c) => c.charCodeAt(0));
  } catch {
    throw new InvalidParameterError("image", `Example ${i}: the image is not valid base64.`);
  }
}

async function readJson(body: Uint8Array<ArrayBuffer>): Promise<LabelledImages> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(body));
  } catch {
    throw new InvalidRequestError("The body is not valid JSON.");
  }
  const { examples, classifier } = (parsed ?? {}) as { examples?: unknown; classifier?: unknown };
  if (!Array.isArray(examples)) throw new InvalidParameterError("examples", "The body must be an object with an 'examples' array.");
  if (classifier !== undefined && typeof classifier !== "string") throw new InvalidParameterError("classifier", "classifier must be a string.");
  checkCount(examples.length);
  const images: UploadedImage[] = [];
  const labels: string[] = [];
  examples.forEach((example: unknown, i) => {
    const { image, label } = (example ?? {}) as { image?: unknown; label?: unknown };
    labels.push(checkLabel(label, i));
    images.push(checkImage(`example ${i}`, decodeBase64(image, i)));
  });
  return { ...(classifier !== undefined ? { classifier } : {}), images, labels };
}

async function readForm(body: Uint8Array<ArrayBuffer>, contentType: string): Promise<LabelledImages> {
  const form = await parseForm(body, contentType);
  const parts = form.getAll("image");
  const labelFields = form.getAll("label");
  checkCount(parts.length);
  if (labelFields.length !== parts.length && labelFields.length !== 1) {
    throw new InvalidParameterError("label", `The form has ${parts.length} images and ${labelFields.length} labels: send one label per image, or one for all.`);
  }
  const labels = parts.map((_, i) => checkLabel(labelFields[labelFields.length === 1 ? 0 : i], i));
  const images = await imageParts(parts);
  const classifier = form.get("classifier");
  if (classifier !== null && typeof classifier !== "string") throw new InvalidParameterError("classifier", "classifier must be a text field.");
  return { ...(classifier !== null ? { classifier } : {}), images, labels };
}

/**
 * Refuse a fine-tune call whose Content-Type is neither multipart nor JSON, from its headers alone.
 *
 * @throws UnsupportedMediaTypeError
 * @example
 * checkLabelledMediaType(new Headers({ "content-type": "image/png" })); // throws 415
 */
export function checkLabelledMediaType(headers: Headers): string {
  return requireMediaType(headers, ACCEPTED, "Send multipart/form-data with 'image' and 'label' fields, or JSON.");
}

/**
 * The labelled images of a fine-tune call, each probed and checked against the limits.
 *
 * @throws UnsupportedMediaTypeError, PayloadTooLargeError, ImageTooLargeError, InvalidRequestError, InvalidParameterError
 * @example
 * const { images, labels } = await readLabelledImages(c.req.raw);
 */
export async function readLabelledImages(request: Request): Promise<LabelledImages> {
  const type = checkLabelledMediaType(request.headers);
  const contentType = request.headers.get("content-type");
  const body = await readBodyLimited(request, CLASSIFY_LIMITS.maxRequestBytes);
  if (body.byteLength === 0) throw new InvalidRequestError("The request body is empty.");
  return type === "application/json" ? readJson(body) : readForm(body, contentType!);
}
