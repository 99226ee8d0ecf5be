import { bytesOf } from "./bytes.ts";

// The fd-5 log line: `qmail-popup: pid PID RESULT::AUTH::METHOD P:PROTO S:IP:HOST ?= 'USER'`.

export type AuthResult = "Accept" | "Reject";
export type AuthMethod = "User" | "Apop" | "Plain" | "Login" | "Cram-md5";

export interface LogEntry {
  readonly pid: number;
  readonly result: AuthResult;
  /** `AUTH::User`, `AUTH::Apop`, … or `STLS::Any` for the STLS-required refusal. */
  readonly what: string;
  readonly proto: "POP3" | "POP3S";
  readonly remoteIp: string;
  readonly remoteHost: string;
  readonly user: Uint8Array | string;
}

const HEX = "0123456789abcdef";

/** Printable ASCII stays; anything else, `'` and `\` become `\xNN`, so the line stays one line. */
export function escapeLogField(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) {
    if (byte >= 0x20 && byte < 0x7f && byte !== 0x27 && byte !== 0x5c) out += String.fromCharCode(byte);
    else out += "\\x" + HEX[byte >> 4] + HEX[byte & 15];
  }
  return out;
}

export function formatLogLine(entry: LogEntry): string {
  // The address and name come from tcpserver's environment: escaped too, to be safe.
  const escape = (field: Uint8Array | string) => escapeLogField(typeof field === "string" ? bytesOf(field) : field);
  return (
    `qmail-popup: pid ${entry.pid} ${entry.result}::${entry.what}` +
    ` P:${entry.proto} S:${escape(entry.remoteIp)}:${escape(entry.remoteHost)} ?= '${escape(entry.user)}'\n`
  );
}
