import { describe, expect, it } from "vitest";
import { requestIdFor } from "./request-id";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("requestIdFor", () => {
  it("keeps a client's sane id, trimmed", () => {
    expect(requestIdFor(new Headers({ "x-request-id": "  job-42/retry:1 " }))).toBe("job-42/retry:1");
  });

  it("falls back to cf-ray, then to a new UUID each time", () => {
    expect(requestIdFor(new Headers({ "cf-ray": "8d1f2a3b4c5d6e7f-LHR" }))).toBe("8d1f2a3b4c5d6e7f-LHR");
    const a = requestIdFor(new Headers());
    expect(a).toMatch(UUID);
    expect(requestIdFor(new Headers())).not.toBe(a);
  });

  it("replaces an id that is too long or carries characters a log line should not", () => {
    expect(requestIdFor(new Headers({ "x-request-id": "x".repeat(129) }))).toMatch(UUID);
    expect(requestIdFor(new Headers({ "x-request-id": 'a"b' }))).toMatch(UUID);
    expect(requestIdFor(new Headers({ "x-request-id": "a b", "cf-ray": "ray-1" }))).toBe("ray-1");
  });
});
