import { concatBytes } from "./bytes.ts";

const NUL = new Uint8Array([0]);

/**
 * What the subprogram reads on fd 3 (djb's checkpassword interface):
 * `name\0secret\0timestamp\0`. The caller has refused NUL inside the fields.
 */
export function encodeCheckpasswordInput(
  name: Uint8Array,
  secret: Uint8Array,
  timestamp: Uint8Array,
): Uint8Array {
  return concatBytes([name, NUL, secret, NUL, timestamp, NUL]);
}
