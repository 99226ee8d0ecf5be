import { describe, expect, it } from "vitest";
import { configOf } from "./config-of.ts";
import { apopModeOf, DEFAULT_TIMEOUT_SECONDS, readConfig, stlsModeOf, timeoutOf } from "../../src/core/config.ts";


describe("arguments", () => {
  it("takes the hostname and the subprogram with its arguments", () => {
    const config = readConfig(["mail.example.org", "checkpassword", "qmail-pop3d", "Maildir"], {});
    expect(config?.hostname).toBe("mail.example.org");
    expect(config?.subprogram).toEqual(["checkpassword", "qmail-pop3d", "Maildir"]);
  });

  it("is undefined without a subprogram or without any argument", () => {
    expect(readConfig(["mail.example.org"], {})).toBeUndefined();
    expect(readConfig([], {})).toBeUndefined();
  });

  it("has the defaults with an empty environment", () => {
    expect(readConfig(["mail.example.org", "checkpassword"], {})).toEqual({
      hostname: "mail.example.org",
      subprogram: ["checkpassword"],
      apop: "off",
      cramMd5: false,
      stls: "off",
      timeoutSeconds: 1200,
      remoteIp: "unknown",
      remoteHost: "unknown",
      implicitTls: false,
      ucspiTls: undefined,
    });
  });
});

describe("POP3AUTH", () => {
  it.each([
    ["apop", "only"],
    ["APOP", "only"],
    ["Apop-whatever", "only"],
    ["+apop", "also"],
    ["+APOP", "also"],
    ["+APOP-whatever", "also"],
    [undefined, "off"],
    ["", "off"],
    ["other", "off"],
    ["xapop", "off"],
    [" apop", "off"],
  ] as const)("%j → %s", (pop3auth, mode) => {
    expect(apopModeOf(pop3auth)).toBe(mode);
    expect(configOf(pop3auth === undefined ? {} : { POP3AUTH: pop3auth }).apop).toBe(mode);
  });
});

describe("UCSPITLS", () => {
  it.each([
    [undefined, "off"],
    ["-", "off"],
    ["", "offered"],
    ["1", "offered"],
    ["yes", "offered"],
    ["!", "required"],
    ["!!", "offered"],
  ] as const)("%j → %s", (ucspitls, mode) => {
    expect(stlsModeOf(ucspitls)).toBe(mode);
    expect(configOf(ucspitls === undefined ? {} : { UCSPITLS: ucspitls }).stls).toBe(mode);
  });
});

describe("POP3TIMEOUT", () => {
  it("defaults to 1200 seconds", () => {
    expect(DEFAULT_TIMEOUT_SECONDS).toBe(1200);
    expect(timeoutOf(undefined)).toBe(1200);
    expect(configOf().timeoutSeconds).toBe(1200);
  });

  it("takes a number of seconds", () => {
    expect(configOf({ POP3TIMEOUT: "5" }).timeoutSeconds).toBe(5);
    expect(timeoutOf("1")).toBe(1);
    expect(timeoutOf("3600")).toBe(3600);
  });

  it.each(["", "0", "000", "junk", "5s", "-5", "1.5", " 5", "0x10"])("falls back to 1200 for %j", (value) => {
    expect(timeoutOf(value)).toBe(1200);
    expect(configOf({ POP3TIMEOUT: value }).timeoutSeconds).toBe(1200);
  });
});

describe("client address and name", () => {
  it("prefers TCP6REMOTEIP over TCPREMOTEIP", () => {
    expect(configOf({ TCP6REMOTEIP: "2001:db8::1", TCPREMOTEIP: "192.0.2.1" }).remoteIp).toBe("2001:db8::1");
    expect(configOf({ TCPREMOTEIP: "192.0.2.1" }).remoteIp).toBe("192.0.2.1");
  });

  it("drops a leading ::ffff:", () => {
    expect(configOf({ TCP6REMOTEIP: "::ffff:192.0.2.1" }).remoteIp).toBe("192.0.2.1");
    expect(configOf({ TCPREMOTEIP: "::ffff:127.0.0.1" }).remoteIp).toBe("127.0.0.1");
    // Only at the start.
    expect(configOf({ TCP6REMOTEIP: "2001:db8::ffff:1" }).remoteIp).toBe("2001:db8::ffff:1");
  });

  it("is `unknown` when neither is set", () => {
    expect(configOf().remoteIp).toBe("unknown");
    expect(configOf().remoteHost).toBe("unknown");
  });

  it("prefers TCP6REMOTEHOST over TCPREMOTEHOST", () => {
    expect(configOf({ TCP6REMOTEHOST: "six.example", TCPREMOTEHOST: "four.example" }).remoteHost).toBe("six.example");
    expect(configOf({ TCPREMOTEHOST: "four.example" }).remoteHost).toBe("four.example");
    expect(configOf({ TCP6REMOTEHOST: "six.example" }).remoteHost).toBe("six.example");
  });
});

describe("implicit TLS", () => {
  it("is on for local port 995", () => {
    expect(configOf({ TCPLOCALPORT: "995" }).implicitTls).toBe(true);
    expect(configOf({ TCP6LOCALPORT: "995" }).implicitTls).toBe(true);
  });

  it("is off for other ports and when no port is known", () => {
    expect(configOf({ TCPLOCALPORT: "110" }).implicitTls).toBe(false);
    expect(configOf({ TCPLOCALPORT: "9955" }).implicitTls).toBe(false);
    expect(configOf().implicitTls).toBe(false);
  });

  it("prefers TCP6LOCALPORT over TCPLOCALPORT", () => {
    expect(configOf({ TCP6LOCALPORT: "110", TCPLOCALPORT: "995" }).implicitTls).toBe(false);
    expect(configOf({ TCP6LOCALPORT: "995", TCPLOCALPORT: "110" }).implicitTls).toBe(true);
  });
});

describe("UCSPI-TLS descriptors", () => {
  it("are read from SSLCTLFD, SSLREADFD, SSLWRITEFD", () => {
    expect(configOf({ SSLCTLFD: "10", SSLREADFD: "11", SSLWRITEFD: "12" }).ucspiTls).toEqual({ control: 10, read: 11, write: 12 });
  });
  it("are absent unless all three are numbers", () => {
    const config = readConfig(["h", "p"], { SSLCTLFD: "6", SSLREADFD: "7" });
    expect(config?.ucspiTls).toBeUndefined();
    expect(readConfig(["h", "p"], { SSLCTLFD: "6", SSLREADFD: "7", SSLWRITEFD: "x" })?.ucspiTls).toBeUndefined();
  });
});
