import { describe, expect, it } from "vitest";
import { bearerToken, matchesAnyKey, parseKeys } from "./api-keys";

describe("parseKeys", () => {
  it("splits on commas and whitespace and drops blanks", () => {
    expect(parseKeys(" k1, k2,,\nk3 ")).toEqual(["k1", "k2", "k3"]);
    expect(parseKeys(undefined)).toEqual([]);
    expect(parseKeys(" , ")).toEqual([]);
  });
});

describe("bearerToken", () => {
  it("reads the token of a Bearer header, any case of the scheme", () => {
    expect(bearerToken("Bearer abc")).toBe("abc");
    expect(bearerToken("bearer  abc ")).toBe("abc");
  });
  it("is undefined for other schemes and malformed headers", () => {
    for (const header of [undefined, "", "Basic abc", "Bearer", "Bearer a b", "Bearerabc"]) expect(bearerToken(header)).toBeUndefined();
  });
});

describe("matchesAnyKey", () => {
  it("accepts any configured key, during a rotation both", async () => {
    expect(await matchesAnyKey("old", ["old", "new"])).toBe(true);
    expect(await matchesAnyKey("new", ["old", "new"])).toBe(true);
  });
  it("refuses prefixes, extensions, case changes and an empty key list", async () => {
    for (const token of ["ol", "oldx", "OLD", ""]) expect(await matchesAnyKey(token, ["old"])).toBe(false);
    expect(await matchesAnyKey("old", [])).toBe(false);
  });
});
