// The POP3 AUTHORIZATION state as a pure function: a state and one input
// line give the next state and what to do. The platform layer carries the
// actions out; nothing here touches a descriptor.

import { encodeBase64 } from "./base64.ts";
import { bytesOf, concatBytes, copyBytes, equalsIgnoringCase } from "./bytes.ts";
import { capabilityReply, stlsOffered, tlsRequiredNow, userPassAllowed } from "./capabilities.ts";
import type { Config } from "./config.ts";
import { COMMAND_LINE_LIMIT, type LineEvent } from "./line-reader.ts";
import type { AuthMethod, AuthResult, LogEntry } from "./log.ts";
import { SASL_RESPONSE_LIMIT, decodeCramMd5, decodePlain, decodeResponse, saslMechanisms } from "./sasl.ts";

/** A SASL exchange under way: the next line is the client's response, not a command. */
export type SaslExchange =
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

export interface Step {
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
  if (config.apop === "off") return bytesOf("+OK\r\n");
  return concatBytes([bytesOf("+OK "), timestamp, bytesOf("\r\n")]);
}

export function protocolLabel(config: Config, state: SessionState): "POP3" | "POP3S" {
  return state.tls || config.implicitTls ? "POP3S" : "POP3";
}

const OK = "+OK \r\n";
const SYNTAX = "-ERR syntax error\r\n";

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

/** The refusal where UCSPITLS=! and a client offers credentials in clear. */
function tlsRequiredRefusal(config: Config, state: SessionState): Step {
  return step(
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
  if (state.sasl !== undefined) return handleSaslResponse(state, state.sasl, event);
  if (event.kind === "too-long") return step(state, reply("-ERR line too long\r\n"));
  if (event.kind === "nul") return step(state, reply("-ERR NUL in command\r\n"));
  const { verb, argument } = parseCommand(event.line);
  const is = (name: string) => equalsIgnoringCase(verb, name);

  if (is("QUIT")) return step(state, reply(OK), { kind: "quit", status: 0 });
  if (is("NOOP")) return step(state, reply(OK));
  if (is("CAPA")) return step(state, reply(capabilityReply(config, state)));

  if (is("STLS")) {
    if (!stlsOffered(config, state)) return step(state, reply("-ERR STLS not available\r\n"));
    // A USER given in clear is forgotten: it may have been injected.
    return { state: { ...state, user: undefined, tls: true }, actions: [reply("+OK starting TLS negotiation\r\n"), { kind: "startTls" }] };
  }

  if (is("USER")) {
    if (tlsRequiredNow(config, state)) return tlsRequiredRefusal(config, state);
    if (!userPassAllowed(config, state)) return step(state, reply("-ERR USER/PASS not available, use APOP\r\n"));
    if (argument.length === 0) return step(state, reply(SYNTAX));
    return { state: { ...state, user: copyBytes(argument) }, actions: [reply(OK)] };
  }

  if (is("PASS")) {
    if (state.user === undefined) return step(state, reply("-ERR USER first\r\n"));
    if (argument.length === 0) return step(state, reply(SYNTAX));
    return {
      state: { ...state, user: undefined },
      actions: [{ kind: "spawnAuth", method: "User", name: state.user, secret: copyBytes(argument) }],
    };
  }

  if (is("APOP")) {
    if (tlsRequiredNow(config, state)) return tlsRequiredRefusal(config, state);
    if (config.apop === "off") return step(state, reply("-ERR APOP not available\r\n"));
    const space = argument.indexOf(0x20);
    if (space < 0) return step(state, reply(SYNTAX));
    return step(state, {
      kind: "spawnAuth",
      method: "Apop",
      name: copyBytes(argument.subarray(0, space)),
      secret: copyBytes(argument.subarray(space + 1)),
    });
  }

  if (is("AUTH")) return startSasl(config, state, argument);

  return step(state, reply("-ERR authorization first\r\n"));
}

const SASL_CANCELLED = "-ERR authentication cancelled\r\n";
const SASL_MALFORMED = "-ERR malformed SASL response\r\n";
/** LOGIN's prompts: base64 of `Username:` and `Password:`. */
const LOGIN_USERNAME = "+ VXNlcm5hbWU6\r\n";
const LOGIN_PASSWORD = "+ UGFzc3dvcmQ6\r\n";

/** `AUTH`, `AUTH mechanism`, `AUTH mechanism initial-response` (RFC 5034). */
function startSasl(config: Config, state: SessionState, argument: Uint8Array): Step {
  if (tlsRequiredNow(config, state)) return tlsRequiredRefusal(config, state);
  if (!userPassAllowed(config, state)) return step(state, reply("-ERR AUTH not available, use APOP\r\n"));
  const offered = saslMechanisms(config);
  if (argument.length === 0) {
    return step(state, reply(`+OK SASL mechanisms follow\r\n${offered.map((name) => name + "\r\n").join("")}.\r\n`));
  }
  const { verb: name, argument: initial } = parseCommand(argument);
  const mechanism = offered.find((candidate) => equalsIgnoringCase(name, candidate));
  if (mechanism === undefined) return step(state, reply("-ERR unrecognized authentication type\r\n"));
  const exchanging = (sasl: SaslExchange, challenge: string): Step => ({ state: { ...state, sasl }, actions: [reply(challenge)] });

  if (mechanism === "CRAM-MD5") {
    // The challenge is the APOP timestamp: fd 3 carries it as the third field anyway.
    if (initial.length > 0) return step(state, reply(SASL_MALFORMED));
    return exchanging({ mechanism }, `+ ${encodeBase64(state.timestamp ?? new Uint8Array())}\r\n`);
  }
  if (initial.length === 0) return exchanging({ mechanism }, mechanism === "PLAIN" ? "+ \r\n" : LOGIN_USERNAME);
  const response = decodeResponse(initial, true);
  if (response === "cancel") return step(state, reply(SASL_CANCELLED));
  if (response === "malformed") return step(state, reply(SASL_MALFORMED));
  if (mechanism === "PLAIN") return finishPlain(state, response);
  return loginName(state, response);
}

function handleSaslResponse(state: SessionState, sasl: SaslExchange, event: LineEvent): Step {
  const idle = withoutSasl(state);
  if (event.kind !== "line") return step(idle, reply(SASL_MALFORMED));
  const response = decodeResponse(event.line, false);
  if (response === "cancel") return step(idle, reply(SASL_CANCELLED));
  if (response === "malformed") return step(idle, reply(SASL_MALFORMED));
  switch (sasl.mechanism) {
    case "PLAIN":
      return finishPlain(idle, response);
    case "LOGIN":
      if (sasl.name === undefined) return loginName(idle, response);
      if (response.length === 0 || response.includes(0)) return step(idle, reply(SASL_MALFORMED));
      return step(idle, { kind: "spawnAuth", method: "Login", name: sasl.name, secret: response });
    case "CRAM-MD5": {
      const decoded = decodeCramMd5(response);
      if (decoded === "malformed" || decoded.name.includes(0)) return step(idle, reply(SASL_MALFORMED));
      return step(idle, { kind: "spawnAuth", method: "Cram-md5", name: decoded.name, secret: decoded.digest });
    }
  }
}

function finishPlain(state: SessionState, response: Uint8Array): Step {
  const decoded = decodePlain(response);
  response.fill(0);
  if (decoded === "authzid") return step(state, reply("-ERR [AUTH] authorization identity not allowed\r\n"));
  if (decoded === "malformed") return step(state, reply(SASL_MALFORMED));
  return step(state, { kind: "spawnAuth", method: "Plain", name: decoded.name, secret: decoded.password });
}

function loginName(state: SessionState, name: Uint8Array): Step {
  if (name.length === 0 || name.includes(0)) return step(withoutSasl(state), reply(SASL_MALFORMED));
  return { state: { ...state, sasl: { mechanism: "LOGIN", name } }, actions: [reply(LOGIN_PASSWORD)] };
}

export type ChildOutcome = { readonly kind: "exited"; readonly code: number } | { readonly kind: "signaled" };

/**
 * What the subprogram's end means: the reply (none on success), the log
 * result and our exit status. Failures carry RFC 3206 codes (CAPA offers
 * RESP-CODES and AUTH-RESP-CODE); the texts after them are the C program's.
 */
export function authOutcome(outcome: ChildOutcome): { reply?: string; result: AuthResult; status: 0 | 1 } {
  if (outcome.kind === "signaled") return { reply: "-ERR [SYS/TEMP] aack, child crashed\r\n", result: "Reject", status: 1 };
  if (outcome.code === 111) return { reply: "-ERR [SYS/TEMP] authorization failed\r\n", result: "Reject", status: 1 };
  if (outcome.code !== 0) return { reply: "-ERR [AUTH] authorization failed\r\n", result: "Reject", status: 1 };
  return { result: "Accept", status: 0 };
}
