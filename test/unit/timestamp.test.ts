import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { apopTimestamp } from "../../src/core/timestamp.ts";

const bin = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "latin1"));

describe("apopTimestamp", () => {
  it("is `<PID.TIME@HOST>`, brackets included (RFC 1939's example)", () => {
    expect(apopTimestamp(1896, 697170952, "dbc.mtview.ca.us")).toEqual(bin("<1896.697170952@dbc.mtview.ca.us>"));
  });

  it("writes the time in whole seconds", () => {
    expect(apopTimestamp(42, 1700000000.987, "mail.example.org")).toEqual(bin("<42.1700000000@mail.example.org>"));
  });

  it("is the string an APOP checkpassword hashes: md5(timestamp + `tanstaaf`) is RFC 1939's digest", () => {
    const timestamp = apopTimestamp(1896, 697170952, "dbc.mtview.ca.us");
    expect(createHash("md5").update(timestamp).update("tanstaaf").digest("hex")).toBe("c4c9334bac560ecc979e58001b3e22fb");
  });
});
