import { expect, it } from "vitest";
import { RateLimitedError } from "../problems/problems";
import { enforceRateLimit, keyId, secondsToWindowEnd } from "./rate-limit";

it("counts a key by a stable id that does not reveal it", async () => {
  const id = await keyId("secret-key");
  expect(id).toMatch(/^[0-9a-f]{16}$/);
  expect(await keyId("secret-key")).toBe(id);
  expect(await keyId("other-key")).not.toBe(id);
});

it("says how long is left of the current fixed window, at least a second", () => {
  expect(secondsToWindowEnd(60, 125_000)).toBe(55);
  expect(secondsToWindowEnd(60, 120_000)).toBe(60);
  expect(secondsToWindowEnd(10, 129_999)).toBe(1);
});

it("asks the scope's binding, and refuses with 429 and Retry-After when it says no; no binding, no limit", async () => {
  const keys: string[] = [];
  const binding = (success: boolean) => ({ limit: async ({ key }: { key: string }) => (keys.push(key), { success }) });
  await enforceRateLimit({ WRITE_RATE_LIMIT: binding(true) }, "write", "k");
  const refused = await enforceRateLimit({ CLASSIFY_RATE_LIMIT: binding(false) }, "classify", "k").catch((err: unknown) => err);
  expect(refused).toBeInstanceOf(RateLimitedError);
  expect(refused).toMatchObject({ status: 429, slug: "rate-limited", reason: "rate-limit" });
  expect(Number((refused as RateLimitedError).headers["retry-after"])).toBeGreaterThanOrEqual(1);
  expect(keys).toEqual([await keyId("k"), await keyId("k")]);
  await enforceRateLimit({ CLASSIFY_RATE_LIMIT: binding(false) }, "write", "k"); // the write scope has no binding here
});
