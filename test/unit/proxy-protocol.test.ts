import { describe, expect, it } from "vitest";
import { readConfig } from "../../src/core/config.ts";
import { PROXY_HEADER_LIMIT, proxyEnvironment, proxyStep, type ProxyHeader, type ProxyStep } from "../../src/core/proxy-protocol.ts";
import { LOCAL, LOCAL_COMMAND, PROXY, V2_SIGNATURE, proxied, u16, v2 } from "../proxy-headers.ts";

/** The bytes of a string, one byte per character (latin1). */
const bin = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "latin1"));
const join = (...parts: (Uint8Array | readonly number[])[]): Uint8Array => Uint8Array.from(parts.flatMap((part) => [...part]));

const LF = 0x0a;
const CLIENT = bin("USER alice\r\n");

/** A step in a word or two, to compare whole sequences. */
function describeStep(step: ProxyStep): string {
  switch (step.kind) {
    case "read":
      return `read ${step.bytes}`;
    case "readLine":
      return `readLine ${step.limit}`;
    case "done":
      return "done";
    case "malformed":
      return `malformed: ${step.reason}`;
  }
}

/**
 * The reader qmail-popup is to have: asks proxyStep, reads exactly what it
 * says from the stream (read: that many bytes; readLine: up to and including
 * LF, at most limit), until done or malformed, or the stream ends.
 */
function readHeader(stream: Uint8Array): { steps: string[]; last: ProxyStep; consumed: number; ended: boolean } {
  let received = stream.subarray(0, 0);
  const steps: string[] = [];
  for (;;) {
    const step = proxyStep(received);
    steps.push(describeStep(step));
    if (step.kind === "done" || step.kind === "malformed") return { steps, last: step, consumed: received.length, ended: false };
    let end: number;
    if (step.kind === "read") {
      expect(step.bytes).toBeGreaterThan(0);
      end = received.length + step.bytes;
    } else {
      expect(step.limit).toBeGreaterThan(0);
      const lf = stream.indexOf(LF, received.length);
      end = lf >= 0 && lf < received.length + step.limit ? lf + 1 : received.length + step.limit;
    }
    if (end > stream.length) return { steps, last: step, consumed: received.length, ended: true };
    received = stream.subarray(0, end);
  }
}

/** Reads a header followed by the client's first line: it must come out whole, and nothing of the client's. */
function headerOf(header: Uint8Array): ProxyHeader {
  const reading = readHeader(join(header, CLIENT));
  expect(reading.last.kind, reading.steps.join(", ")).toBe("done");
  expect(reading.consumed).toBe(header.length);
  return (reading.last as { header: ProxyHeader }).header;
}

/** The reason a header followed by the client's line is refused. */
function refusal(header: Uint8Array): string {
  const reading = readHeader(join(header, CLIENT));
  expect(reading.last.kind, reading.steps.join(", ")).toBe("malformed");
  return (reading.last as { reason: string }).reason;
}

/** 192.0.2.1:56324 -> 198.51.100.7:110 */
const IPV4_BLOCK = [192, 0, 2, 1, 198, 51, 100, 7, ...u16(56324), ...u16(110)];
/** 2001:db8::1:56324 -> 2001:db8:0:1::7:110 */
const IPV6_BLOCK = [
  ...[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
  ...[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7],
  ...u16(56324),
  ...u16(110),
];

describe("the first step", () => {
  it("asks for 15 bytes: the shortest v1 header, shorter than any v2 header", () => {
    expect(proxyStep(new Uint8Array(0))).toEqual({ kind: "read", bytes: 15 });
    expect(bin("PROXY UNKNOWN\r\n").length).toBe(15);
  });

  it("bounds everything ever asked for by the largest v2 header", () => {
    expect(PROXY_HEADER_LIMIT).toBe(16 + 4096);
  });
});

describe("v1, the spec's examples", () => {
  it("reads the line before an HTTP request, and not a byte of the request", () => {
    const line = bin("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n");
    const reading = readHeader(join(line, bin("GET / HTTP/1.1\r\nHost: 192.168.0.11\r\n\r\n")));
    expect(reading.steps).toEqual(["read 15", "readLine 92", "done"]);
    expect(reading.consumed).toBe(line.length);
    expect(reading.last).toEqual({ kind: "done", header: proxied("tcp4", "192.168.0.1", 56324, "192.168.0.11", 443) });
  });

  it("takes the longest TCP4 line, 56 bytes", () => {
    const line = bin("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n");
    expect(line.length).toBe(56);
    expect(headerOf(line)).toEqual(proxied("tcp4", "255.255.255.255", 65535, "255.255.255.255", 65535));
  });

  it("takes the longest TCP6 line, 104 bytes", () => {
    const full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    const line = bin(`PROXY TCP6 ${full} ${full} 65535 65535\r\n`);
    expect(line.length).toBe(104);
    expect(headerOf(line)).toEqual(proxied("tcp6", full, 65535, full, 65535));
  });

  it("takes the short UNKNOWN line in the first read alone", () => {
    const reading = readHeader(join(bin("PROXY UNKNOWN\r\n"), CLIENT));
    expect(reading.steps).toEqual(["read 15", "done"]);
    expect(reading.consumed).toBe(15);
    expect(reading.last).toEqual({ kind: "done", header: LOCAL });
  });

  it("takes the worst case, UNKNOWN with addresses, 107 bytes, and ignores what follows UNKNOWN", () => {
    const full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    const line = bin(`PROXY UNKNOWN ${full} ${full} 65535 65535\r\n`);
    expect(line.length).toBe(107);
    expect(headerOf(line)).toEqual(LOCAL);
    expect(headerOf(bin("PROXY UNKNOWN anything \x00\xff at all\r\n"))).toEqual(LOCAL);
    expect(headerOf(bin("PROXY UNKNOWN \r\n"))).toEqual(LOCAL);
  });
});

describe("v1 addresses", () => {
  it("takes the ends of the ranges", () => {
    expect(headerOf(bin("PROXY TCP4 0.0.0.0 10.0.0.1 0 1\r\n"))).toEqual(proxied("tcp4", "0.0.0.0", 0, "10.0.0.1", 1));
    expect(headerOf(bin("PROXY TCP6 :: ::1 0 65535\r\n"))).toEqual(proxied("tcp6", "::", 0, "::1", 65535));
  });

  it.each([
    ["2001:DB8::1", "2001:db8::1"],
    ["2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["2001:db8::1:0:0:1", "2001:db8::1:0:0:1"],
    ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ["1::", "1::"],
    ["::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"],
    ["1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"],
    ["0:0:0:0:0:0:0:0", "::"],
    ["FE80::A:B", "fe80::a:b"],
    ["::ffff:192.0.2.1", "::ffff:192.0.2.1"],
    ["::FFFF:c000:201", "::ffff:192.0.2.1"],
    ["0:0:0:0:0:ffff:192.0.2.1", "::ffff:192.0.2.1"],
    ["::192.0.2.1", "::c000:201"],
    ["::1:ffff:192.0.2.1", "::1:ffff:c000:201"],
    ["1::ffff:192.0.2.1", "1::ffff:c000:201"],
    ["::fffe:192.0.2.1", "::fffe:c000:201"],
    ["64:ff9b::192.0.2.1", "64:ff9b::c000:201"],
    ["1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"],
  ])("prints the IPv6 address %s as %s (RFC 5952)", (text, canonical) => {
    expect(headerOf(bin(`PROXY TCP6 ${text} ::1 1 2\r\n`))).toEqual(proxied("tcp6", canonical, 1, "::1", 2));
    expect(headerOf(bin(`PROXY TCP6 ::1 ${text} 1 2\r\n`))).toEqual(proxied("tcp6", "::1", 1, canonical, 2));
  });
});

describe("v1 refusals", () => {
  it.each(["GET / HTTP/1.1\r\n", "USER alice\r\n", "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "PROXZ TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY\tTCP4 1.2.3.4 5.6.7.8 1 2\r\n", "PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n"])(
    "refuses %j: not a PROXY header",
    (text) => {
      const reading = readHeader(join(bin(text), CLIENT));
      expect(reading.steps).toEqual(["read 15", "malformed: not a PROXY header"]);
    },
  );

  it("refuses a line without CRLF in 107 bytes, having read exactly 107", () => {
    const reading = readHeader(bin(`PROXY UNKNOWN ${"x".repeat(200)}\r\n`));
    expect(reading.steps).toEqual(["read 15", "readLine 92", "malformed: v1: no CRLF in 107 bytes"]);
    expect(reading.consumed).toBe(107);
  });

  it("refuses a line whose CRLF comes one byte too late", () => {
    const line = bin(`PROXY UNKNOWN ${"x".repeat(92)}\r\n`);
    expect(line.length).toBe(108);
    expect(refusal(line)).toBe("v1: no CRLF in 107 bytes");
    // A reader that read more than it was asked for:
    expect(proxyStep(line)).toEqual({ kind: "malformed", reason: "v1: line longer than 107 bytes" });
  });

  it("refuses a line ended by LF alone", () => {
    expect(refusal(bin("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"))).toBe("v1: line not ended by CRLF");
    expect(refusal(bin("PROXY UNKNOWN\n"))).toBe("v1: line not ended by CRLF");
  });

  it("does not end a line at CR alone", () => {
    expect(refusal(bin("PROXY TCP4 1.2.3.4\r5.6.7.8 1 2\r\n"))).toBe("v1: TCP4 needs 4 fields after it");
    expect(refusal(bin("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n"))).toBe("v1: bad destination port");
  });

  it("refuses a short bad line found in the first read", () => {
    const reading = readHeader(bin("PROXY X\r\nUSER alice\r\n"));
    expect(reading.steps).toEqual(["read 15", "malformed: v1: unknown protocol"]);
  });

  it.each(["PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY UNKNOWNX\r\n", "PROXY unknown\r\n", "PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY \r\n"])(
    "refuses %j: unknown protocol",
    (text) => {
      expect(refusal(bin(text))).toBe("v1: unknown protocol");
    },
  );

  it.each([
    ["PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "v1: TCP4 needs 4 fields after it"],
    ["PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", "v1: TCP4 needs 4 fields after it"],
    ["PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", "v1: TCP4 needs 4 fields after it"],
    ["PROXY TCP6 ::1 ::2 1\r\n", "v1: TCP6 needs 4 fields after it"],
    ["PROXY TCP4\r\n", "v1: TCP4 needs 4 fields after it"],
    ["PROXY TCP4 1.2.3.4  5.6.7.8 1\r\n", "v1: destination is not an IPv4 address"],
    ["PROXY TCP4 1.2.3.4 5.6.7.8  2\r\n", "v1: bad source port"],
  ])("refuses %j: %s", (text, reason) => {
    expect(refusal(bin(text))).toBe(reason);
  });

  it.each(["256.1.1.1", "1.2.3.256", "01.2.3.4", "1.2.3.00", "1.2.3", "1.2.3.4.5", "1..2.3", "+1.2.3.4", "1.2.3.-4", "1.2.3.4a", "0x1.2.3.4", "", "1.2.3.4/32", "١.2.3.4"])(
    "refuses the IPv4 address %j",
    (address) => {
      expect(refusal(bin(`PROXY TCP4 ${address} 5.6.7.8 1 2\r\n`))).toBe("v1: source is not an IPv4 address");
      expect(refusal(bin(`PROXY TCP4 5.6.7.8 ${address} 1 2\r\n`))).toBe("v1: destination is not an IPv4 address");
    },
  );

  it.each([
    "1:2:3:4:5:6:7",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7:8::",
    "::1:2:3:4:5:6:7:8",
    "1::2::3",
    ":::",
    "12345::",
    "g::",
    "1:",
    ":1",
    "1:2:3:4:5:6:7:",
    "::1%eth0",
    "::1.2.3.4.5",
    "1.2.3.4::",
    "::1.2.3.4:1",
    "::ffff:01.2.3.4",
    "1:2:3:4:5:6:7:1.2.3.4",
    "[::1]",
    "",
  ])("refuses the IPv6 address %j", (address) => {
    expect(refusal(bin(`PROXY TCP6 ${address} ::1 1 2\r\n`))).toBe("v1: source is not an IPv6 address");
    expect(refusal(bin(`PROXY TCP6 ::1 ${address} 1 2\r\n`))).toBe("v1: destination is not an IPv6 address");
  });

  it("refuses IPv6 addresses in a TCP4 line and IPv4 addresses in a TCP6 line", () => {
    expect(refusal(bin("PROXY TCP4 ::1 5.6.7.8 1 2\r\n"))).toBe("v1: source is IPv6 in a TCP4 line");
    expect(refusal(bin("PROXY TCP4 1.2.3.4 ::ffff:5.6.7.8 1 2\r\n"))).toBe("v1: destination is IPv6 in a TCP4 line");
    expect(refusal(bin("PROXY TCP6 1.2.3.4 ::1 1 2\r\n"))).toBe("v1: source is IPv4 in a TCP6 line");
    expect(refusal(bin("PROXY TCP6 ::1 5.6.7.8 1 2\r\n"))).toBe("v1: destination is IPv4 in a TCP6 line");
  });

  it.each(["65536", "99999", "01", "00", "-1", "+1", "1a", "0x10", "1e3", "", "1.0", "١"])("refuses the port %j", (port) => {
    expect(refusal(bin(`PROXY TCP4 1.2.3.4 5.6.7.8 ${port} 2\r\n`))).toBe("v1: bad source port");
    expect(refusal(bin(`PROXY TCP4 1.2.3.4 5.6.7.8 1 ${port}\r\n`))).toBe("v1: bad destination port");
  });

  it("refuses bytes past the line, received by a reader that read more than asked", () => {
    expect(proxyStep(bin("PROXY UNKNOWN\r\nU"))).toEqual({ kind: "malformed", reason: "read past the header" });
    expect(proxyStep(bin("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nUSER"))).toEqual({ kind: "malformed", reason: "read past the header" });
  });
});

describe("v2", () => {
  it("reads TCP over IPv4 in three steps, and not a byte of the client's", () => {
    const header = v2(PROXY, 0x11, IPV4_BLOCK);
    const reading = readHeader(join(header, CLIENT));
    expect(reading.steps).toEqual(["read 15", "read 1", "read 12", "done"]);
    expect(reading.consumed).toBe(28);
    expect(reading.last).toEqual({ kind: "done", header: proxied("tcp4", "192.0.2.1", 56324, "198.51.100.7", 110) });
  });

  it("reads TCP over IPv6, printed in RFC 5952 form", () => {
    const reading = readHeader(join(v2(PROXY, 0x21, IPV6_BLOCK), CLIENT));
    expect(reading.steps).toEqual(["read 15", "read 1", "read 36", "done"]);
    expect(reading.consumed).toBe(52);
    expect(reading.last).toEqual({ kind: "done", header: proxied("tcp6", "2001:db8::1", 56324, "2001:db8:0:1::7", 110) });
  });

  it("keeps an IPv4-mapped IPv6 address as IPv6 text", () => {
    const mapped = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1];
    const header = v2(PROXY, 0x21, [...mapped, ...IPV6_BLOCK.slice(16, 32), ...u16(1), ...u16(2)]);
    expect(headerOf(header)).toEqual(proxied("tcp6", "::ffff:192.0.2.1", 1, "2001:db8:0:1::7", 2));
  });

  it("prints all-zero, all-ones and single-zero-group IPv6 addresses in RFC 5952 form", () => {
    const zeros = new Array<number>(16).fill(0);
    const ones = new Array<number>(16).fill(0xff);
    const oneZeroGroup = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1];
    expect(headerOf(v2(PROXY, 0x21, [...zeros, ...ones, 0, 0, 0xff, 0xff]))).toEqual(proxied("tcp6", "::", 0, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535));
    expect(headerOf(v2(PROXY, 0x21, [...oneZeroGroup, ...zeros, 0, 1, 0, 2]))).toEqual(proxied("tcp6", "2001:db8:0:1:1:1:1:1", 1, "::", 2));
  });

  it("skips TLVs after the addresses, whatever they say", () => {
    const alpn = [0x01, ...u16(4), ...bin("pop3")];
    const authority = [0x02, ...u16(16), ...bin("mail.example.org")];
    const noop = [0x04, ...u16(3), 0, 0, 0];
    const ssl = [0x20, ...u16(13), 0x01, 0, 0, 0, 0, 0x21, ...u16(7), ...bin("TLSv1.3")];
    const header = v2(PROXY, 0x11, [...IPV4_BLOCK, ...alpn, ...authority, ...noop, ...ssl]);
    const reading = readHeader(join(header, CLIENT));
    expect(reading.steps).toEqual(["read 15", "read 1", `read ${header.length - 16}`, "done"]);
    expect(reading.consumed).toBe(header.length);
    expect(reading.last).toEqual({ kind: "done", header: proxied("tcp4", "192.0.2.1", 56324, "198.51.100.7", 110) });
  });

  it("skips TLVs that overrun the declared length, or are cut short, or are not TLVs at all", () => {
    const overrun = [0x02, ...u16(0xffff), ...bin("mail")];
    expect(headerOf(v2(PROXY, 0x11, [...IPV4_BLOCK, ...overrun]))).toEqual(proxied("tcp4", "192.0.2.1", 56324, "198.51.100.7", 110));
    expect(headerOf(v2(PROXY, 0x21, [...IPV6_BLOCK, 0x05]))).toEqual(proxied("tcp6", "2001:db8::1", 56324, "2001:db8:0:1::7", 110));
    expect(headerOf(v2(PROXY, 0x11, [...IPV4_BLOCK, ...CLIENT]))).toEqual(proxied("tcp4", "192.0.2.1", 56324, "198.51.100.7", 110));
  });

  it("reads LOCAL without addresses in two steps", () => {
    const reading = readHeader(join(v2(LOCAL_COMMAND, 0x00, []), CLIENT));
    expect(reading.steps).toEqual(["read 15", "read 1", "done"]);
    expect(reading.consumed).toBe(16);
    expect(reading.last).toEqual({ kind: "done", header: LOCAL });
  });

  it("skips LOCAL's addresses, and ignores its family byte", () => {
    expect(headerOf(v2(LOCAL_COMMAND, 0x11, IPV4_BLOCK))).toEqual(LOCAL);
    expect(headerOf(v2(LOCAL_COMMAND, 0x00, IPV6_BLOCK))).toEqual(LOCAL);
    expect(headerOf(v2(LOCAL_COMMAND, 0xff, []))).toEqual(LOCAL);
    expect(headerOf(v2(LOCAL_COMMAND, 0x21, []))).toEqual(LOCAL);
  });

  it("keeps the launcher's addresses for AF_UNSPEC", () => {
    expect(headerOf(v2(PROXY, 0x00, []))).toEqual(LOCAL);
    expect(headerOf(v2(PROXY, 0x00, IPV4_BLOCK))).toEqual(LOCAL);
  });

  it("keeps the launcher's addresses for AF_UNIX, stream or datagram, and skips its 216 bytes", () => {
    const unix = [...bin("/run/client.sock"), ...new Array<number>(108 - 16).fill(0), ...bin("/run/pop3.sock"), ...new Array<number>(108 - 14).fill(0)];
    expect(unix.length).toBe(216);
    const reading = readHeader(join(v2(PROXY, 0x31, unix), CLIENT));
    expect(reading.steps).toEqual(["read 15", "read 1", "read 216", "done"]);
    expect(reading.last).toEqual({ kind: "done", header: LOCAL });
    expect(headerOf(v2(PROXY, 0x32, unix))).toEqual(LOCAL);
  });

  it("keeps the launcher's addresses for UDP, and for an address family without a transport", () => {
    expect(headerOf(v2(PROXY, 0x12, IPV4_BLOCK))).toEqual(LOCAL);
    expect(headerOf(v2(PROXY, 0x22, IPV6_BLOCK))).toEqual(LOCAL);
    expect(headerOf(v2(PROXY, 0x10, IPV4_BLOCK))).toEqual(LOCAL);
    expect(headerOf(v2(PROXY, 0x20, IPV6_BLOCK))).toEqual(LOCAL);
    expect(headerOf(v2(PROXY, 0x01, []))).toEqual(LOCAL);
  });

  it("takes the longest length accepted, 4096, to PROXY_HEADER_LIMIT bytes exactly", () => {
    const header = v2(PROXY, 0x11, [...IPV4_BLOCK, ...new Array<number>(4096 - 12).fill(0x04)]);
    const reading = readHeader(join(header, CLIENT));
    expect(reading.steps).toEqual(["read 15", "read 1", "read 4096", "done"]);
    expect(reading.consumed).toBe(PROXY_HEADER_LIMIT);
  });
});

describe("v2 refusals", () => {
  it.each(V2_SIGNATURE.map((_, i) => i).slice(1))("refuses a signature wrong at byte %i, in the first read", (i) => {
    const header = v2(PROXY, 0x11, IPV4_BLOCK);
    header[i] = header[i]! ^ 0x20;
    const reading = readHeader(join(header, CLIENT));
    expect(reading.steps).toEqual(["read 15", "malformed: not a PROXY header"]);
  });

  it("refuses a first byte that begins neither version", () => {
    for (const first of [0x00, 0x0a, 0x16, 0x2b, 0x51, 0x70, 0xff]) {
      expect(readHeader(join([first], bin("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"))).steps).toEqual(["read 15", "malformed: not a PROXY header"]);
    }
  });

  it.each([0x0, 0x1, 0x3, 0xf])("refuses version %i, having read 16 bytes", (version) => {
    const reading = readHeader(join(v2((version << 4) | 0x1, 0x11, IPV4_BLOCK), CLIENT));
    expect(reading.steps).toEqual(["read 15", "read 1", `malformed: v2: unknown version ${version}`]);
    expect(reading.consumed).toBe(16);
  });

  it.each([0x2, 0x3, 0x8, 0xf])("refuses command %i", (command) => {
    expect(refusal(v2(0x20 | command, 0x11, IPV4_BLOCK))).toBe(`v2: unknown command ${command}`);
  });

  it.each([0x4, 0x5, 0x8, 0xf])("refuses address family %i", (family) => {
    expect(refusal(v2(PROXY, (family << 4) | 0x1, IPV4_BLOCK))).toBe(`v2: unknown address family ${family}`);
  });

  it.each([0x3, 0x4, 0xf])("refuses transport %i", (transport) => {
    expect(refusal(v2(PROXY, 0x10 | transport, IPV4_BLOCK))).toBe(`v2: unknown transport ${transport}`);
    expect(refusal(v2(PROXY, 0x00 | transport, []))).toBe(`v2: unknown transport ${transport}`);
  });

  it.each([
    ["TCP over IPv4", 0x11, 11, 12],
    ["UDP over IPv4", 0x12, 0, 12],
    ["IPv4 without transport", 0x10, 4, 12],
    ["TCP over IPv6", 0x21, 35, 36],
    ["UDP over IPv6", 0x22, 12, 36],
    ["UNIX stream", 0x31, 215, 216],
    ["UNIX datagram", 0x32, 0, 216],
  ])("refuses %s with a length of %i, under the %i its addresses need, before reading them", (_, familyTransport, length, needed) => {
    const reading = readHeader(join(v2(PROXY, familyTransport, new Array<number>(length).fill(0)), CLIENT));
    expect(reading.steps).toEqual(["read 15", "read 1", `malformed: v2: length ${length} under the address block's ${needed}`]);
  });

  it.each([4097, 8192, 65535])("refuses a length of %i, before reading it", (length) => {
    for (const versionCommand of [PROXY, LOCAL_COMMAND]) {
      const reading = readHeader(join(v2(versionCommand, 0x11, IPV4_BLOCK, length), new Uint8Array(length)));
      expect(reading.steps).toEqual(["read 15", "read 1", `malformed: v2: length ${length} over 4096`]);
      expect(reading.consumed).toBe(16);
    }
  });

  it("refuses bytes past the header, received by a reader that read more than asked", () => {
    expect(proxyStep(join(v2(PROXY, 0x11, IPV4_BLOCK), [0x55]))).toEqual({ kind: "malformed", reason: "read past the header" });
    expect(proxyStep(join(v2(LOCAL_COMMAND, 0x00, []), CLIENT))).toEqual({ kind: "malformed", reason: "read past the header" });
  });
});

describe("any prefix of a header", () => {
  const headers = [
    bin("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"),
    bin("PROXY TCP6 2001:db8::1 2001:db8::2 56324 110\r\n"),
    bin("PROXY UNKNOWN\r\n"),
    bin("PROXY UNKNOWN whatever\r\n"),
    v2(PROXY, 0x11, IPV4_BLOCK),
    v2(PROXY, 0x21, [...IPV6_BLOCK, 0x01, ...u16(4), ...bin("pop3")]),
    v2(LOCAL_COMMAND, 0x00, []),
  ];

  it.each(headers.map((header) => [header]))("asks for no byte past the header, from any prefix (%#)", (header) => {
    for (let n = 0; n < header.length; n++) {
      const step = proxyStep(header.subarray(0, n));
      if (step.kind === "read") {
        expect(step.bytes).toBeGreaterThan(0);
        expect(n + step.bytes).toBeLessThanOrEqual(header.length);
      } else {
        expect(step.kind).toBe("readLine");
        if (step.kind === "readLine") expect(n + step.limit).toBeGreaterThanOrEqual(header.length);
      }
    }
    expect(proxyStep(header).kind).toBe("done");
  });

  it.each(headers.map((header) => [header]))("comes out whole when read a byte at a time (%#)", (header) => {
    let received = header.subarray(0, 0);
    let step = proxyStep(received);
    while (step.kind === "read" || step.kind === "readLine") {
      received = header.subarray(0, received.length + 1);
      step = proxyStep(received);
    }
    expect(step.kind).toBe("done");
    expect(received.length).toBe(header.length);
  });
});

describe("the environment tcpserver would have set", () => {
  const launcher = {
    PROTO: "TCP6",
    TCPLOCALIP: "2001:db8::10",
    TCPLOCALPORT: "110",
    TCPLOCALHOST: "pop.internal",
    TCPREMOTEIP: "2001:db8::fe",
    TCPREMOTEPORT: "40000",
    TCPREMOTEHOST: "balancer.internal",
    TCP6LOCALIP: "2001:db8::10",
    TCP6LOCALPORT: "110",
    TCP6LOCALHOST: "pop.internal",
    TCP6REMOTEIP: "2001:db8::fe",
    TCP6REMOTEPORT: "40000",
    TCP6REMOTEHOST: "balancer.internal",
    TCP6INTERFACE: "eth0",
    PATH: "/bin",
  };

  it("changes nothing for LOCAL and UNKNOWN", () => {
    expect(proxyEnvironment(LOCAL)).toEqual({});
  });

  /** LOCALIP, LOCALPORT, REMOTEIP and REMOTEPORT after prefix (TCP or TCP6): these values, or each unset. */
  const addressNames = (prefix: "TCP" | "TCP6", values?: { LOCALIP: string; LOCALPORT: string; REMOTEIP: string; REMOTEPORT: string }) =>
    Object.fromEntries((["LOCALIP", "LOCALPORT", "REMOTEIP", "REMOTEPORT"] as const).map((name) => [`${prefix}${name}`, values?.[name]]));
  /** Unset under any proxied header: what tcpserver found for the balancer's own connection. */
  const BALANCER_NAMES_UNSET = {
    TCPLOCALHOST: undefined,
    TCPREMOTEHOST: undefined,
    TCPREMOTEINFO: undefined,
    TCP6LOCALHOST: undefined,
    TCP6REMOTEHOST: undefined,
    TCP6INTERFACE: undefined,
  };

  it("sets the TCP* names for IPv4, and unsets the TCP6* ones and the names found for the balancer", () => {
    const ipv4 = { LOCALIP: "198.51.100.7", LOCALPORT: "110", REMOTEIP: "192.0.2.1", REMOTEPORT: "56324" };
    expect(proxyEnvironment(proxied("tcp4", "192.0.2.1", 56324, "198.51.100.7", 110))).toStrictEqual({
      ...addressNames("TCP", ipv4),
      ...addressNames("TCP6"),
      ...BALANCER_NAMES_UNSET,
    });
  });

  it("sets both the TCP* and the TCP6* names for IPv6, as ucspi-tcp6 does", () => {
    const ipv6 = { LOCALIP: "2001:db8:0:1::7", LOCALPORT: "110", REMOTEIP: "2001:db8::1", REMOTEPORT: "56324" };
    expect(proxyEnvironment(proxied("tcp6", "2001:db8::1", 56324, "2001:db8:0:1::7", 110))).toStrictEqual({
      ...addressNames("TCP", ipv6),
      ...addressNames("TCP6", ipv6),
      ...BALANCER_NAMES_UNSET,
    });
  });

  it("laid over a launcher on IPv6, makes the log show the client, not the balancer", () => {
    const config = (header: ProxyHeader) => readConfig(["pop.example", "checkpassword"], { ...launcher, ...proxyEnvironment(header) }, undefined, launcher);
    expect(config(proxied("tcp4", "192.0.2.1", 56324, "198.51.100.7", 110))).toMatchObject({ remoteIp: "192.0.2.1", remoteHost: "unknown", implicitTls: false });
    expect(config(proxied("tcp6", "::ffff:192.0.2.1", 56324, "::ffff:198.51.100.7", 995))).toMatchObject({ remoteIp: "192.0.2.1", remoteHost: "unknown" });
    expect(config(proxied("tcp6", "2001:db8::1", 56324, "2001:db8::7", 110))).toMatchObject({ remoteIp: "2001:db8::1", remoteHost: "unknown" });
    expect(config(LOCAL)).toMatchObject({ remoteIp: "2001:db8::fe", remoteHost: "balancer.internal" });
  });

  it("never turns implicit TLS on or off: that is the launcher's knowledge, not the header's", () => {
    const config = (env: Record<string, string>, header: ProxyHeader) => readConfig(["pop.example", "checkpassword"], { ...env, ...proxyEnvironment(header) }, undefined, env);
    const plain = { TCPLOCALPORT: "110", UCSPITLS: "!" };
    expect(config(plain, proxied("tcp4", "192.0.2.1", 56324, "198.51.100.7", 995))).toMatchObject({ implicitTls: false, stls: "required" });
    expect(config(plain, proxied("tcp6", "2001:db8::1", 56324, "2001:db8::7", 995))).toMatchObject({ implicitTls: false, stls: "required" });
    expect(config({ TCPLOCALPORT: "995" }, proxied("tcp4", "192.0.2.1", 56324, "198.51.100.7", 110))).toMatchObject({ implicitTls: true });
  });
});
