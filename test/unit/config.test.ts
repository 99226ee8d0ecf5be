import { describe, expect, it } from "vitest";
import { configOf } from "./config-of.ts";
import { addressOf, apopModeOf, clientOf, DEFAULT_TIMEOUT_SECONDS, implicitTlsOf, readConfig, stlsModeOf } from "../../src/core/config.ts";


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
      proxyHeader: false,
      loginLimitSeconds: undefined,
    });
  });
});

describe("QMAIL_POPUP_LOGIN_LIMIT", () => {
  it.each([
    [undefined, undefined],
    ["", undefined],
    ["0", undefined],
    ["30", 30],
    ["999999", 999999],
    ["1000000", undefined],
    ["-5", undefined],
    ["30s", undefined],
  ])("%j gives %j", (value, seconds) => {
    expect(readConfig(["h", "c"], value === undefined ? {} : { QMAIL_POPUP_LOGIN_LIMIT: value })!.loginLimitSeconds).toBe(seconds);
  });
});

describe("QMAIL_POPUP_PROXY", () => {
  it.each([
    [undefined, false],
    ["", false],
    ["1", true],
    ["v2", true],
  ])("%j: a PROXY header expected: %s", (value, expected) => {
    const env = value === undefined ? {} : { QMAIL_POPUP_PROXY: value };
    expect(readConfig(["mail.example.org", "checkpassword"], env)!.proxyHeader).toBe(expected);
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
  // The front reads POP3TIMEOUT (src/front/qmail-popup.c timeout_of) and passes the seconds in its
  // introduction: readConfig takes them from there, never from the environment (test/e2e/plan.test.ts).
  it("defaults to 1200 seconds", () => {
    expect(DEFAULT_TIMEOUT_SECONDS).toBe(1200);
    expect(configOf().timeoutSeconds).toBe(1200);
  });

  it("is the number the front passed, whatever POP3TIMEOUT says", () => {
    expect(readConfig(["mail.example.org", "checkpassword"], {}, 5)!.timeoutSeconds).toBe(5);
    expect(readConfig(["mail.example.org", "checkpassword"], { POP3TIMEOUT: "7" }, 2147483)!.timeoutSeconds).toBe(2147483);
    expect(configOf({ POP3TIMEOUT: "5" }).timeoutSeconds).toBe(1200);
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

// What each launcher sets for its program, as seen here (tcpserver, xinetd,
// stunnel, socat, systemd-socket-activate: their environments dumped by a
// test program) or as their sources and manuals say (sslserver, systemd's
// own Accept=yes sockets). Only the connection's variables are listed.
const TCPSERVER = { PROTO: "TCP", TCPLOCALHOST: "0", TCPLOCALIP: "127.0.0.1", TCPLOCALPORT: "110", TCPREMOTEIP: "127.0.0.1", TCPREMOTEPORT: "46986" };
const TCPSERVER_NAMED = { ...TCPSERVER, TCPREMOTEHOST: "localhost" };
const SSLSERVER = {
  PROTO: "SSL", SSLLOCALHOST: "pop.example", SSLLOCALIP: "192.0.2.25", SSLLOCALPORT: "995",
  SSLREMOTEIP: "192.0.2.1", SSLREMOTEPORT: "50123", SSLREMOTEHOST: "client.example",
  SSLCTLFD: "5", SSLREADFD: "6", SSLWRITEFD: "7",
};
// sslserver -s, without -n: the handshake is done and its SSL_* are set (mod_ssl's names).
const SSLSERVER_TLS_VARIABLES = { SSL_PROTOCOL: "TLSv1.3", SSL_CIPHER: "TLS_AES_256_GCM_SHA384", SSL_VERSION_INTERFACE: "ucspi-ssl" };
// sslserver's own settings, which reach the program whether TLS is up or not.
const SSLSERVER_SETTINGS = { SSL_UID: "1000", SSL_GID: "1000", SSL_CHROOT: "/var/empty", SSL_USER: "qmaild", SSL_GROUP: "nofiles" };
const SYSTEMD_ACCEPT = { REMOTE_ADDR: "192.0.2.1", REMOTE_PORT: "50123", INVOCATION_ID: "0f3d2c1b0a09080706050403020100ff" };
const STUNNEL_EXEC = { REMOTE_HOST: "127.0.0.1", REMOTE_PORT: "43142" };
const XINETD = { REMOTE_HOST: "127.0.0.1" };
const SOCAT = {
  SOCAT_PEERADDR: "127.0.0.1", SOCAT_PEERPORT: "51860", SOCAT_PID: "10775", SOCAT_PPID: "10328",
  SOCAT_SOCKADDR: "127.0.0.1", SOCAT_SOCKPORT: "110", SOCAT_VERSION: "1.7.4.4",
};
// socat on TCP6-LISTEN writes IPv6 addresses in full, in brackets; an IPv4 client is mapped.
const SOCAT6_IPV4_CLIENT = { ...SOCAT, SOCAT_PEERADDR: "[0000:0000:0000:0000:0000:ffff:7f00:0001]", SOCAT_SOCKADDR: "[0000:0000:0000:0000:0000:ffff:7f00:0001]" };
const SOCAT6 = { ...SOCAT, SOCAT_PEERADDR: "[0000:0000:0000:0000:0000:0000:0000:0001]", SOCAT_SOCKADDR: "[0000:0000:0000:0000:0000:0000:0000:0001]" };
// systemd-socket-activate passes TERM, PATH, USER, HOME and its -E variables: nothing of the connection.
const SYSTEMD_SOCKET_ACTIVATE = { PATH: "/usr/bin:/bin", HOME: "/root" };

describe("the client under each launcher", () => {
  it.each([
    ["tcpserver -H", TCPSERVER, "127.0.0.1", "unknown"],
    ["tcpserver -h", TCPSERVER_NAMED, "127.0.0.1", "localhost"],
    ["sslserver", SSLSERVER, "192.0.2.1", "client.example"],
    ["systemd Accept=yes", SYSTEMD_ACCEPT, "192.0.2.1", "unknown"],
    ["stunnel exec", STUNNEL_EXEC, "127.0.0.1", "unknown"],
    ["stunnel exec, dual-stack", { ...STUNNEL_EXEC, REMOTE_HOST: "::ffff:127.0.0.1" }, "127.0.0.1", "unknown"],
    ["xinetd", XINETD, "127.0.0.1", "unknown"],
    ["xinetd, IPv6", { REMOTE_HOST: "::1" }, "::1", "unknown"],
    ["xinetd, dual-stack", { REMOTE_HOST: "::ffff:127.0.0.1" }, "127.0.0.1", "unknown"],
    ["socat", SOCAT, "127.0.0.1", "unknown"],
    ["socat TCP6-LISTEN, IPv4 client", SOCAT6_IPV4_CLIENT, "127.0.0.1", "unknown"],
    ["socat TCP6-LISTEN, IPv6 client", SOCAT6, "::1", "unknown"],
    ["systemd-socket-activate", SYSTEMD_SOCKET_ACTIVATE, "unknown", "unknown"],
    ["none", {}, "unknown", "unknown"],
  ] as const)("%s", (_launcher, env, ip, host) => {
    expect(clientOf(env)).toEqual({ ip, host });
    expect(configOf(env)).toMatchObject({ remoteIp: ip, remoteHost: host });
  });

  it("is tcpserver's first, whatever else is set", () => {
    const everyone = { ...SSLSERVER, ...SYSTEMD_ACCEPT, ...STUNNEL_EXEC, ...SOCAT };
    expect(clientOf({ ...everyone, TCPREMOTEIP: "198.51.100.9" })).toEqual({ ip: "198.51.100.9", host: "unknown" });
    expect(clientOf({ ...everyone, TCP6REMOTEIP: "2001:db8::9", TCPREMOTEIP: "198.51.100.9", TCPREMOTEHOST: "nine.example" })).toEqual({
      ip: "2001:db8::9",
      host: "nine.example",
    });
  });

  it("is then sslserver's, systemd's, REMOTE_HOST, socat's, in that order", () => {
    expect(clientOf({ SSLREMOTEIP: "192.0.2.1", REMOTE_ADDR: "192.0.2.2", REMOTE_HOST: "192.0.2.3", SOCAT_PEERADDR: "192.0.2.4" }).ip).toBe("192.0.2.1");
    expect(clientOf({ REMOTE_ADDR: "192.0.2.2", REMOTE_HOST: "192.0.2.3", SOCAT_PEERADDR: "192.0.2.4" }).ip).toBe("192.0.2.2");
    expect(clientOf({ REMOTE_HOST: "192.0.2.3", SOCAT_PEERADDR: "192.0.2.4" }).ip).toBe("192.0.2.3");
    expect(clientOf({ SOCAT_PEERADDR: "192.0.2.4" }).ip).toBe("192.0.2.4");
  });

  it("takes the name from the launcher that gave the address, never another's", () => {
    // A PROXY header under sslserver: tcpserver's names for the client, none given; not the balancer's.
    expect(clientOf({ ...SSLSERVER, TCPREMOTEIP: "198.51.100.9" })).toEqual({ ip: "198.51.100.9", host: "unknown" });
    expect(clientOf({ ...SSLSERVER, TCPREMOTEIP: "198.51.100.9", TCPREMOTEHOST: "nine.example" })).toEqual({ ip: "198.51.100.9", host: "nine.example" });
    // REMOTE_HOST is an address: never a name, even beside systemd's REMOTE_ADDR.
    expect(clientOf({ REMOTE_ADDR: "192.0.2.1", REMOTE_HOST: "192.0.2.3" })).toEqual({ ip: "192.0.2.1", host: "unknown" });
  });

  it("leaves the environment as it was", () => {
    const env = { ...SOCAT6_IPV4_CLIENT, ...STUNNEL_EXEC, SSL_PROTOCOL: "TLSv1.3", POP3S: "1" };
    const copy = { ...env };
    readConfig(["mail.example.org", "checkpassword"], Object.freeze(env));
    expect(env).toStrictEqual(copy);
  });
});

describe("addressOf", () => {
  it.each([
    ["192.0.2.1", "192.0.2.1"],
    ["::ffff:192.0.2.1", "192.0.2.1"],
    ["2001:db8::1", "2001:db8::1"],
    ["2001:db8::ffff:1", "2001:db8::ffff:1"],
    ["::1", "::1"],
    // socat's IPv6: bracketed, in full.
    ["[0000:0000:0000:0000:0000:ffff:c000:0201]", "192.0.2.1"],
    ["[0000:0000:0000:0000:0000:0000:0000:0001]", "::1"],
    ["[2001:0db8:0000:0000:0000:0000:0000:0001]", "2001:db8::1"],
    ["[2001:0DB8:0000:0001:0000:0000:0000:0001]", "2001:db8:0:1::1"],
    ["[2001:0db8:0000:0000:0001:0000:0000:0001]", "2001:db8::1:0:0:1"],
    ["[2001:0db8:0001:0001:0001:0001:0001:0001]", "2001:db8:1:1:1:1:1:1"],
    ["[2001:0db8:0000:0001:0001:0001:0001:0001]", "2001:db8:0:1:1:1:1:1"],
    ["[0000:0000:0000:0000:0000:0000:0000:0000]", "::"],
    ["[fe80:0000:0000:0000:0000:0000:0000:0000]", "fe80::"],
    // Anything else is logged as given (escaped by the log line).
    ["[::1]", "::1"],
    ["unknown", "unknown"],
    ["", ""],
    ["1.2.3.4\n", "1.2.3.4\n"],
  ])("%j → %j", (value, address) => {
    expect(addressOf(value)).toBe(address);
  });
});

describe("implicit TLS", () => {
  it("is on for local port 995", () => {
    expect(configOf({ TCPLOCALPORT: "995" }).implicitTls).toBe(true);
    expect(configOf({ TCP6LOCALPORT: "995" }).implicitTls).toBe(true);
    // sslserver without -e sets only its own names.
    expect(configOf({ SSLLOCALPORT: "995" }).implicitTls).toBe(true);
  });

  it("is off for other ports and when no port is known", () => {
    expect(configOf({ TCPLOCALPORT: "110" }).implicitTls).toBe(false);
    expect(configOf({ TCPLOCALPORT: "9955" }).implicitTls).toBe(false);
    expect(configOf({ SSLLOCALPORT: "110" }).implicitTls).toBe(false);
    expect(configOf().implicitTls).toBe(false);
  });

  it("prefers TCP6LOCALPORT over TCPLOCALPORT over SSLLOCALPORT", () => {
    expect(configOf({ TCP6LOCALPORT: "110", TCPLOCALPORT: "995" }).implicitTls).toBe(false);
    expect(configOf({ TCP6LOCALPORT: "995", TCPLOCALPORT: "110" }).implicitTls).toBe(true);
    expect(configOf({ TCPLOCALPORT: "110", SSLLOCALPORT: "995" }).implicitTls).toBe(false);
    expect(configOf({ TCPLOCALPORT: "995", SSLLOCALPORT: "110" }).implicitTls).toBe(true);
  });

  it("is on under sslserver -s without -n: SSL_PROTOCOL is set", () => {
    expect(implicitTlsOf({ ...SSLSERVER, SSLLOCALPORT: "8995", ...SSLSERVER_TLS_VARIABLES })).toBe(true);
    expect(implicitTlsOf({ SSL_PROTOCOL: "TLSv1.2" })).toBe(true);
    expect(implicitTlsOf({ SSL_PROTOCOL: "" })).toBe(true);
  });

  it("is off under sslserver -n: neither its SSL_* settings nor PROTO=SSL mean TLS", () => {
    const starttls = { ...SSLSERVER, SSLLOCALPORT: "110", ...SSLSERVER_SETTINGS, UCSPITLS: "" };
    expect(implicitTlsOf(starttls)).toBe(false);
    expect(configOf(starttls)).toMatchObject({ implicitTls: false, stls: "offered", ucspiTls: { control: 5, read: 6, write: 7 } });
    expect(implicitTlsOf({ PROTO: "SSL" })).toBe(false);
  });

  it("is on where the administrator says so: POP3S set, whatever its value (stunnel, systemd)", () => {
    expect(implicitTlsOf({ ...STUNNEL_EXEC, POP3S: "1" })).toBe(true);
    expect(implicitTlsOf({ ...SYSTEMD_ACCEPT, POP3S: "" })).toBe(true);
    expect(implicitTlsOf(STUNNEL_EXEC)).toBe(false);
    expect(implicitTlsOf(SYSTEMD_ACCEPT)).toBe(false);
    expect(implicitTlsOf({ pop3s: "1" })).toBe(false);
  });

  it("makes readConfig say so, whatever UCSPITLS says", () => {
    expect(configOf({ POP3S: "1", UCSPITLS: "!" })).toMatchObject({ implicitTls: true, stls: "required" });
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
