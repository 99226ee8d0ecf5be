// sslserver's answer on SSLCTLFD after `Y`: `NAME=value\0` pairs ended by
// an extra `\0`. The SSL_* ones are added to the subprogram's environment.

import { byteString } from "./bytes.ts";

/** The longest answer read: sslserver's is a few hundred bytes (certificates aside). */
export const TLS_ANSWER_LIMIT = 65536;

/** Whether the answer is complete: it ends with the empty pair. */
export function tlsAnswerComplete(answer: Uint8Array): boolean {
  const n = answer.length;
  return (n === 1 && answer[0] === 0) || (n >= 2 && answer[n - 1] === 0 && answer[n - 2] === 0);
}

/** The SSL_* variables of a complete answer; anything else in it is ignored. */
export function parseTlsEnvironment(answer: Uint8Array): Record<string, string> {
  const variables: Record<string, string> = {};
  let start = 0;
  for (let i = 0; i < answer.length; i++) {
    if (answer[i] !== 0) continue;
    const pair = byteString(answer.subarray(start, i));
    start = i + 1;
    const equals = pair.indexOf("=");
    if (equals < 0) continue;
    const name = pair.slice(0, equals);
    if (/^SSL_[A-Z0-9_]+$/.test(name)) variables[name] = pair.slice(equals + 1);
  }
  return variables;
}
