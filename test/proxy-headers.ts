// PROXY protocol headers for the tests of the reader (test/unit and
// test/property proxy-protocol.test.ts) and of the binaries
// (test/e2e/haproxy.test.ts): what proxyStep gives back once done, and v2
// headers built byte by byte.

import type { ProxyHeader } from "../src/core/proxy-protocol.ts";

/** A 16-bit number in network byte order. */
export const u16 = (n: number): number[] => [n >> 8, n & 0xff];

/** What a header of a proxied TCP connection says: the client (source) and the address it reached (destination). */
export const proxied = (family: "tcp4" | "tcp6", sourceIp: string, sourcePort: number, destinationIp: string, destinationPort: number): ProxyHeader => ({
  kind: "proxied",
  family,
  source: { ip: sourceIp, port: sourcePort },
  destination: { ip: destinationIp, port: destinationPort },
});
/** What LOCAL, UNKNOWN and the families qmail-popup does not take say: keep the launcher's addresses. */
export const LOCAL: ProxyHeader = { kind: "local" };

/** The twelve bytes that begin every v2 header. */
export const V2_SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
/** The version/command byte: version 2, PROXY or LOCAL. */
export const PROXY = 0x21;
export const LOCAL_COMMAND = 0x20;

/** A v2 header: signature, version/command, family/transport, length (the body's unless given), body. */
export const v2 = (versionCommand: number, familyTransport: number, body: readonly number[], length = body.length): Uint8Array =>
  Uint8Array.from([...V2_SIGNATURE, versionCommand, familyTransport, ...u16(length), ...body]);
