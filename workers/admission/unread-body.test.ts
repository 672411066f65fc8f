import { describe, expect, it } from "vitest";
import { bodyBytesToHold, bodyImageFormat } from "./unread-body";

describe("what an unread body is admitted as", () => {
  it("holds its declared length, or the route's limit when it declares none", () => {
    expect(bodyBytesToHold(new Headers({ "content-length": "3000" }), 32 * 2 ** 20)).toEqual({ bytes: 3000, declared: true });
    expect(bodyBytesToHold(new Headers(), 32 * 2 ** 20)).toEqual({ bytes: 32 * 2 ** 20, declared: false });
    expect(bodyBytesToHold(new Headers({ "content-length": "abc" }), 1000)).toEqual({ bytes: 1000, declared: false });
    expect(bodyBytesToHold(new Headers({ "content-length": "5000" }), 1000)).toEqual({ bytes: 1000, declared: true }); // refused with 413 unread
  });

  it("estimates its decoding by the format its Content-Type names, none for multipart", () => {
    expect(bodyImageFormat(new Headers({ "content-type": "Image/PNG" }))).toBe("png");
    expect(bodyImageFormat(new Headers({ "content-type": "image/jpeg; q=1" }))).toBe("jpeg");
    expect(bodyImageFormat(new Headers({ "content-type": "multipart/form-data; boundary=x" }))).toBeUndefined();
    expect(bodyImageFormat(new Headers())).toBeUndefined();
  });
});
