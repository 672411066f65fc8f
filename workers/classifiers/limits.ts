/**
 * Limits of the classifier API. README.md documents them; the integration tests exercise each.
 * Images in a fine-tune call obey the classify limits too (bytes, pixels, request size).
 */
export const FINETUNE_LIMITS = {
  /** Labelled examples in one call. */
  maxExamplesPerCall: 256,
  /** Classes of one classifier: its weight row set must fit one 2 MB SQLite value at 4096-d embeddings. */
  maxClasses: 100,
  /** Characters of one label. */
  maxLabelLength: 64,
} as const;

/** Classifier ids: lower-case letters, digits, '-' and '_', starting with a letter or digit. */
export const CLASSIFIER_ID = /^[a-z0-9][a-z0-9_-]{0,63}$/;
