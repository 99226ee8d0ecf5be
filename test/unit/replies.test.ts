import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import * as replies from "../../src/core/replies.ts";
import { apopTimestamp } from "../../src/core/timestamp.ts";

const bin = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "latin1"));

describe("the reply texts (exact)", () => {
  it.each([
    ["OK", "+OK \r\n"],
    ["ERR_SYNTAX", "-ERR syntax error\r\n"],
    ["ERR_USER_FIRST", "-ERR USER first\r\n"],
    ["ERR_AUTHORIZATION_FIRST", "-ERR authorization first\r\n"],
    ["ERR_LINE_TOO_LONG", "-ERR line too long\r\n"],
    ["ERR_NUL_IN_COMMAND", "-ERR NUL in command\r\n"],
    ["ERR_USER_PASS_NOT_AVAILABLE", "-ERR USER/PASS not available, use APOP\r\n"],
    ["ERR_APOP_NOT_AVAILABLE", "-ERR APOP not available\r\n"],
    ["ERR_AUTH_NOT_AVAILABLE", "-ERR AUTH not available, use APOP\r\n"],
    ["OK_STLS", "+OK starting TLS negotiation\r\n"],
    ["ERR_STLS_NOT_AVAILABLE", "-ERR STLS not available\r\n"],
    ["ERR_TLS_REQUIRED", "-ERR TLS required but not negotiated\r\n"],
    ["CHALLENGE_EMPTY", "+ \r\n"],
    ["CHALLENGE_USERNAME", "+ VXNlcm5hbWU6\r\n"],
    ["CHALLENGE_PASSWORD", "+ UGFzc3dvcmQ6\r\n"],
    ["ERR_SASL_CANCELLED", "-ERR authentication cancelled\r\n"],
    ["ERR_SASL_MALFORMED", "-ERR malformed SASL response\r\n"],
    ["ERR_SASL_MECHANISM", "-ERR unrecognized authentication type\r\n"],
    ["ERR_SASL_AUTHZID", "-ERR [AUTH] authorization identity not allowed\r\n"],
    ["ERR_AUTH_FAILED", "-ERR [AUTH] authorization failed\r\n"],
    ["ERR_AUTH_TEMPORARY", "-ERR [SYS/TEMP] authorization failed\r\n"],
    ["ERR_CHILD_CRASHED", "-ERR [SYS/TEMP] aack, child crashed\r\n"],
  ] as const)("%s is %j", (name, text) => {
    expect(replies[name]).toBe(text);
  });

  it("the greeting: `+OK <timestamp>` or a bare `+OK`", () => {
    const timestamp = apopTimestamp(1896, 697170952, "dbc.mtview.ca.us");
    expect(replies.greetingLine(timestamp)).toEqual(bin("+OK <1896.697170952@dbc.mtview.ca.us>\r\n"));
    expect(replies.greetingLine(undefined)).toEqual(bin("+OK\r\n"));
  });

  it("the greeting keeps a hostname's 8-bit bytes", () => {
    expect(replies.greetingLine(bin("<1.2@m\xe4il>"))).toEqual(bin("+OK <1.2@m\xe4il>\r\n"));
  });

  it("the usage line names the version", () => {
    expect(replies.usage("1.2.3")).toBe("-ERR usage: qmail-popup hostname subprogram [args...] (qmail-popup 1.2.3)\r\n");
  });

  it("a challenge is `+ ` and base64 (RFC 5034)", () => {
    expect(replies.challenge(bin("<1896.697170952@postoffice.reston.mci.net>"))).toBe(
      "+ PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n",
    );
  });

  it("the lists: status line, one item a line, the lone dot", () => {
    expect(replies.capabilityList(["TOP", replies.capabilitySasl(["PLAIN", "LOGIN"])])).toBe(
      "+OK capability list follows\r\nTOP\r\nSASL PLAIN LOGIN\r\n.\r\n",
    );
    expect(replies.mechanismList(["PLAIN"])).toBe("+OK SASL mechanisms follow\r\nPLAIN\r\n.\r\n");
    expect(replies.capabilityList([])).toBe("+OK capability list follows\r\n.\r\n");
  });

  it("the capabilities always listed, first", () => {
    expect(replies.CAPABILITIES_ALWAYS).toEqual(["TOP", "UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE"]);
    expect([replies.CAPABILITY_USER, replies.CAPABILITY_STLS]).toEqual(["USER", "STLS"]);
  });
});

describe("src/core", () => {
  it("writes a CRLF in replies.ts only", () => {
    const directory = new URL("../../src/core/", import.meta.url);
    const others = readdirSync(directory).filter((name) => name.endsWith(".ts") && name !== "replies.ts");
    expect(others.length).toBeGreaterThan(5);
    for (const name of others) expect(readFileSync(new URL(name, directory), "latin1"), name).not.toContain("\\r\\n");
  });
});
