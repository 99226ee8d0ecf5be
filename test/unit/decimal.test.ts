import { describe, expect, it } from "vitest";
import { decimalOf } from "../../src/core/decimal.ts";

describe("decimalOf: the runtime's one reader of decimal numbers", () => {
  it.each([
    ["0", 9, 0],
    ["7", 1, 7],
    ["000012", 6, 12],
    ["999999999", 9, 999999999],
  ])("reads %j (at most %d digits) as %d", (text, digits, value) => {
    expect(decimalOf(text, digits)).toBe(value);
  });

  it.each([undefined, "", " 1", "1 ", "+1", "-1", "1e3", "0x10", "1.0", "١", "12\n", "1234567890"])("refuses %j", (text) => {
    expect(decimalOf(text, 9)).toBeUndefined();
  });

  it("refuses more digits than allowed, even as leading zeros", () => {
    expect(decimalOf("0000001", 6)).toBeUndefined();
  });
});
