// The POP3 AUTHORIZATION state as a pure function: a state and one input
// line give the next state and what to do. The platform layer carries the
// actions out; nothing here touches a descriptor.

import { bytesOf, concatBytes, equalsIgnoringCase } from "./bytes.ts";
import { capabilityReply, stlsOffered, tlsRequiredNow, userPassAllowed } from "./capabilities.ts";
import type { Config } from "./config.ts";
import type { LineEvent } from "./line-reader.ts";
import type { AuthMethod, AuthResult, LogEntry } from "./log.ts";

export interface SessionState {
  /** The name from the last USER, until PASS, STLS or another USER. */
  readonly user: Uint8Array | undefined;
  /** TLS is active: after STLS, or from the start (port 995). */
  readonly tls: boolean;
}

export type Action =
  | { readonly kind: "reply"; readonly text: string }
  /** Hand name and secret to the subprogram on fd 3, wait, report. */
  | { readonly kind: "spawnAuth"; readonly method: AuthMethod; readonly name: Uint8Array; readonly secret: Uint8Array }
  /** The `+OK` is already queued: switch fds 0/1 to the UCSPI-TLS pipes. */
  | { readonly kind: "startTls" }
  | { readonly kind: "log"; readonly entry: Omit<LogEntry, "pid"> }
  /** End the session with this exit status. */
  | { readonly kind: "quit"; readonly status: 0 | 1 };

export interface Step {
  readonly state: SessionState;
  readonly actions: readonly Action[];
}

export function initialState(config: Config): SessionState {
  return { user: undefined, tls: config.implicitTls };
}

/** `+OK <timestamp>` where APOP is offered; a bare `+OK` otherwise (a timestamp makes curl try APOP). */
export function greeting(config: Config, timestamp: Uint8Array): Uint8Array {
  if (config.apop === "off") return bytesOf("+OK\r\n");
  return concatBytes([bytesOf("+OK "), timestamp, bytesOf("\r\n")]);
}

export function protocolLabel(config: Config, state: SessionState): "POP3" | "POP3S" {
  return state.tls || config.implicitTls ? "POP3S" : "POP3";
}

const OK = "+OK \r\n";
const SYNTAX = "-ERR syntax error\r\n";

const reply = (text: string): Action => ({ kind: "reply", text });
const stay = (state: SessionState, ...actions: Action[]): Step => ({ state, actions });

/** Splits `VERB argument`: the verb ends at the first space, then all spaces are skipped. */
export function parseCommand(line: Uint8Array): { verb: Uint8Array; argument: Uint8Array } {
  let space = line.indexOf(0x20);
  if (space < 0) return { verb: line, argument: line.subarray(line.length) };
  const verb = line.subarray(0, space);
  while (space < line.length && line[space] === 0x20) space++;
  return { verb, argument: line.subarray(space) };
}

/** The refusal where UCSPITLS=! and a client offers credentials in clear. */
function tlsRequiredRefusal(config: Config, state: SessionState): Step {
  return stay(
    state,
    reply("-ERR TLS required but not negotiated\r\n"),
    { kind: "log", entry: logEntry(config, state, "Reject", "STLS::Any", "unknown") },
    { kind: "quit", status: 1 },
  );
}

export function logEntry(
  config: Config,
  state: SessionState,
  result: AuthResult,
  what: string,
  user: Uint8Array | string,
): Omit<LogEntry, "pid"> {
  return { result, what, proto: protocolLabel(config, state), remoteIp: config.remoteIp, remoteHost: config.remoteHost, user };
}

export function handleLine(config: Config, state: SessionState, event: LineEvent): Step {
  if (event.kind === "too-long") return stay(state, reply("-ERR line too long\r\n"));
  if (event.kind === "nul") return stay(state, reply("-ERR NUL in command\r\n"));
  const { verb, argument } = parseCommand(event.line);
  const is = (name: string) => equalsIgnoringCase(verb, name);

  if (is("QUIT")) return stay(state, reply(OK), { kind: "quit", status: 0 });
  if (is("NOOP")) return stay(state, reply(OK));
  if (is("CAPA")) return stay(state, reply(capabilityReply(config, state)));

  if (is("STLS")) {
    if (!stlsOffered(config, state)) return stay(state, reply("-ERR STLS not available\r\n"));
    // A USER given in clear is forgotten: it may have been injected.
    return { state: { user: undefined, tls: true }, actions: [reply("+OK starting TLS negotiation\r\n"), { kind: "startTls" }] };
  }

  if (is("USER")) {
    if (tlsRequiredNow(config, state)) return tlsRequiredRefusal(config, state);
    if (!userPassAllowed(config, state)) return stay(state, reply("-ERR USER/PASS not available, use APOP\r\n"));
    if (argument.length === 0) return stay(state, reply(SYNTAX));
    return { state: { ...state, user: argument.slice() }, actions: [reply(OK)] };
  }

  if (is("PASS")) {
    if (state.user === undefined) return stay(state, reply("-ERR USER first\r\n"));
    if (argument.length === 0) return stay(state, reply(SYNTAX));
    return {
      state: { ...state, user: undefined },
      actions: [{ kind: "spawnAuth", method: "User", name: state.user, secret: argument.slice() }],
    };
  }

  if (is("APOP")) {
    if (tlsRequiredNow(config, state)) return tlsRequiredRefusal(config, state);
    if (config.apop === "off") return stay(state, reply("-ERR APOP not available\r\n"));
    const space = argument.indexOf(0x20);
    if (space < 0) return stay(state, reply(SYNTAX));
    return stay(state, {
      kind: "spawnAuth",
      method: "Apop",
      name: argument.slice(0, space),
      secret: argument.slice(space + 1),
    });
  }

  return stay(state, reply("-ERR authorization first\r\n"));
}

export type ChildOutcome = { readonly kind: "exited"; readonly code: number } | { readonly kind: "signaled" };

/** What the subprogram's end means: the reply (none on success), the log result and our exit status. */
export function authOutcome(outcome: ChildOutcome): { reply?: string; result: AuthResult; status: 0 | 1 } {
  if (outcome.kind === "signaled") return { reply: "-ERR aack, child crashed\r\n", result: "Reject", status: 1 };
  if (outcome.code !== 0) return { reply: "-ERR authorization failed\r\n", result: "Reject", status: 1 };
  return { result: "Accept", status: 0 };
}
