/**
 * A model's admission limits (models/<id>/config.json, `admission`): how many images may wait
 * for it and how long, before new requests are refused instead of queued.
 */

export interface AdmissionPolicy {
  /** Most images waiting for the model in one isolate (decoding or queued for a batch); more are refused (503 `overloaded`, reason `queue-full`). */
  maxQueueImages: number;
  /**
   * Longest a request's images may wait, once its body has arrived, for the isolate's CPU and for
   * their batch (its own decoding not counted). A request predicted to wait longer is refused
   * before its body is read; one that waited longer anyway is answered 503 and never runs.
   */
  maxQueueMs: number;
}

/**
 * What a model gets when its config.json says nothing (registered models): two seconds of queue,
 * and 64 images, about that long for a model of 30 ms an image (the time limit, measured in the
 * isolate, binds first for a slower one).
 */
export const DEFAULT_ADMISSION: AdmissionPolicy = { maxQueueImages: 64, maxQueueMs: 2_000 };

/** Bounds config.json's `admission` settings must keep (scripts/model-repository.ts checks them at build time). */
export const ADMISSION_BOUNDS = { maxQueueImages: [1, 4096], maxQueueMs: [50, 30_000] } as const;

/**
 * The policy a model is served with: its config's settings over the defaults.
 *
 * @example
 * admissionPolicy({ maxQueueMs: 1000 }); // { maxQueueImages: 64, maxQueueMs: 1000 }
 */
export function admissionPolicy(configured: Partial<AdmissionPolicy> | undefined): AdmissionPolicy {
  return { ...DEFAULT_ADMISSION, ...configured };
}
