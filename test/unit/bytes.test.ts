import { describe, expect, it } from "vitest";
import { bytesOf, concatBytes, equalsIgnoringCase } from "../../src/core/bytes.ts";

const bin = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "latin1"));

describe("bytesOf", () => {
  it("gives the ASCII bytes of a reply", () => {
    expect(bytesOf("+OK \r\n")).toEqual(new Uint8Array([0x2b, 0x4f, 0x4b, 0x20, 0x0d, 0x0a]));
  });
});

describe("concatBytes", () => {
  it("joins the parts in order", () => {
    expect(concatBytes([bin("ab"), new Uint8Array(0), bin("\0\xff"), bin("c")])).toEqual(bin("ab\0\xffc"));
  });

  it("gives an empty array for no parts", () => {
    expect(concatBytes([])).toEqual(new Uint8Array(0));
  });
});

describe("equalsIgnoringCase", () => {
  it("compares ASCII letters in any case", () => {
    expect(equalsIgnoringCase(bin("uSeR"), "USER")).toBe(true);
    expect(equalsIgnoringCase(bin("user"), "USER")).toBe(true);
    expect(equalsIgnoringCase(bin("USER"), "USER")).toBe(true);
  });

  it("refuses a different length or a different letter", () => {
    expect(equalsIgnoringCase(bin("USE"), "USER")).toBe(false);
    expect(equalsIgnoringCase(bin("USERS"), "USER")).toBe(false);
    expect(equalsIgnoringCase(bin("USEX"), "USER")).toBe(false);
  });

  it("folds only a-z: bytes 0x20 above an upper-case letter do not match", () => {
    // 0xf5 - 0x20 would be 0xd5; `{` (0x7b) is not a lower-case `[`.
    expect(equalsIgnoringCase(bin("{"), "[")).toBe(false);
    expect(equalsIgnoringCase(new Uint8Array([0x75, 0x73, 0x65, 0xf2]), "USER")).toBe(false);
    expect(equalsIgnoringCase(bin("US\0R"), "USER")).toBe(false);
  });
});
