/** Limits of POST /v1/models (workers/README.md, "Limits"); the registration tests exercise each. */
export const REGISTRATION_LIMITS = {
  /**
   * Bytes of the ONNX file. While it is validated an isolate holds the upload, its rewritten
   * copy and a runtime of its own beside the serving one; larger models go in with `npm run
   * models:add` and a deploy.
   */
  maxModelBytes: 32 * 1024 * 1024,
  /** Bytes of the whole multipart body: the file and its settings. */
  maxRequestBytes: 33 * 1024 * 1024,
  /** Labels of one model, and characters of one. */
  maxLabels: 10_000,
  maxLabelLength: 128,
} as const;
