/**
 * Request limits of POST /classify. They keep one request inside a Worker isolate's 128 MB:
 * the largest image decodes to 8.4 MP x 4 bytes = 34 MB of RGBA, and images are decoded one
 * at a time. README.md documents them; the integration tests exercise each.
 */
export const CLASSIFY_LIMITS = {
  /** Whole request body, raw or multipart. */
  maxRequestBytes: 32 * 1024 * 1024,
  /** One encoded image. */
  maxImageBytes: 8 * 1024 * 1024,
  /** Width x height of one image, read from its header before decoding. */
  maxImagePixels: 4096 * 2048,
  /** Longest side of one image. */
  maxImageSide: 8192,
  /** Image parts in one multipart request. */
  maxImagesPerRequest: 32,
} as const;
