// Strict base64 (RFC 4648 section 4) for SASL: no white space, no missing
// or stray padding. Bytes in, bytes out.

import { allocateBytes } from "./bytes.ts";

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const VALUE = new Int16Array(256).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) VALUE[ALPHABET.charCodeAt(i)] = i;
const PAD = 0x3d;

export function encodeBase64(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const a = bytes[i]!;
    const b = bytes[i + 1];
    const c = bytes[i + 2];
    out += ALPHABET[a >> 2]! + ALPHABET[((a & 3) << 4) | ((b ?? 0) >> 4)]!;
    out += b === undefined ? "=" : ALPHABET[((b & 15) << 2) | ((c ?? 0) >> 6)]!;
    out += c === undefined ? "=" : ALPHABET[c & 63]!;
  }
  return out;
}

/** The decoded bytes, or undefined where the text is not strict base64. */
export function decodeBase64(text: Uint8Array): Uint8Array | undefined {
  if (text.length % 4 !== 0) return undefined;
  let padding = 0;
  if (text.length > 0 && text[text.length - 1] === PAD) padding++;
  if (text.length > 1 && text[text.length - 2] === PAD) padding++;
  const out = allocateBytes((text.length / 4) * 3 - padding);
  if (decodeInto(out, text, padding)) return out;
  // The text may be a password with junk after it: what was decoded of it goes.
  out.fill(0);
  return undefined;
}

/**
 * Decodes quad by quad into out; false at the first quad that is not
 * strict base64. The bits stay in local numbers: no array per quad is
 * left on the heap holding a piece of a password.
 */
function decodeInto(out: Uint8Array, text: Uint8Array, padding: number): boolean {
  let o = 0;
  for (let i = 0; i < text.length; i += 4) {
    const last = i + 4 === text.length;
    const a = sextet(text[i]!, false);
    const b = sextet(text[i + 1]!, false);
    const c = sextet(text[i + 2]!, last && padding === 2);
    const d = sextet(text[i + 3]!, last && padding >= 1);
    if (a < 0 || b < 0 || c < 0 || d < 0) return false;
    const triple = (a << 18) | (b << 12) | (c << 6) | d;
    // Bits that padding says are unused must be zero (canonical encoding).
    if (last && padding === 1 && (triple & 0xff) !== 0) return false;
    if (last && padding === 2 && (triple & 0xffff) !== 0) return false;
    if (o < out.length) out[o++] = triple >> 16;
    if (o < out.length) out[o++] = (triple >> 8) & 0xff;
    if (o < out.length) out[o++] = triple & 0xff;
  }
  return true;
}

/** The six bits a byte of base64 stands for, or -1; `=` stands for zero bits where padding is allowed. */
function sextet(byte: number, padded: boolean): number {
  return padded && byte === PAD ? 0 : VALUE[byte]!;
}
