import { describe, expect, it } from "vitest";
import { encodeCheckpasswordInput } from "../../src/core/checkpassword.ts";
import { apopTimestamp } from "../../src/core/timestamp.ts";

const bin = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "latin1"));

describe("encodeCheckpasswordInput", () => {
  const timestamp = apopTimestamp(1896, 697170952, "dbc.mtview.ca.us");

  it("is exactly `name\\0secret\\0<timestamp>\\0`", () => {
    expect(encodeCheckpasswordInput(bin("alice"), bin("secret"), timestamp)).toEqual(
      bin("alice\0secret\0<1896.697170952@dbc.mtview.ca.us>\0"),
    );
  });

  it("keeps 8-bit bytes and spaces byte for byte", () => {
    const name = new Uint8Array([0x6a, 0xfc, 0x72, 0x67, 0x65, 0x6e]);
    const secret = new Uint8Array([0x80, 0xc0, 0xaf, 0x20, 0xff, 0xe9, 0x20]);
    expect(encodeCheckpasswordInput(name, secret, timestamp)).toEqual(
      new Uint8Array([...name, 0, ...secret, 0, ...bin("<1896.697170952@dbc.mtview.ca.us>"), 0]),
    );
  });

  it("carries an APOP digest as the secret", () => {
    expect(encodeCheckpasswordInput(bin("mrose"), bin("c4c9334bac560ecc979e58001b3e22fb"), timestamp)).toEqual(
      bin("mrose\0c4c9334bac560ecc979e58001b3e22fb\0<1896.697170952@dbc.mtview.ca.us>\0"),
    );
  });

  it("returns a new buffer: wiping it leaves the caller's secret alone, and the other way round", () => {
    const secret = bin("secret");
    const encoded = encodeCheckpasswordInput(bin("alice"), secret, timestamp);
    secret.fill(0);
    expect(encoded).toEqual(bin("alice\0secret\0<1896.697170952@dbc.mtview.ca.us>\0"));
    encoded.fill(0);
    expect(timestamp).toEqual(bin("<1896.697170952@dbc.mtview.ca.us>"));
  });
});
