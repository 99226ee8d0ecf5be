import { describe, expect, it } from "vitest";
import { configOf } from "./config-of.ts";
import { apopOffered, capabilities, capabilityReply, stlsOffered, tlsRequiredNow, userPassAllowed } from "../../src/core/capabilities.ts";
import { readConfig, type Config } from "../../src/core/config.ts";
import { handleLine, initialState, type SessionState } from "../../src/core/session.ts";


const clear: SessionState = { user: undefined, tls: false };
const secure: SessionState = { user: undefined, tls: true };

/** The CAPA reply as the session gives it. */
function capa(config: Config, state: SessionState = initialState(config)): string {
  const step = handleLine(config, state, { kind: "line", line: new Uint8Array(Buffer.from("CAPA")) });
  expect(step.actions).toHaveLength(1);
  const action = step.actions[0]!;
  if (action.kind !== "reply") throw new Error(`CAPA gave ${action.kind}`);
  expect(step.state).toBe(state);
  return action.text;
}

const list = (...lines: string[]): string => "+OK capability list follows\r\n" + lines.map((line) => line + "\r\n").join("") + ".\r\n";

describe("CAPA", () => {
  it("is exact for the default config", () => {
    expect(capa(configOf())).toBe("+OK capability list follows\r\nTOP\r\nUIDL\r\nPIPELINING\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nUSER\r\nSASL PLAIN LOGIN\r\n.\r\n");
  });

  it("takes the verb in any case", () => {
    const config = configOf();
    const step = handleLine(config, initialState(config), { kind: "line", line: new Uint8Array(Buffer.from("capa")) });
    expect(step.actions).toEqual([{ kind: "reply", text: list("TOP", "UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE", "USER", "SASL PLAIN LOGIN") }]);
  });

  it("lists USER where APOP is offered as well", () => {
    expect(capa(configOf({ POP3AUTH: "+apop" }))).toBe(list("TOP", "UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE", "USER", "SASL PLAIN LOGIN"));
  });

  it("does not list USER in APOP-only mode", () => {
    expect(capa(configOf({ POP3AUTH: "apop" }))).toBe(list("TOP", "UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE"));
  });

  it("lists STLS when offered, and no longer after TLS", () => {
    const config = configOf({ UCSPITLS: "" });
    expect(capa(config)).toBe(list("TOP", "UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE", "USER", "SASL PLAIN LOGIN", "STLS"));
    const afterStls = handleLine(config, initialState(config), { kind: "line", line: new Uint8Array(Buffer.from("STLS")) }).state;
    expect(capa(config, afterStls)).toBe(list("TOP", "UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE", "USER", "SASL PLAIN LOGIN"));
  });

  it("does not list STLS with UCSPITLS=- or on port 995", () => {
    expect(capa(configOf({ UCSPITLS: "-" }))).toBe(list("TOP", "UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE", "USER", "SASL PLAIN LOGIN"));
    expect(capa(configOf({ UCSPITLS: "", TCPLOCALPORT: "995" }))).toBe(list("TOP", "UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE", "USER", "SASL PLAIN LOGIN"));
  });

  it("withholds USER before STLS when UCSPITLS=!, and lists it after", () => {
    const config = configOf({ UCSPITLS: "!" });
    expect(capa(config)).toBe(list("TOP", "UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE", "STLS"));
    const afterStls = handleLine(config, initialState(config), { kind: "line", line: new Uint8Array(Buffer.from("STLS")) }).state;
    expect(afterStls.tls).toBe(true);
    expect(capa(config, afterStls)).toBe(list("TOP", "UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE", "USER", "SASL PLAIN LOGIN"));
  });

  it("lists neither USER nor STLS in APOP-only mode after TLS", () => {
    expect(capa(configOf({ POP3AUTH: "apop", UCSPITLS: "" }), secure)).toBe(list("TOP", "UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE"));
  });
});

describe("the predicates", () => {
  it("userPassAllowed", () => {
    expect(userPassAllowed(configOf(), clear)).toBe(true);
    expect(userPassAllowed(configOf({ POP3AUTH: "apop" }), secure)).toBe(false);
    expect(userPassAllowed(configOf({ UCSPITLS: "!" }), clear)).toBe(false);
    expect(userPassAllowed(configOf({ UCSPITLS: "!" }), secure)).toBe(true);
  });

  it("tlsRequiredNow", () => {
    expect(tlsRequiredNow(configOf({ UCSPITLS: "!" }), clear)).toBe(true);
    expect(tlsRequiredNow(configOf({ UCSPITLS: "!" }), secure)).toBe(false);
    expect(tlsRequiredNow(configOf({ UCSPITLS: "" }), clear)).toBe(false);
    expect(tlsRequiredNow(configOf(), clear)).toBe(false);
  });

  it("apopOffered", () => {
    expect(apopOffered(configOf())).toBe(false);
    expect(apopOffered(configOf({ POP3AUTH: "+apop" }))).toBe(true);
    expect(apopOffered(configOf({ POP3AUTH: "APOP" }))).toBe(true);
    expect(apopOffered(configOf({ POP3AUTH: "cram-md5" }))).toBe(false);
  });

  it("stlsOffered", () => {
    expect(stlsOffered(configOf(), clear)).toBe(false);
    expect(stlsOffered(configOf({ UCSPITLS: "" }), clear)).toBe(true);
    expect(stlsOffered(configOf({ UCSPITLS: "!" }), clear)).toBe(true);
    expect(stlsOffered(configOf({ UCSPITLS: "" }), secure)).toBe(false);
  });

  it("capabilities() lists TOP, UIDL, PIPELINING and the response codes first (RFC 2449 asks for them before login)", () => {
    expect(capabilities(configOf({ UCSPITLS: "" }), clear)).toEqual(["TOP", "UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE", "USER", "SASL PLAIN LOGIN", "STLS"]);
  });

  it("capabilityReply ends with the lone dot", () => {
    expect(capabilityReply(configOf(), clear).endsWith("\r\n.\r\n")).toBe(true);
  });
});

describe("STLS without its descriptors", () => {
  it("is not offered when UCSPITLS is set but sslserver gave no descriptors", () => {
    const config = readConfig(["mail.example.org", "checkpassword"], { UCSPITLS: "" })!;
    expect(capabilities(config, initialState(config))).toEqual(["TOP", "UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE", "USER", "SASL PLAIN LOGIN"]);
  });
  it("with UCSPITLS=! still withholds USER: no silent plaintext login", () => {
    const config = readConfig(["mail.example.org", "checkpassword"], { UCSPITLS: "!" })!;
    expect(capabilities(config, initialState(config))).toEqual(["TOP", "UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE"]);
  });
});

describe("SASL in CAPA", () => {
  it("lists CRAM-MD5 only where POP3AUTH names it", () => {
    expect(capabilities(configOf({ POP3AUTH: "+apop+cram" }), initialState(configOf()))).toContain("SASL PLAIN LOGIN CRAM-MD5");
    expect(capabilities(configOf({ POP3AUTH: "cram-md5" }), initialState(configOf()))).toContain("SASL PLAIN LOGIN CRAM-MD5");
  });
});
