// Property-based tests of the PROXY header reader: a reader that does what
// proxyStep says takes exactly a valid header and its addresses, whatever
// follows it and however its reads come back short; and on any bytes at all
// it ends, in done or malformed, within PROXY_HEADER_LIMIT bytes. FUZZ_RUNS
// and FUZZ_SEED as in core.test.ts (default 1000 runs).

import fc from "fast-check";
import { TIMEOUT, check } from "./runs.ts";
import { describe, expect, test } from "vitest";
import { PROXY_HEADER_LIMIT, proxyStep, type ProxyHeader, type ProxyStep } from "../../src/core/proxy-protocol.ts";
import { LOCAL, V2_SIGNATURE, proxied, u16, v2 } from "../proxy-headers.ts";

const LF = 0x0a;
const latin1 = (text: string): number[] => [...Buffer.from(text, "latin1")];

// --- the reader --------------------------------------------------------------------

type Reading = { readonly last: ProxyStep; readonly consumed: number; readonly ended: boolean };

/**
 * Does what each step says, reading from the stream: `read` takes that many
 * bytes, `readLine` up to and including LF but at most `limit`. A read may
 * come back short (the next of `shortReads`, if any, caps it), and the reader
 * then asks proxyStep again with what it has. It also checks that no step
 * asks for nothing or for more than PROXY_HEADER_LIMIT in all.
 */
function readHeader(stream: Uint8Array, shortReads: readonly number[] = []): Reading {
  let received = stream.subarray(0, 0);
  let short = 0;
  for (;;) {
    const step = proxyStep(received);
    if (step.kind === "done" || step.kind === "malformed") return { last: step, consumed: received.length, ended: false };
    const asked = step.kind === "read" ? step.bytes : step.limit;
    expect(asked).toBeGreaterThan(0);
    expect(received.length + asked).toBeLessThanOrEqual(PROXY_HEADER_LIMIT);
    const cap = Math.min(asked, shortReads[short++] ?? asked);
    let end = received.length + cap;
    if (step.kind === "readLine") {
      const lf = stream.indexOf(LF, received.length);
      if (lf >= 0 && lf < end) end = lf + 1;
    }
    if (end > stream.length) return { last: step, consumed: received.length, ended: true };
    received = stream.subarray(0, end);
  }
}

// --- the expected addresses, worked out independently --------------------------------

/**
 * RFC 5952 text by way of the WHATWG URL parser (which compresses the first
 * longest zero run the same way), with an IPv4-mapped address in mixed
 * notation (RFC 5952 section 5), as qmail-popup prints it.
 */
function canonicalIpv6(text: string): string {
  const hostname = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(hostname);
  if (mapped === null) return hostname;
  const [high, low] = [parseInt(mapped[1]!, 16), parseInt(mapped[2]!, 16)];
  return `::ffff:${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
}

const fullIpv6Text = (bytes: readonly number[]): string =>
  Array.from({ length: 8 }, (_, i) => ((bytes[2 * i]! << 8) | bytes[2 * i + 1]!).toString(16).padStart(4, "0")).join(":");

// --- valid headers -----------------------------------------------------------------

type Case = { readonly header: Uint8Array; readonly expected: ProxyHeader };

const port = fc.integer({ min: 0, max: 65535 });
const anyByte = fc.integer({ min: 0, max: 255 });
const byteArray = (maxLength: number, minLength = 0) => fc.array(anyByte, { minLength, maxLength });

/** IPv6 text as senders might write it: fast-check's forms (compressed, dotted tail, leading zeros), in any case. */
const ipv6Text = fc
  .tuple(fc.ipV6(), fc.array(fc.boolean(), { minLength: 39, maxLength: 39 }))
  .map(([text, upper]) => [...text].map((c, i) => (upper[i % upper.length] ? c.toUpperCase() : c)).join(""));

const v1Tcp4: fc.Arbitrary<Case> = fc.tuple(fc.ipV4(), fc.ipV4(), port, port).map(([source, destination, sourcePort, destinationPort]) => ({
  header: Uint8Array.from(latin1(`PROXY TCP4 ${source} ${destination} ${sourcePort} ${destinationPort}\r\n`)),
  expected: proxied("tcp4", source, sourcePort, destination, destinationPort),
}));

const v1Tcp6: fc.Arbitrary<Case> = fc
  .tuple(ipv6Text, ipv6Text, port, port)
  .map(([source, destination, sourcePort, destinationPort]) => ({
    header: Uint8Array.from(latin1(`PROXY TCP6 ${source} ${destination} ${sourcePort} ${destinationPort}\r\n`)),
    expected: proxied("tcp6", canonicalIpv6(source), sourcePort, canonicalIpv6(destination), destinationPort),
  }))
  .filter(({ header }) => header.length <= 107);

/** UNKNOWN, alone or followed by a space and anything but LF. */
const v1Unknown: fc.Arbitrary<Case> = fc
  .option(fc.array(anyByte.filter((b) => b !== LF), { maxLength: 90 }))
  .map((rest) => ({
    header: Uint8Array.from([...latin1("PROXY UNKNOWN"), ...(rest === null ? [] : [0x20, ...rest]), ...latin1("\r\n")]),
    expected: LOCAL,
  }));

/** What follows the addresses within the length: TLVs or not, sometimes up to the longest length accepted. */
const tlvs = (addressLength: number) =>
  fc.oneof(
    { weight: 8, arbitrary: byteArray(300) },
    { weight: 1, arbitrary: fc.integer({ min: 4096 - addressLength - 8, max: 4096 - addressLength }).map((n) => new Array<number>(n).fill(0x04)) },
  );

const v2Tcp4: fc.Arbitrary<Case> = fc
  .tuple(byteArray(4, 4), byteArray(4, 4), port, port, tlvs(12))
  .map(([source, destination, sourcePort, destinationPort, rest]) => ({
    header: v2(0x21, 0x11, [...source, ...destination, ...u16(sourcePort), ...u16(destinationPort), ...rest]),
    expected: proxied("tcp4", source.join("."), sourcePort, destination.join("."), destinationPort),
  }));

const MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];
/** IPv6 address bytes: random, or mostly zeros (to make runs to compress), or IPv4-mapped, or nearly so. */
const ipv6Bytes = fc.oneof(
  byteArray(16, 16),
  fc.array(fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: anyByte }), { minLength: 16, maxLength: 16 }),
  byteArray(4, 4).map((ipv4) => [...MAPPED_PREFIX, ...ipv4]),
  fc.tuple(byteArray(4, 4), fc.integer({ min: 0, max: 11 }), anyByte).map(([ipv4, at, byte]) => {
    const bytes = [...MAPPED_PREFIX, ...ipv4];
    bytes[at] = byte;
    return bytes;
  }),
);

const v2Tcp6: fc.Arbitrary<Case> = fc
  .tuple(ipv6Bytes, ipv6Bytes, port, port, tlvs(36))
  .map(([source, destination, sourcePort, destinationPort, rest]) => ({
    header: v2(0x21, 0x21, [...source, ...destination, ...u16(sourcePort), ...u16(destinationPort), ...rest]),
    expected: proxied("tcp6", canonicalIpv6(fullIpv6Text(source)), sourcePort, canonicalIpv6(fullIpv6Text(destination)), destinationPort),
  }));

/** LOCAL, whatever its family byte and body. */
const v2Local: fc.Arbitrary<Case> = fc.tuple(anyByte, byteArray(300)).map(([familyTransport, body]) => ({ header: v2(0x20, familyTransport, body), expected: LOCAL }));

/** PROXY for what tcpserver would not describe: AF_UNSPEC, AF_UNIX, UDP, a family without transport. */
const v2Unsupported: fc.Arbitrary<Case> = fc
  .tuple(fc.constantFrom(0x00, 0x01, 0x02, 0x10, 0x12, 0x20, 0x22, 0x30, 0x31, 0x32), byteArray(300))
  .chain(([familyTransport, rest]) =>
    byteArray([0, 12, 36, 216][familyTransport >> 4]!, [0, 12, 36, 216][familyTransport >> 4]!).map((addresses) => ({
      header: v2(0x21, familyTransport, [...addresses, ...rest]),
      expected: LOCAL,
    })),
  );

const validHeader = fc.oneof(v1Tcp4, v1Tcp6, v1Unknown, v2Tcp4, v2Tcp6, v2Local, v2Unsupported);

/** The client's bytes after the header: anything, often a POP3 line or line ends. */
const trailing = fc.oneof(byteArray(64), fc.constantFrom(latin1("USER alice\r\n"), latin1("\r\n"), latin1("\n"), latin1("PROXY UNKNOWN\r\n"), V2_SIGNATURE));

/** How short the reads come back, in turn: often not at all. */
const shortReads = fc.oneof(fc.constant([] as number[]), fc.array(fc.integer({ min: 1, max: 20 }), { maxLength: 40 }));

// --- any bytes ---------------------------------------------------------------------

/** Anything that starts like a v2 header: the signature (maybe damaged), likely bytes after it, then anything. */
const v2ish = fc
  .tuple(
    fc.oneof({ weight: 4, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 0, max: 11 }), anyByte) }),
    fc.oneof(fc.constantFrom(0x20, 0x21), anyByte),
    fc.oneof(fc.constantFrom(0x00, 0x11, 0x12, 0x21, 0x22, 0x31, 0x32), anyByte),
    fc.oneof(fc.constantFrom(0, 11, 12, 35, 36, 215, 216, 4096, 4097, 65535), fc.integer({ min: 0, max: 65535 })),
    byteArray(300),
  )
  .map(([damage, versionCommand, familyTransport, length, body]) => {
    const signature = [...V2_SIGNATURE];
    if (damage !== null) signature[damage[0]] = damage[1];
    return [...signature, versionCommand, familyTransport, ...u16(length), ...body];
  });

/** Anything that starts like a v1 line: "PROXY " then protocol-ish words, addresses, spaces, CRs, LFs. */
const v1ish = fc
  .array(
    fc.oneof(
      fc.constantFrom("TCP4", "TCP6", "UNKNOWN", " ", "  ", "\r", "\n", "\r\n", "0", "65535", "65536", "01", "::", ":", ".", "255", "256", "ffff"),
      fc.ipV4(),
      fc.ipV6(),
      byteArray(8).map((bytes) => Buffer.from(bytes).toString("latin1")),
    ),
    { maxLength: 30 },
  )
  .map((words) => latin1(`PROXY ${words.join("")}`));

/** A valid header with one byte changed, removed or added. */
const nearlyValid = fc
  .tuple(validHeader, fc.nat(), fc.constantFrom("change", "remove", "add"), anyByte)
  .map(([{ header }, at, edit, byte]) => {
    const bytes = [...header];
    const i = at % bytes.length;
    if (edit === "change") bytes[i] = byte;
    else if (edit === "remove") bytes.splice(i, 1);
    else bytes.splice(i, 0, byte);
    return bytes;
  });

const anyStart = fc.oneof(
  { weight: 1, arbitrary: byteArray(200) },
  { weight: 3, arbitrary: v1ish },
  { weight: 3, arbitrary: v2ish },
  { weight: 3, arbitrary: nearlyValid },
  { weight: 1, arbitrary: byteArray(32).map((bytes) => [0x50, ...bytes]) },
  { weight: 1, arbitrary: byteArray(32).map((bytes) => [0x0d, ...bytes]) },
);

// --- properties --------------------------------------------------------------------

describe("the PROXY header reader", () => {
  test(
    "takes exactly a valid header, whatever follows and however the reads come back, and gives its addresses",
    () => {
      check(
        fc.property(validHeader, trailing, shortReads, ({ header, expected }, after, shorts) => {
          const reading = readHeader(Uint8Array.from([...header, ...after]), shorts);
          expect(reading.last).toEqual({ kind: "done", header: expected });
          expect(reading.consumed).toBe(header.length);
        }),
      );
    },
    TIMEOUT,
  );

  test(
    "ends on any bytes, done or malformed, having asked for at most PROXY_HEADER_LIMIT; done is exactly the header",
    () => {
      check(
        fc.property(anyStart, anyByte, shortReads, (start, filler, shorts) => {
          // Bytes without end, as far as the reader may go (and a little further, to catch it going there).
          const stream = new Uint8Array(PROXY_HEADER_LIMIT + 64).fill(filler);
          stream.set(start.slice(0, stream.length));
          let reading: Reading | undefined;
          expect(() => (reading = readHeader(stream, shorts))).not.toThrow();
          expect(reading!.ended).toBe(false);
          expect(["done", "malformed"]).toContain(reading!.last.kind);
          expect(reading!.consumed).toBeLessThanOrEqual(PROXY_HEADER_LIMIT);
          if (reading!.last.kind === "done") {
            // One byte more is one byte past the header.
            expect(proxyStep(stream.subarray(0, reading!.consumed + 1))).toEqual({ kind: "malformed", reason: "read past the header" });
          }
        }),
      );
    },
    TIMEOUT,
  );
});
