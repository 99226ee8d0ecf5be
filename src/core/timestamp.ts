import { bytesOf } from "./bytes.ts";

/** The APOP timestamp `<PID.TIME@HOSTNAME>`, brackets included (RFC 1939 section 7). */
export function apopTimestamp(pid: number, unixSeconds: number, hostname: string): Uint8Array {
  return bytesOf(`<${pid}.${Math.floor(unixSeconds)}@${hostname}>`);
}
