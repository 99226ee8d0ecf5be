// Byte helpers. The protocol is bytes, never text: nothing here decodes
// a client's input, and replies are plain ASCII.
//
// Arguments and environment values arrive as bytes and are carried as
// "byte strings": one char per byte (0-255), so that they survive every
// string operation unchanged and turn back into the same bytes.

/** The bytes of a byte string (replies, the hostname argument, environment values). */
export function bytesOf(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i) & 0xff;
  return bytes;
}

/**
 * The byte string of some bytes (see bytesOf). Through apply, not a spread:
 * spreading a typed array goes through its iterator, and the introduction's
 * few dozen of them, before the greeting, cost a runtime milliseconds.
 */
export function byteString(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 8192) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192) as unknown as number[]);
  return text;
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
