// sslserver's answer on SSLCTLFD after `Y`, as ucspi-ssl writes it
// (sslserver.c: ssl_server_env, then one more NUL) and qmail's
// starttls_info reads it: `NAME=value\0` pairs, ended by an extra `\0`.
// sslserver builds each pair from C strings, so no name or value holds a
// NUL: an answer that does not fit this framing (a pair without `=`, a
// name that is no variable's, a name given twice, bytes after the end) is
// refused whole, never split into variables of its own making.

import { byteString } from "./bytes.ts";

/** The longest answer read: sslserver's is a few hundred bytes (certificates aside). */
export const TLS_ANSWER_LIMIT = 65536;

/**
 * Whether the answer is complete: a NUL where a pair would start (the
 * empty pair). What follows it, if anything, parseTlsEnvironment refuses.
 */
export function tlsAnswerComplete(answer: Uint8Array): boolean {
  let start = 0;
  for (let i = 0; i < answer.length; i++) {
    if (answer[i] !== 0) continue;
    if (i === start) return true;
    start = i + 1;
  }
  return false;
}

/** A variable's name as sslserver sets them. */
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The SSL_* variables of a complete answer (others are not the login
 * program's business), or why it is refused.
 */
export function parseTlsEnvironment(answer: Uint8Array): { variables: Record<string, string> } | { refused: string } {
  const variables: Record<string, string> = {};
  const seen = new Set<string>();
  let start = 0;
  for (let i = 0; i < answer.length; i++) {
    if (answer[i] !== 0) continue;
    if (i === start) {
      return i + 1 === answer.length ? { variables } : { refused: `${answer.length - i - 1} bytes after its end` };
    }
    const pair = byteString(answer.subarray(start, i));
    start = i + 1;
    const equals = pair.indexOf("=");
    const name = equals < 0 ? pair : pair.slice(0, equals);
    if (equals < 0 || !NAME.test(name)) return { refused: "a pair that is not NAME=value" };
    if (seen.has(name)) return { refused: `${name} given twice` };
    seen.add(name);
    if (name.startsWith("SSL_")) variables[name] = pair.slice(equals + 1);
  }
  return { refused: "no end" };
}
