// Every line the core sends, in one place: the texts are the contract
// (tests compare bytes). They are qmail-popup's where it has them (USER's
// `+OK ` keeps its space); the bracketed RFC 3206 codes are this project's.
// line() and list() are the only places that write a CRLF.

import { encodeBase64 } from "./base64.ts";
import { byteString, bytesOf } from "./bytes.ts";

/** One line: the text and its CRLF. */
function line(text: string): string {
  return text + "\r\n";
}

/** A multi-line answer (RFC 1939): the status line, one item a line, the lone dot. */
function list(status: string, items: readonly string[]): string {
  return line(status) + items.map(line).join("") + line(".");
}

/** `+OK <timestamp>`, or a bare `+OK` where there is no timestamp to show. */
export function greetingLine(timestamp: Uint8Array | undefined): Uint8Array {
  return bytesOf(line(timestamp === undefined ? "+OK" : "+OK " + byteString(timestamp)));
}

/** What a missing argument gets, on fd 1, before exit 1. */
export function usage(version: string): string {
  return line(`-ERR usage: qmail-popup hostname subprogram [args...] (qmail-popup ${version})`);
}

export const OK = line("+OK ");
export const ERR_SYNTAX = line("-ERR syntax error");
export const ERR_USER_FIRST = line("-ERR USER first");
export const ERR_AUTHORIZATION_FIRST = line("-ERR authorization first");
export const ERR_LINE_TOO_LONG = line("-ERR line too long");
export const ERR_NUL_IN_COMMAND = line("-ERR NUL in command");
export const ERR_USER_PASS_NOT_AVAILABLE = line("-ERR USER/PASS not available, use APOP");
export const ERR_APOP_NOT_AVAILABLE = line("-ERR APOP not available");
export const ERR_AUTH_NOT_AVAILABLE = line("-ERR AUTH not available, use APOP");

export const OK_STLS = line("+OK starting TLS negotiation");
export const ERR_STLS_NOT_AVAILABLE = line("-ERR STLS not available");
/** UCSPITLS=! and credentials offered in clear. */
export const ERR_TLS_REQUIRED = line("-ERR TLS required but not negotiated");

/** What qmail-pop3d offers after login (RFC 2449 asks that they be listed before it) and the response codes. */
export const CAPABILITIES_ALWAYS: readonly string[] = ["TOP", "UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE"];
export const CAPABILITY_USER = "USER";
export const CAPABILITY_STLS = "STLS";

export function capabilitySasl(mechanisms: readonly string[]): string {
  return `SASL ${mechanisms.join(" ")}`;
}

export function capabilityList(capabilities: readonly string[]): string {
  return list("+OK capability list follows", capabilities);
}

/** AUTH with no mechanism named: the ones offered. */
export function mechanismList(mechanisms: readonly string[]): string {
  return list("+OK SASL mechanisms follow", mechanisms);
}

/** A SASL challenge: `+ ` and the data in base64. */
export function challenge(data: Uint8Array): string {
  return line("+ " + encodeBase64(data));
}

/** PLAIN's: empty. LOGIN's: `Username:` and `Password:`, by custom. */
export const CHALLENGE_EMPTY = challenge(bytesOf(""));
export const CHALLENGE_USERNAME = challenge(bytesOf("Username:"));
export const CHALLENGE_PASSWORD = challenge(bytesOf("Password:"));

export const ERR_SASL_CANCELLED = line("-ERR authentication cancelled");
export const ERR_SASL_MALFORMED = line("-ERR malformed SASL response");
export const ERR_SASL_MECHANISM = line("-ERR unrecognized authentication type");
/** PLAIN's authorization identity, where it is not the authentication identity: refused, never mapped. */
export const ERR_SASL_AUTHZID = line("-ERR [AUTH] authorization identity not allowed");

/** The login program's end (src/core/outcome.ts): exit non-zero, exit 111 or no program, a signal. */
export const ERR_AUTH_FAILED = line("-ERR [AUTH] authorization failed");
export const ERR_AUTH_TEMPORARY = line("-ERR [SYS/TEMP] authorization failed");
export const ERR_CHILD_CRASHED = line("-ERR [SYS/TEMP] aack, child crashed");
