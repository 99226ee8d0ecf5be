// Byte helpers. The protocol is bytes, never text: nothing here decodes
// a client's input, and replies are plain ASCII.

const encoder = new TextEncoder();

/** The bytes of a string of our own (replies, the hostname argument). */
export function bytesOf(text: string): Uint8Array {
  return encoder.encode(text);
}

/**
 * A zeroed array on an ArrayBuffer of its own, for bytes that may hold a
 * password. A small typed array made otherwise lives inline in the engine's
 * heap (JavaScriptCore's "fast" typed arrays), and the first subarray() or
 * I/O call that needs its buffer moves it out, leaving the old bytes behind
 * where no fill(0) reaches them.
 */
export function allocateBytes(length: number): Uint8Array {
  return new Uint8Array(new ArrayBuffer(length));
}

/** A copy that can be wiped for good (see allocateBytes). */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  const copy = allocateBytes(bytes.length);
  copy.set(bytes);
  return copy;
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const joined = allocateBytes(length);
  let offset = 0;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.length;
  }
  return joined;
}

/** ASCII case-insensitive comparison of a byte string with an upper-case verb. */
export function equalsIgnoringCase(bytes: Uint8Array, upperAscii: string): boolean {
  if (bytes.length !== upperAscii.length) return false;
  for (let i = 0; i < bytes.length; i++) {
    let byte = bytes[i]!;
    if (byte >= 0x61 && byte <= 0x7a) byte -= 0x20;
    if (byte !== upperAscii.charCodeAt(i)) return false;
  }
  return true;
}
