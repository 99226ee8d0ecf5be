import { describe, expect, it } from "vitest";
import { escapeLogField, formatLogLine, type LogEntry } from "../../src/core/log.ts";

const bin = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "latin1"));

const entry = (overrides: Partial<LogEntry> = {}): LogEntry => ({
  pid: 42,
  result: "Accept",
  what: "AUTH::User",
  proto: "POP3",
  remoteIp: "127.0.0.1",
  remoteHost: "unknown",
  user: bin("alice"),
  ...overrides,
});

describe("formatLogLine", () => {
  it("writes the exact line", () => {
    expect(formatLogLine(entry())).toBe("qmail-popup: pid 42 Accept::AUTH::User P:POP3 S:127.0.0.1:unknown ?= 'alice'\n");
  });

  it("takes the user as a string as well as bytes", () => {
    expect(formatLogLine(entry({ user: "alice" }))).toBe(formatLogLine(entry()));
  });

  it("writes Reject, APOP, POP3S and the STLS refusal", () => {
    expect(formatLogLine(entry({ result: "Reject", what: "AUTH::Apop", proto: "POP3S", remoteHost: "client.example", user: bin("mrose") }))).toBe(
      "qmail-popup: pid 42 Reject::AUTH::Apop P:POP3S S:127.0.0.1:client.example ?= 'mrose'\n",
    );
    expect(formatLogLine(entry({ pid: 7, result: "Reject", what: "STLS::Any", user: "unknown" }))).toBe(
      "qmail-popup: pid 7 Reject::STLS::Any P:POP3 S:127.0.0.1:unknown ?= 'unknown'\n",
    );
  });

  it("keeps a name containing LF, CR and NUL on one line", () => {
    const line = formatLogLine(entry({ user: bin("eve\n qmail-popup: pid 1 Accept::AUTH::User\r\0") }));
    expect(line).toBe("qmail-popup: pid 42 Accept::AUTH::User P:POP3 S:127.0.0.1:unknown ?= 'eve\\x0a qmail-popup: pid 1 Accept::AUTH::User\\x0d\\x00'\n");
    expect(line.indexOf("\n")).toBe(line.length - 1);
    expect(line).not.toMatch(/[\r\0]/);
  });

  it("escapes the address and host names from the environment too", () => {
    expect(formatLogLine(entry({ remoteIp: "1.2.3.4\n", remoteHost: "h'st" }))).toBe(
      "qmail-popup: pid 42 Accept::AUTH::User P:POP3 S:1.2.3.4\\x0a:h\\x27st ?= 'alice'\n",
    );
  });

  it("has no room for the password: only the user field is logged", () => {
    // The entry type has no secret; the line has exactly the fields of the format.
    expect(formatLogLine(entry())).toMatch(/^qmail-popup: pid \d+ (Accept|Reject)::\S+ P:POP3S? S:[^ ]*:[^ ]* \?= '[^'\n]*'\n$/);
  });
});

describe("escapeLogField", () => {
  it("keeps printable ASCII, space included", () => {
    const printable = Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i))
      .filter((c) => c !== "'" && c !== "\\")
      .join("");
    expect(escapeLogField(bin(printable))).toBe(printable);
  });

  it("escapes `'` and `\\`", () => {
    expect(escapeLogField(bin("o'brien"))).toBe("o\\x27brien");
    expect(escapeLogField(bin("dom\\user"))).toBe("dom\\x5cuser");
  });

  it("escapes control bytes and DEL", () => {
    expect(escapeLogField(new Uint8Array([0x00, 0x01, 0x09, 0x0a, 0x0d, 0x1b, 0x1f, 0x7f]))).toBe(
      "\\x00\\x01\\x09\\x0a\\x0d\\x1b\\x1f\\x7f",
    );
  });

  it("escapes bytes 0x80-0xff with two lowercase hex digits", () => {
    expect(escapeLogField(new Uint8Array([0x80, 0xab, 0xc3, 0xe9, 0xff]))).toBe("\\x80\\xab\\xc3\\xe9\\xff");
  });

  it("escapes every byte outside 0x20-0x7e as \\xNN, and nothing else", () => {
    for (let byte = 0; byte < 256; byte++) {
      const escaped = escapeLogField(new Uint8Array([byte]));
      const plain = byte >= 0x20 && byte <= 0x7e && byte !== 0x27 && byte !== 0x5c;
      expect(escaped, `byte ${byte}`).toBe(plain ? String.fromCharCode(byte) : "\\x" + byte.toString(16).padStart(2, "0"));
    }
  });

  it("gives an empty string for an empty field", () => {
    expect(escapeLogField(new Uint8Array(0))).toBe("");
  });
});
