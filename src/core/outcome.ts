// What the end of the login program means: one table, used wherever the
// program's end is reported. The front (src/front/qmail-popup.c) sorts a
// wait status into one of these kinds: exit 0 accepts, exit 111 is
// temporary, only a real signal is a crash, any other status fails, and a
// program that cannot be run at all is temporary (its reason goes to fd 2).

import type { AuthResult } from "./log.ts";
import { ERR_AUTH_FAILED, ERR_AUTH_TEMPORARY, ERR_CHILD_CRASHED } from "./replies.ts";

export type OutcomeKind = "accept" | "fail" | "temporary" | "crash" | "unrunnable";

export interface Outcome {
  /** What the client reads; none on success (qmail-pop3d has said +OK). */
  readonly reply: string | undefined;
  readonly result: AuthResult;
  readonly status: 0 | 1;
}

/**
 * Failures carry RFC 3206 codes (CAPA offers RESP-CODES and AUTH-RESP-CODE);
 * the texts after them are the C program's.
 */
export const OUTCOMES: Readonly<Record<OutcomeKind, Outcome>> = {
  accept: { reply: undefined, result: "Accept", status: 0 },
  fail: { reply: ERR_AUTH_FAILED, result: "Reject", status: 1 },
  temporary: { reply: ERR_AUTH_TEMPORARY, result: "Reject", status: 1 },
  crash: { reply: ERR_CHILD_CRASHED, result: "Reject", status: 1 },
  unrunnable: { reply: ERR_AUTH_TEMPORARY, result: "Reject", status: 1 },
};

export const OUTCOME_KINDS = Object.keys(OUTCOMES) as OutcomeKind[];
