// djb's netstrings, `LENGTH:BYTES,`: how the runtime and the front
// (src/front/qmail-popup.c) talk on the control socket. Each one holds
// `key=value`.

import { byteString, bytesOf, concatBytes } from "./bytes.ts";

/** One netstring holding `key=value`; value may be any bytes (a password). */
export function encodeNetstring(key: string, value: Uint8Array | string = ""): Uint8Array {
  const body = typeof value === "string" ? bytesOf(value) : value;
  return concatBytes([bytesOf(`${key.length + 1 + body.length}:${key}=`), body, bytesOf(",")]);
}

export type NetstringItem = { readonly key: string; readonly value: Uint8Array };

/** The digits of a length at most this long: more is not a netstring of ours. */
const LENGTH_DIGITS = 9;

/**
 * Reads the length prefix of a netstring: the number of bytes still to read
 * for the whole item (body and comma), or "more" while the prefix is
 * incomplete, or "malformed". head holds what was read so far, at most up to
 * the colon.
 */
export function netstringLength(head: Uint8Array): number | "more" | "malformed" {
  for (let i = 0; i < head.length; i++) {
    const byte = head[i]!;
    if (byte === 0x3a) return i === 0 ? "malformed" : Number(byteString(head.subarray(0, i))) + 1;
    if (byte < 0x30 || byte > 0x39 || i >= LENGTH_DIGITS) return "malformed";
  }
  return "more";
}

/** Splits a netstring body (`key=value`) read whole, comma included. */
export function netstringItem(bodyAndComma: Uint8Array): NetstringItem | "malformed" {
  if (bodyAndComma[bodyAndComma.length - 1] !== 0x2c) return "malformed";
  const body = bodyAndComma.subarray(0, bodyAndComma.length - 1);
  const equals = body.indexOf(0x3d);
  if (equals < 0) return "malformed";
  return { key: byteString(body.subarray(0, equals)), value: body.subarray(equals + 1) };
}
