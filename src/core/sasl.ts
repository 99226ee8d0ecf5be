// SASL for POP3 AUTH (RFC 5034): PLAIN (RFC 4616), LOGIN, and CRAM-MD5
// (RFC 2195) where POP3AUTH asks for it. Each hands the subprogram the
// same three fields as USER/PASS, so every checkpassword keeps working.

import { decodeBase64 } from "./base64.ts";
import { allocateBytes, copyBytes } from "./bytes.ts";
import type { Config } from "./config.ts";

type SaslMechanism = "PLAIN" | "LOGIN" | "CRAM-MD5";

/** An AUTH response line may be longer than a command: base64 of a 1024-byte response, with CRLF. */
export const SASL_RESPONSE_LIMIT = 2048;

/** The mechanisms offered, in CAPA's order. */
export function saslMechanisms(config: Config): SaslMechanism[] {
  return config.cramMd5 ? ["PLAIN", "LOGIN", "CRAM-MD5"] : ["PLAIN", "LOGIN"];
}

type PlainCredentials = { readonly name: Uint8Array; readonly password: Uint8Array };

// The decoders copy what they return and nothing they refuse; the bytes
// they are given are the caller's to wipe.

/**
 * RFC 4616: `authzid \0 authcid \0 passwd`. An authorization identity that
 * differs from the authentication identity is refused, never mapped: the
 * checkpassword interface has no place for it.
 */
export function decodePlain(response: Uint8Array): PlainCredentials | "malformed" | "authzid" {
  const first = response.indexOf(0);
  const second = first < 0 ? -1 : response.indexOf(0, first + 1);
  if (first < 0 || second < 0 || response.indexOf(0, second + 1) >= 0) return "malformed";
  const authzid = response.subarray(0, first);
  const name = response.subarray(first + 1, second);
  const password = response.subarray(second + 1);
  if (name.length === 0 || password.length === 0 || breaksLine(name) || breaksLine(authzid)) return "malformed";
  if (authzid.length > 0 && !sameBytes(authzid, name)) return "authzid";
  return { name: copyBytes(name), password: copyBytes(password) };
}

/** RFC 2195: the response is `name SP digest` (digest: 32 lowercase hex digits; no NUL in the name, fd 3's separator). */
export function decodeCramMd5(response: Uint8Array): { name: Uint8Array; digest: Uint8Array } | "malformed" {
  const space = response.lastIndexOf(0x20);
  if (space <= 0) return "malformed";
  const name = response.subarray(0, space);
  const digest = response.subarray(space + 1);
  if (name.includes(0) || breaksLine(name)) return "malformed";
  if (digest.length !== 32 || !digest.every((byte) => (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x66))) return "malformed";
  return { name: copyBytes(name), digest: copyBytes(digest) };
}

/** A client's response line: base64, `*` to cancel, `=` (in an initial response) for empty. */
export function decodeResponse(line: Uint8Array, initial: boolean): Uint8Array | "cancel" | "malformed" {
  if (line.length === 1 && line[0] === 0x2a) return "cancel";
  if (initial && line.length === 1 && line[0] === 0x3d) return allocateBytes(0);
  const decoded = decodeBase64(line);
  if (decoded === undefined) return "malformed";
  // A NUL is for the mechanism to judge: PLAIN's separators, refused elsewhere.
  return decoded;
}

/**
 * A name holding CR or LF: USER and APOP, read a line at a time, can never
 * carry one, so neither may a SASL name, for a line-oriented checkpassword
 * or log. Other bytes pass as s/qmail passes them.
 */
export function breaksLine(name: Uint8Array): boolean {
  return name.includes(0x0d) || name.includes(0x0a);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
