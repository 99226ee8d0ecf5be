// The waiting process. Once the credentials are in a pipe, qmail-popup only
// waits for the subprogram and reports; where the runtime can call execve
// (Bun and Deno, through libc), it becomes this small /bin/sh script
// instead, keeping its pid (tcpserver's accounting) and giving back the
// runtime's memory. The replies and the log lines are the ones serve.ts
// would write, computed here in advance; the password is only in the pipe.

import { formatLogLine, type LogEntry } from "./core/log.ts";
import { authOutcome } from "./core/session.ts";

/**
 * The script for these descriptors (dash takes one-digit numbers only, as
 * literals, so the platform checks they are; they are written into the
 * script rather than eval'd).
 *
 * A shell reports a child killed by a signal ("Segmentation fault",
 * "Killed") on its own stderr; that report, caught by the command
 * substitution, is how a crash is told from an exit status above 128
 * (SIGINT and SIGPIPE go unreported: 130 and 141 count as crashes too).
 * The subprogram writes to the network through a spare descriptor, so
 * nothing of it is caught. A program that cannot be run is a temporary
 * failure, said on fd 2, as in-process. The reply and the log line are
 * written with SIGPIPE ignored (a client or a log reader gone must not
 * lose the other) and, where timeout(1) exists, bounded by the idle
 * timeout like every other write.
 */
export function waiterScript(
  input: number,
  output: number,
  credentialsFd: number,
  logFd: number | undefined,
  timeoutSeconds: number,
): string {
  const used = new Set([0, 1, 2, 5, input, output, credentialsFd, ...(logFd === undefined ? [] : [logFd])]);
  const spare = [4, 6, 7, 8, 9].find((fd) => !used.has(fd))!;
  return `accept=$QMAIL_POPUP_ACCEPT_LOG reject=$QMAIL_POPUP_REJECT_LOG
fail=$QMAIL_POPUP_FAIL_REPLY temp=$QMAIL_POPUP_TEMP_REPLY crash=$QMAIL_POPUP_CRASH_REPLY
unset QMAIL_POPUP_ACCEPT_LOG QMAIL_POPUP_REJECT_LOG QMAIL_POPUP_FAIL_REPLY QMAIL_POPUP_TEMP_REPLY QMAIL_POPUP_CRASH_REPLY
program=$(command -v "$1")
report=
if [ -n "$program" ] && [ -x "$program" ] && [ ! -d "$program" ]; then
  exec ${spare}>&${output}
  report=$( { (exec "$@" <&${input} >&${spare} 2>&${spare} 3<&${credentialsFd} ${credentialsFd}<&- ${spare}>&-); status=$?; } 2>&1; exit $status )
  status=$?
  exec ${spare}>&-
else
  echo "qmail-popup: unable to run $1: not found or not executable" >&2
  status=111
fi
if [ "$status" -eq 0 ]; then reply= line=$accept
elif [ -n "$report" ] || [ "$status" -eq 130 ] || [ "$status" -eq 141 ]; then reply=$crash line=$reject
elif [ "$status" -eq 111 ]; then reply=$temp line=$reject
else reply=$fail line=$reject
fi
trap '' PIPE
if command -v timeout >/dev/null 2>&1; then bounded() { timeout ${timeoutSeconds} "$@"; }; else bounded() { "$@"; }; fi
if [ -n "$reply" ]; then bounded printf '%s\\r\\n' "$reply" >&${output} 2>/dev/null; fi
${logFd === undefined ? "" : `bounded printf '%s\\n' "$line" >&${logFd} 2>/dev/null
`}[ "$status" -eq 0 ]
`;
}

export interface WaiterPlan {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

/** /bin/sh's argv and environment for the waiter; descriptors are the platform's business. */
export function waiterPlan(options: {
  subprogram: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  input: number;
  output: number;
  credentialsFd: number;
  logFd: number | undefined;
  timeoutSeconds: number;
  /** The log entry without its result; undefined where fd 5 is closed. */
  log: Omit<LogEntry, "result"> | undefined;
}): WaiterPlan {
  const text = (reply: string | undefined) => (reply ?? "").replace(/\r\n$/, "");
  const line = (result: "Accept" | "Reject") => (options.log ? formatLogLine({ ...options.log, result }).replace(/\n$/, "") : "");
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(options.env)) if (value !== undefined) env[name] = value;
  Object.assign(env, {
    QMAIL_POPUP_ACCEPT_LOG: line("Accept"),
    QMAIL_POPUP_REJECT_LOG: line("Reject"),
    QMAIL_POPUP_FAIL_REPLY: text(authOutcome({ kind: "exited", code: 1 }).reply),
    QMAIL_POPUP_TEMP_REPLY: text(authOutcome({ kind: "exited", code: 111 }).reply),
    QMAIL_POPUP_CRASH_REPLY: text(authOutcome({ kind: "signaled" }).reply),
  });
  const script = waiterScript(options.input, options.output, options.credentialsFd, options.logFd, options.timeoutSeconds);
  return { argv: ["sh", "-c", script, "qmail-popup", ...options.subprogram], env };
}
