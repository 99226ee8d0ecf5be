// The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2)
// that a TCP load balancer sends (send-proxy, send-proxy-v2) before the
// client's first byte. What follows the header is the POP3 client's, so the
// reader must consume the header and not one byte more.
//
// The reader calls proxyStep with everything it has read so far (an empty
// array first) and does what the step says: read exactly `bytes` more, or
// read up to and including the next LF but at most `limit` more. Each step
// asks only for bytes that are certainly part of a valid header; "done" means
// every byte received is header. A short read may be handed back as it is:
// proxyStep takes any prefix. End of file before "done" is an incomplete
// header, for the reader to refuse. The total asked for never exceeds
// PROXY_HEADER_LIMIT; the reader bounds the time.
//
// v1 is one line: "PROXY TCP4|TCP6 src dst sport dport" and CRLF, or
// "PROXY UNKNOWN" followed by anything up to CRLF, at most 107 bytes. v2 is
// a 12-byte signature, a version/command byte, a family/transport byte, a
// 16-bit big-endian length and that many bytes: the addresses, then TLVs,
// which are skipped unread.
//
// IPv6 addresses come out in RFC 5952 form (lowercase, the longest run of
// zero groups as "::"), an IPv4-mapped one as "::ffff:a.b.c.d" (RFC 5952
// section 5), never turned into IPv4.

import { byteString } from "./bytes.ts";
import type { Environment } from "./config.ts";

export type ProxyAddress = { readonly ip: string; readonly port: number };

export type ProxyHeader =
  | {
      readonly kind: "proxied";
      readonly family: "tcp4" | "tcp6";
      readonly source: ProxyAddress;
      readonly destination: ProxyAddress;
    }
  /** v2 LOCAL, v1 UNKNOWN, or v2 PROXY for anything but TCP over IPv4/IPv6: keep the launcher's addresses. */
  | { readonly kind: "local" };

export type ProxyStep =
  /** Read exactly this many more bytes. */
  | { readonly kind: "read"; readonly bytes: number }
  /** v1: read up to and including the next LF, at most `limit` more bytes. */
  | { readonly kind: "readLine"; readonly limit: number }
  | { readonly kind: "done"; readonly header: ProxyHeader }
  /** reason: a few words for the operator's log. */
  | { readonly kind: "malformed"; readonly reason: string };

const CR = 0x0d;
const LF = 0x0a;

const V1_PREFIX = "PROXY ";
/** The spec's worst case, CRLF included: "PROXY UNKNOWN" and two full IPv6 addresses and ports. */
const V1_LINE_LIMIT = 107;

const V2_SIGNATURE = Uint8Array.of(0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a);
/** Signature, version/command, family/transport, length. */
const V2_FIXED_LENGTH = 16;
/**
 * The longest v2 length accepted (the spec allows 65535). It holds the
 * largest address block (AF_UNIX, 216 bytes) and every TLV the spec defines
 * at its largest (authority up to 255 bytes, unique ID up to 128, SSL with
 * its version, CN, cipher and algorithm names, ALPN, NETNS, CRC32C) with room
 * to spare for vendors' own (AWS, Azure, GCP), and keeps what one connection
 * may make us hold to a few kilobytes.
 */
const V2_LENGTH_LIMIT = 4096;
const V2_VERSION = 2;
const V2_LOCAL = 0x0;
const V2_PROXY = 0x1;
/** The address block's length for each family: AF_UNSPEC, AF_INET, AF_INET6, AF_UNIX. */
const V2_ADDRESS_LENGTH = [0, 12, 36, 216];
const V2_TRANSPORT_DGRAM = 0x2;
const V2_TCP_OVER_IPV4 = 0x11;
const V2_TCP_OVER_IPV6 = 0x21;

/**
 * The first read: the shortest v1 header, "PROXY UNKNOWN" and CRLF. Every v1
 * header is at least this long and every v2 header (16 bytes or more)
 * longer, and it is enough to tell them apart.
 */
const FIRST_READ = 15;

/** The most bytes ever asked for in total. */
export const PROXY_HEADER_LIMIT = Math.max(V1_LINE_LIMIT, V2_FIXED_LENGTH + V2_LENGTH_LIMIT);

const LOCAL: ProxyHeader = { kind: "local" };

const read = (bytes: number): ProxyStep => ({ kind: "read", bytes });
const done = (header: ProxyHeader): ProxyStep => ({ kind: "done", header });
const malformed = (reason: string): ProxyStep => ({ kind: "malformed", reason });

/** What to do next, given everything received so far (starts with an empty array). */
export function proxyStep(received: Uint8Array): ProxyStep {
  if (received.length === 0) return read(FIRST_READ);
  if (received[0] === V1_PREFIX.charCodeAt(0)) return v1Step(received);
  if (received[0] === V2_SIGNATURE[0]) return v2Step(received);
  return malformed("not a PROXY header");
}

function v1Step(received: Uint8Array): ProxyStep {
  const n = received.length;
  for (let i = 0; i < Math.min(n, V1_PREFIX.length); i++) {
    if (received[i] !== V1_PREFIX.charCodeAt(i)) return malformed("not a PROXY header");
  }
  const lf = received.indexOf(LF);
  if (lf < 0) {
    if (n >= V1_LINE_LIMIT) return malformed("v1: no CRLF in 107 bytes");
    if (n < FIRST_READ) return read(FIRST_READ - n);
    return { kind: "readLine", limit: V1_LINE_LIMIT - n };
  }
  // Only a reader that read more than it was asked for gets past 107 or past the LF.
  if (lf + 1 > V1_LINE_LIMIT) return malformed("v1: line longer than 107 bytes");
  if (received[lf - 1] !== CR) return malformed("v1: line not ended by CRLF");
  const step = v1Line(byteString(received.subarray(V1_PREFIX.length, lf - 1)));
  if (step.kind === "done" && lf + 1 < n) return malformed("read past the header");
  return step;
}

/** The line between "PROXY " and CRLF. */
function v1Line(line: string): ProxyStep {
  // The spec: for UNKNOWN, ignore anything up to the CRLF.
  if (line === "UNKNOWN" || line.startsWith("UNKNOWN ")) return done(LOCAL);
  const [protocol, ...fields] = line.split(" ");
  if (protocol !== "TCP4" && protocol !== "TCP6") return malformed("v1: unknown protocol");
  if (fields.length !== 4) return malformed(`v1: ${protocol} needs 4 fields after it`);
  const [sourceText, destinationText, sourcePortText, destinationPortText] = fields as [string, string, string, string];
  const family = protocol === "TCP4" ? "tcp4" : "tcp6";
  const sourceIp = v1Address(family, sourceText);
  const destinationIp = v1Address(family, destinationText);
  const sourcePort = decimal(sourcePortText, 65535);
  const destinationPort = decimal(destinationPortText, 65535);
  if (typeof sourceIp !== "string") return malformed(`v1: source ${sourceIp.problem}`);
  if (typeof destinationIp !== "string") return malformed(`v1: destination ${destinationIp.problem}`);
  if (sourcePort === undefined) return malformed("v1: bad source port");
  if (destinationPort === undefined) return malformed("v1: bad destination port");
  return done({
    kind: "proxied",
    family,
    source: { ip: sourceIp, port: sourcePort },
    destination: { ip: destinationIp, port: destinationPort },
  });
}

/** The address as it will be printed, or what is wrong with it (naming the other family when it is one). */
function v1Address(family: "tcp4" | "tcp6", text: string): string | { problem: string } {
  const ipv4 = ipv4Bytes(text);
  const ipv6 = ipv4 === undefined ? ipv6Bytes(text) : undefined;
  if (family === "tcp4") {
    if (ipv4 !== undefined) return text; // already canonical: no leading zeros
    return { problem: ipv6 !== undefined ? "is IPv6 in a TCP4 line" : "is not an IPv4 address" };
  }
  if (ipv6 !== undefined) return ipv6Text(ipv6);
  return { problem: ipv4 !== undefined ? "is IPv4 in a TCP6 line" : "is not an IPv6 address" };
}

/** A decimal number up to max: digits only, no sign, no leading zero but in "0". */
function decimal(text: string, max: number): number | undefined {
  if (!/^(?:0|[1-9][0-9]*)$/.test(text)) return undefined;
  const value = Number(text);
  return value <= max ? value : undefined;
}

/** A dotted quad: exactly four numbers 0-255 (no leading zeros: they would read as octal elsewhere). */
function ipv4Bytes(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const bytes = new Uint8Array(4);
  for (const [i, part] of parts.entries()) {
    const value = decimal(part, 255);
    if (value === undefined) return undefined;
    bytes[i] = value;
  }
  return bytes;
}

/**
 * An IPv6 address in RFC 4291 text: eight groups of 1-4 hex digits (any
 * case), at most one "::" standing for one or more zero groups, the last
 * two groups possibly written as a dotted quad (what inet_ntop, hence
 * HAProxy, prints for an IPv4-mapped address). No zone ("%eth0").
 */
function ipv6Bytes(text: string): Uint8Array | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const compressed = halves.length === 2;
  const head = ipv6Groups(halves[0]!, !compressed);
  const tail = compressed ? ipv6Groups(halves[1]!, true) : [];
  if (head === undefined || tail === undefined) return undefined;
  const zeroGroups = 8 - head.length - tail.length;
  if (compressed ? zeroGroups < 1 : zeroGroups !== 0) return undefined;
  const groups = [...head, ...new Array<number>(zeroGroups).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  for (const [i, group] of groups.entries()) {
    bytes[2 * i] = group >> 8;
    bytes[2 * i + 1] = group & 0xff;
  }
  return bytes;
}

/** The 16-bit groups of colon-separated hex ("" has none); a dotted quad counts as two, last only. */
function ipv6Groups(text: string, dottedLast: boolean): number[] | undefined {
  if (text === "") return [];
  const parts = text.split(":");
  const groups: number[] = [];
  for (const [i, part] of parts.entries()) {
    const ipv4 = dottedLast && i === parts.length - 1 ? ipv4Bytes(part) : undefined;
    if (ipv4 !== undefined) groups.push((ipv4[0]! << 8) | ipv4[1]!, (ipv4[2]! << 8) | ipv4[3]!);
    else if (/^[0-9A-Fa-f]{1,4}$/.test(part)) groups.push(parseInt(part, 16));
    else return undefined;
  }
  return groups;
}

function ipv4Text(bytes: Uint8Array): string {
  return Array.from(bytes.subarray(0, 4)).join(".");
}

/** RFC 5952: lowercase, no leading zeros, the first longest run of two or more zero groups as "::". */
function ipv6Text(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  if (groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff) {
    return `::ffff:${ipv4Text(bytes.subarray(12))}`;
  }
  let runStart = 0;
  let runLength = 0;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > runLength) {
      runStart = i;
      runLength = j - i;
    }
    i = j + 1;
  }
  const hex = groups.map((group) => group.toString(16));
  if (runLength < 2) return hex.join(":");
  return `${hex.slice(0, runStart).join(":")}::${hex.slice(runStart + runLength).join(":")}`;
}

function v2Step(received: Uint8Array): ProxyStep {
  const n = received.length;
  for (let i = 0; i < Math.min(n, V2_SIGNATURE.length); i++) {
    if (received[i] !== V2_SIGNATURE[i]) return malformed("not a PROXY header");
  }
  if (n < V2_FIXED_LENGTH) return read(V2_FIXED_LENGTH - n);
  // Everything but the addresses is known now: refuse before reading more.
  const version = received[12]! >> 4;
  const command = received[12]! & 0x0f;
  const familyTransport = received[13]!;
  const length = (received[14]! << 8) | received[15]!;
  if (version !== V2_VERSION) return malformed(`v2: unknown version ${version}`);
  if (command !== V2_LOCAL && command !== V2_PROXY) return malformed(`v2: unknown command ${command}`);
  if (length > V2_LENGTH_LIMIT) return malformed(`v2: length ${length} over ${V2_LENGTH_LIMIT}`);
  // The spec: for LOCAL, the family is ignored (and the length still skipped).
  if (command === V2_PROXY) {
    const addressLength = V2_ADDRESS_LENGTH[familyTransport >> 4];
    if (addressLength === undefined) return malformed(`v2: unknown address family ${familyTransport >> 4}`);
    if ((familyTransport & 0x0f) > V2_TRANSPORT_DGRAM) return malformed(`v2: unknown transport ${familyTransport & 0x0f}`);
    if (length < addressLength) return malformed(`v2: length ${length} under the address block's ${addressLength}`);
  }
  const total = V2_FIXED_LENGTH + length;
  if (n < total) return read(total - n);
  if (n > total) return malformed("read past the header");
  if (command === V2_LOCAL) return done(LOCAL);
  // Past the addresses, up to the length: TLVs, not looked at.
  const addresses = received.subarray(V2_FIXED_LENGTH);
  const port = (at: number) => (addresses[at]! << 8) | addresses[at + 1]!;
  if (familyTransport === V2_TCP_OVER_IPV4) {
    return done({
      kind: "proxied",
      family: "tcp4",
      source: { ip: ipv4Text(addresses.subarray(0, 4)), port: port(8) },
      destination: { ip: ipv4Text(addresses.subarray(4, 8)), port: port(10) },
    });
  }
  if (familyTransport === V2_TCP_OVER_IPV6) {
    return done({
      kind: "proxied",
      family: "tcp6",
      source: { ip: ipv6Text(addresses.subarray(0, 16)), port: port(32) },
      destination: { ip: ipv6Text(addresses.subarray(16, 32)), port: port(34) },
    });
  }
  // AF_UNSPEC, AF_UNIX, UDP: nothing tcpserver would describe.
  return done(LOCAL);
}

/**
 * Names tcpserver derives from the addresses replaced here, by DNS, ident or
 * the interface. No lookup is made here, so they are unset, as tcpserver
 * leaves a name it did not find.
 */
const DERIVED_NAMES = ["TCPLOCALHOST", "TCPREMOTEHOST", "TCPREMOTEINFO", "TCP6LOCALHOST", "TCP6REMOTEHOST", "TCP6INTERFACE"];

/**
 * The tcpserver variables for the proxied connection, to be laid over the
 * launcher's environment ({...env, ...proxyEnvironment(header)}); undefined
 * means unset. As ucspi-tcp6's tcpserver does: for IPv4, TCPLOCALIP,
 * TCPLOCALPORT, TCPREMOTEIP, TCPREMOTEPORT, and no TCP6* names (else a
 * launcher on IPv6 would leave its own TCP6REMOTEIP, which readers prefer);
 * for IPv6, those and TCP6LOCALIP, TCP6LOCALPORT, TCP6REMOTEIP,
 * TCP6REMOTEPORT, both with the same values. PROTO is left alone: the
 * launcher may be sslserver (PROTO=SSL). LOCAL and UNKNOWN change nothing.
 */
export function proxyEnvironment(header: ProxyHeader): Environment {
  if (header.kind === "local") return {};
  const env: Record<string, string | undefined> = {};
  for (const name of DERIVED_NAMES) env[name] = undefined;
  const six = header.family === "tcp6";
  const set = (suffix: string, value: string) => {
    env[`TCP${suffix}`] = value;
    env[`TCP6${suffix}`] = six ? value : undefined;
  };
  set("LOCALIP", header.destination.ip);
  set("LOCALPORT", String(header.destination.port));
  set("REMOTEIP", header.source.ip);
  set("REMOTEPORT", String(header.source.port));
  return env;
}
