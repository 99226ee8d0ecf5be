// What is offered at a given moment. These look only at whether TLS is
// active: a SessionState fits, and this module needs nothing else of the
// session (so it does not import it).

import type { Config } from "./config.ts";
import { CAPABILITIES_ALWAYS, CAPABILITY_STLS, CAPABILITY_USER, capabilityList, capabilitySasl } from "./replies.ts";
import { saslMechanisms } from "./sasl.ts";

/** All this module needs of the session. */
type Tls = { readonly tls: boolean };

/** USER/PASS is accepted now: not in APOP-only mode, and not before STLS where STLS is required. */
export function userPassAllowed(config: Config, state: Tls): boolean {
  return config.apop !== "only" && !tlsRequiredNow(config, state);
}

/** Credentials must wait: UCSPITLS=! and TLS is not active yet. */
export function tlsRequiredNow(config: Config, state: Tls): boolean {
  return config.stls === "required" && !state.tls;
}

/** APOP is offered: POP3AUTH asks for it (`apop…` or `+apop…`). */
export function apopOffered(config: Config): boolean {
  return config.apop !== "off";
}

/** STLS is offered now: configured, its descriptors given, and TLS not already active. */
export function stlsOffered(config: Config, state: Tls): boolean {
  return config.stls !== "off" && config.ucspiTls !== undefined && !state.tls;
}

/** The CAPA list (RFC 2449): what is true at this moment, and what qmail-pop3d offers after login. */
export function capabilities(config: Config, state: Tls): string[] {
  const list = [...CAPABILITIES_ALWAYS];
  // AUTH goes with USER/PASS: the same passwords, the same checkpassword.
  if (userPassAllowed(config, state)) list.push(CAPABILITY_USER, capabilitySasl(saslMechanisms(config)));
  if (stlsOffered(config, state)) list.push(CAPABILITY_STLS);
  return list;
}

export function capabilityReply(config: Config, state: Tls): string {
  return capabilityList(capabilities(config, state));
}
