/**
 * Every answer carries an `x-request-id` that ties a client's request to its log line: the
 * client's own when it sent a sane one, else Cloudflare's `cf-ray`, else a new UUID.
 */

/** Printable, header-safe and short: what a log query and a support ticket can carry. */
const SANE_ID = /^[A-Za-z0-9._:@\/+=-]{1,128}$/;

export const REQUEST_ID_HEADER = "x-request-id";

/**
 * The id of the request with these headers.
 *
 * @example
 * requestIdFor(new Headers({ "x-request-id": "job-42" })); // "job-42"
 * requestIdFor(new Headers({ "cf-ray": "8d1f2a3b4c5d6e7f-LHR" })); // "8d1f2a3b4c5d6e7f-LHR"
 */
export function requestIdFor(headers: Headers): string {
  for (const name of [REQUEST_ID_HEADER, "cf-ray"]) {
    const value = headers.get(name)?.trim();
    if (value && SANE_ID.test(value)) return value;
  }
  return crypto.randomUUID();
}
