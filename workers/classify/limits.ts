/**
 * Request limits of POST /classify. They keep one request inside a Worker isolate's 128 MB:
 * the largest image decoded at full size is 8.4 MP x 4 bytes = 34 MB of RGBA, JPEGs decoded
 * at 1/8 scale (workers/images/jpeg-eighth.ts) take 1/64 of that, and images are decoded one
 * at a time. README.md documents them; the integration tests exercise each.
 */
export const CLASSIFY_LIMITS = {
  /** Whole request body, raw or multipart. */
  maxRequestBytes: 32 * 1024 * 1024,
  /** One encoded image. */
  maxImageBytes: 8 * 1024 * 1024,
  /** Width x height of one image decoded at full size, read from its header before decoding. */
  maxImagePixels: 4096 * 2048,
  /**
   * Width x height of a JPEG, which is decoded at 1/8 scale when the model's input is small
   * enough (a 48-megapixel photo is 0.75 MP then); one that turns out to need a full-size
   * decode (arithmetic-coded, CMYK, 12-bit) is held to maxImagePixels.
   */
  maxJpegPixels: 8192 * 8192,
  /** Longest side of one image. */
  maxImageSide: 8192,
  /** Image parts in one multipart request. */
  maxImagesPerRequest: 32,
} as const;
