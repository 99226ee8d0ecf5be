// The POP3 AUTHORIZATION state as a function: a state and one input line
// give the next state and what to do. The platform layer carries the
// actions out; nothing here touches a descriptor. The line may hold a
// password: handleLine leaves it all zeros, and what a step keeps of it is
// a copy, made with bytes.ts and wiped wherever it is refused.

import { bytesOf, copyBytes, equalsIgnoringCase } from "./bytes.ts";
import { apopOffered, capabilityReply, stlsOffered, tlsRequiredNow, userPassAllowed } from "./capabilities.ts";
import type { Config } from "./config.ts";
import { COMMAND_LINE_LIMIT, type LineEvent } from "./line-reader.ts";
import type { AuthMethod, AuthResult, LogEntry } from "./log.ts";
import {
  CHALLENGE_EMPTY,
  CHALLENGE_PASSWORD,
  CHALLENGE_USERNAME,
  ERR_APOP_NOT_AVAILABLE,
  ERR_AUTHORIZATION_FIRST,
  ERR_AUTH_NOT_AVAILABLE,
  ERR_LINE_TOO_LONG,
  ERR_NUL_IN_COMMAND,
  ERR_SASL_AUTHZID,
  ERR_SASL_CANCELLED,
  ERR_SASL_MALFORMED,
  ERR_SASL_MECHANISM,
  ERR_STLS_NOT_AVAILABLE,
  ERR_SYNTAX,
  ERR_TLS_REQUIRED,
  ERR_USER_FIRST,
  ERR_USER_PASS_NOT_AVAILABLE,
  OK,
  OK_STLS,
  challenge,
  greetingLine,
  mechanismList,
} from "./replies.ts";
import { SASL_RESPONSE_LIMIT, breaksLine, decodeCramMd5, decodePlain, decodeResponse, saslMechanisms } from "./sasl.ts";

/** A SASL exchange under way: the next line is the client's response, not a command. */
type SaslExchange =
  | { readonly mechanism: "PLAIN" }
  | { readonly mechanism: "LOGIN"; readonly name?: Uint8Array }
  | { readonly mechanism: "CRAM-MD5" };

export interface SessionState {
  /** The name from the last USER, until PASS, STLS or another USER. */
  readonly user: Uint8Array | undefined;
  /** TLS is active: after STLS, or from the start (port 995). */
  readonly tls: boolean;
  readonly sasl?: SaslExchange;
  /** The `<PID.TIME@HOSTNAME>` timestamp: CRAM-MD5's challenge. */
  readonly timestamp?: Uint8Array;
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

/** What one line leads to: the next state and what to do, in order. */
interface Step {
  readonly state: SessionState;
  readonly actions: readonly Action[];
}

export function initialState(config: Config, timestamp?: Uint8Array): SessionState {
  return { user: undefined, tls: config.implicitTls, ...(timestamp && { timestamp }) };
}

/** The state with no SASL exchange under way. */
function withoutSasl(state: SessionState): SessionState {
  const { sasl: _finished, ...rest } = state;
  return rest;
}

/** The longest next line: a SASL response may be longer than a command. */
export function lineLimit(state: SessionState): number {
  return state.sasl === undefined ? COMMAND_LINE_LIMIT : SASL_RESPONSE_LIMIT;
}

/** `+OK <timestamp>` where APOP is offered; a bare `+OK` otherwise (a timestamp makes curl try APOP). */
export function greeting(config: Config, timestamp: Uint8Array): Uint8Array {
  return greetingLine(apopOffered(config) ? timestamp : undefined);
}

export function protocolLabel(config: Config, state: SessionState): "POP3" | "POP3S" {
  return state.tls || config.implicitTls ? "POP3S" : "POP3";
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

const reply = (text: string): Action => ({ kind: "reply", text });
const step = (state: SessionState, ...actions: Action[]): Step => ({ state, actions });

/** Splits `VERB argument`: the verb ends at the first space, then all spaces are skipped. */
export function parseCommand(line: Uint8Array): { verb: Uint8Array; argument: Uint8Array } {
  let space = line.indexOf(0x20);
  if (space < 0) return { verb: line, argument: line.subarray(line.length) };
  const verb = line.subarray(0, space);
  while (space < line.length && line[space] === 0x20) space++;
  return { verb, argument: line.subarray(space) };
}

// The commands. Each handler runs once its row's gates (the table below)
// have let the command through. What a handler keeps of the line, it
// copies: the line is wiped after the step.

/** What a handler is given. */
interface Call {
  readonly config: Config;
  readonly state: SessionState;
  /** The rest of the line after the verb and its spaces. */
  readonly argument: Uint8Array;
}

/** A name replaced or dropped is wiped: users type passwords into the name field. */
function forgetUser(state: SessionState): void {
  state.user?.fill(0);
}

function user({ state, argument }: Call): Step {
  if (argument.length === 0) return step(state, reply(ERR_SYNTAX));
  forgetUser(state);
  return step({ ...state, user: copyBytes(argument) }, reply(OK));
}

function pass({ state, argument }: Call): Step {
  if (state.user === undefined) return step(state, reply(ERR_USER_FIRST));
  if (argument.length === 0) return step(state, reply(ERR_SYNTAX));
  return step({ ...state, user: undefined }, { kind: "spawnAuth", method: "User", name: state.user, secret: copyBytes(argument) });
}

/** `APOP name digest`: only the first space separates, the digest is the rest. */
function apop({ state, argument }: Call): Step {
  const space = argument.indexOf(0x20);
  if (space < 0) return step(state, reply(ERR_SYNTAX));
  const name = copyBytes(argument.subarray(0, space));
  return step(state, { kind: "spawnAuth", method: "Apop", name, secret: copyBytes(argument.subarray(space + 1)) });
}

/** A USER given in clear is forgotten: it may have been injected. */
function stls({ state }: Call): Step {
  forgetUser(state);
  return step({ ...state, user: undefined, tls: true }, reply(OK_STLS), { kind: "startTls" });
}

function capa({ config, state }: Call): Step {
  return step(state, reply(capabilityReply(config, state)));
}

function noop({ state }: Call): Step {
  return step(state, reply(OK));
}

function quit({ state }: Call): Step {
  return step(state, reply(OK), { kind: "quit", status: 0 });
}

// SASL (RFC 5034): AUTH starts an exchange; while it is under way, each
// line is the client's response (continueSasl).

/** `AUTH`, `AUTH mechanism`, `AUTH mechanism initial-response`. */
function auth({ config, state, argument }: Call): Step {
  const offered = saslMechanisms(config);
  if (argument.length === 0) return step(state, reply(mechanismList(offered)));
  const { verb: name, argument: initial } = parseCommand(argument);
  const mechanism = offered.find((candidate) => equalsIgnoringCase(name, candidate));
  if (mechanism === undefined) return step(state, reply(ERR_SASL_MECHANISM));
  const exchanging = (sasl: SaslExchange, text: string): Step => step({ ...state, sasl }, reply(text));

  if (mechanism === "CRAM-MD5") {
    // The challenge is the APOP timestamp: fd 3 carries it as the third field anyway.
    if (initial.length > 0) return step(state, reply(ERR_SASL_MALFORMED));
    return exchanging({ mechanism }, challenge(state.timestamp ?? bytesOf("")));
  }
  if (initial.length === 0) return exchanging({ mechanism }, mechanism === "PLAIN" ? CHALLENGE_EMPTY : CHALLENGE_USERNAME);
  const response = decodeResponse(initial, true);
  if (response === "cancel") return step(state, reply(ERR_SASL_CANCELLED));
  if (response === "malformed") return step(state, reply(ERR_SASL_MALFORMED));
  if (mechanism === "PLAIN") return finishPlain(state, response);
  return loginName(state, response);
}

/** LOGIN's name, given and then not used (cancelled, refused): wiped as a password would be. */
function forgetSaslName(sasl: SaslExchange | undefined): void {
  if (sasl?.mechanism === "LOGIN") sasl.name?.fill(0);
}

/** The client's response, on a line of its own. */
function continueSasl(state: SessionState, sasl: SaslExchange, line: Uint8Array): Step {
  const idle = withoutSasl(state);
  const response = decodeResponse(line, false);
  if (response === "cancel" || response === "malformed") forgetSaslName(sasl);
  if (response === "cancel") return step(idle, reply(ERR_SASL_CANCELLED));
  if (response === "malformed") return step(idle, reply(ERR_SASL_MALFORMED));
  switch (sasl.mechanism) {
    case "PLAIN":
      return finishPlain(idle, response);
    case "LOGIN":
      if (sasl.name === undefined) return loginName(idle, response);
      return loginPassword(idle, sasl.name, response);
    case "CRAM-MD5":
      return finishCramMd5(idle, response);
  }
}

// Each mechanism's last step. The decoded response is the password or
// holds it: whatever the answer, nothing of it is left but what a
// spawnAuth takes.

function finishPlain(state: SessionState, response: Uint8Array): Step {
  const decoded = decodePlain(response);
  response.fill(0);
  if (decoded === "authzid") return step(state, reply(ERR_SASL_AUTHZID));
  if (decoded === "malformed") return step(state, reply(ERR_SASL_MALFORMED));
  return step(state, { kind: "spawnAuth", method: "Plain", name: decoded.name, secret: decoded.password });
}

/** LOGIN's first answer, the name: wiped where refused, as every refused response is. */
function loginName(state: SessionState, name: Uint8Array): Step {
  if (name.length > 0 && !name.includes(0) && !breaksLine(name)) return step({ ...state, sasl: { mechanism: "LOGIN", name } }, reply(CHALLENGE_PASSWORD));
  name.fill(0);
  return step(withoutSasl(state), reply(ERR_SASL_MALFORMED));
}

function loginPassword(state: SessionState, name: Uint8Array, password: Uint8Array): Step {
  if (password.length > 0 && !password.includes(0)) return step(state, { kind: "spawnAuth", method: "Login", name, secret: password });
  password.fill(0);
  name.fill(0);
  return step(state, reply(ERR_SASL_MALFORMED));
}

function finishCramMd5(state: SessionState, response: Uint8Array): Step {
  const decoded = decodeCramMd5(response);
  response.fill(0);
  if (decoded === "malformed") return step(state, reply(ERR_SASL_MALFORMED));
  return step(state, { kind: "spawnAuth", method: "Cram-md5", name: decoded.name, secret: decoded.digest });
}

/**
 * One row per verb: the gates a command passes before its handler, in
 * this order. `credentials`: while UCSPITLS=! and TLS is not active, the
 * command is refused and the session ends (tlsRequired). `offered`: where
 * it is false, `refusal` is the answer. PASS has no gate of its own: it
 * needs a USER, which has passed USER's.
 */
type Command = {
  /** Upper case; the client's is compared without regard to case. */
  readonly verb: string;
  readonly credentials?: true;
  readonly handle: (call: Call) => Step;
} & ({ readonly offered?: undefined } | { readonly offered: (config: Config, state: SessionState) => boolean; readonly refusal: string });

const COMMANDS: readonly Command[] = [
  { verb: "USER", credentials: true, offered: userPassAllowed, refusal: ERR_USER_PASS_NOT_AVAILABLE, handle: user },
  { verb: "PASS", handle: pass },
  { verb: "APOP", credentials: true, offered: apopOffered, refusal: ERR_APOP_NOT_AVAILABLE, handle: apop },
  { verb: "AUTH", credentials: true, offered: userPassAllowed, refusal: ERR_AUTH_NOT_AVAILABLE, handle: auth },
  { verb: "STLS", offered: stlsOffered, refusal: ERR_STLS_NOT_AVAILABLE, handle: stls },
  { verb: "CAPA", handle: capa },
  { verb: "NOOP", handle: noop },
  { verb: "QUIT", handle: quit },
];

/** UCSPITLS=! and credentials offered in clear: refused, logged, and the session ends. */
function tlsRequired(config: Config, state: SessionState): Step {
  const entry = logEntry(config, state, "Reject", "STLS::Any", "unknown");
  return step(state, reply(ERR_TLS_REQUIRED), { kind: "log", entry }, { kind: "quit", status: 1 });
}

/** A command line: its row, the row's gates, the row's handler. */
function command(config: Config, state: SessionState, line: Uint8Array): Step {
  const { verb, argument } = parseCommand(line);
  const row = COMMANDS.find((candidate) => equalsIgnoringCase(verb, candidate.verb));
  if (row === undefined) return step(state, reply(ERR_AUTHORIZATION_FIRST));
  if (row.credentials && tlsRequiredNow(config, state)) return tlsRequired(config, state);
  if (row.offered !== undefined && !row.offered(config, state)) return step(state, reply(row.refusal));
  return row.handle({ config, state, argument });
}

/** One line in, one step out; the line is all zeros when this returns. */
export function handleLine(config: Config, state: SessionState, event: LineEvent): Step {
  if (event.kind === "line") {
    const next = state.sasl === undefined ? command(config, state, event.line) : continueSasl(state, state.sasl, event.line);
    event.line.fill(0);
    return next;
  }
  // The reader kept nothing of a line too long or with a NUL in it.
  if (state.sasl !== undefined) {
    forgetSaslName(state.sasl);
    return step(withoutSasl(state), reply(ERR_SASL_MALFORMED));
  }
  return step(state, reply(event.kind === "too-long" ? ERR_LINE_TOO_LONG : ERR_NUL_IN_COMMAND));
}
