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
  let o = 0;
  for (let i = 0; i < text.length; i += 4) {
    const last = i + 4 === text.length;
    const quad = [0, 1, 2, 3].map((k) => {
      const byte = text[i + k]!;
      return last && byte === PAD && k >= 4 - padding ? 0 : VALUE[byte]!;
    });
    if (quad.some((value) => value < 0)) return undefined;
    const [a, b, c, d] = quad as [number, number, number, number];
    const triple = (a << 18) | (b << 12) | (c << 6) | d;
    // Bits that padding says are unused must be zero (canonical encoding).
    if (last && padding === 1 && (triple & 0xff) !== 0) return undefined;
    if (last && padding === 2 && (triple & 0xffff) !== 0) return undefined;
    if (o < out.length) out[o++] = triple >> 16;
    if (o < out.length) out[o++] = (triple >> 8) & 0xff;
    if (o < out.length) out[o++] = triple & 0xff;
  }
  return out;
}
