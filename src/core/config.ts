// What the environment and the command line say, read once at start.

import { decimalOf } from "./decimal.ts";

export type ApopMode = "off" | "also" | "only";
export type StlsMode = "off" | "offered" | "required";
export type Environment = Readonly<Record<string, string | undefined>>;

export interface Config {
  readonly hostname: string;
  /** The subprogram and its arguments. */
  readonly subprogram: readonly string[];
  readonly apop: ApopMode;
  /** POP3AUTH names CRAM-MD5 (it needs a checkpassword that verifies it). */
  readonly cramMd5: boolean;
  readonly stls: StlsMode;
  /** Idle timeout for each line read and each write, in seconds: POP3TIMEOUT as the front read it (the one parse, src/front/qmail-popup.c). */
  readonly timeoutSeconds: number;
  /** The client's address, from the launcher's environment (see clientOf); `unknown` where none is given. */
  readonly remoteIp: string;
  /** The client's name, where the launcher looked it up; else `unknown`. */
  readonly remoteHost: string;
  /** TLS is active from the start (see implicitTlsOf). */
  readonly implicitTls: boolean;
  /** The UCSPI-TLS descriptors sslserver -n named, where all three are given. */
  readonly ucspiTls: UcspiTlsDescriptors | undefined;
  /** QMAIL_POPUP_PROXY set and not empty (by tcprules, for a balancer): a PROXY header comes first. */
  readonly proxyHeader: boolean;
  /** QMAIL_POPUP_LOGIN_LIMIT: the most seconds from the greeting to a login; undefined, no limit (as the C program). */
  readonly loginLimitSeconds: number | undefined;
}

export interface UcspiTlsDescriptors {
  /** SSLCTLFD: the control socket (`Y` asks for the handshake). */
  readonly control: number;
  /** SSLREADFD: decrypted bytes from the client. */
  readonly read: number;
  /** SSLWRITEFD: bytes to be encrypted to the client. */
  readonly write: number;
}

export const DEFAULT_TIMEOUT_SECONDS = 1200;

/** POP3AUTH: unset → USER/PASS; `+apop…` → both; `apop…` → APOP only (any case). */
export function apopModeOf(pop3auth: string | undefined): ApopMode {
  const value = (pop3auth ?? "").toLowerCase();
  if (value.startsWith("+apop")) return "also";
  if (value.startsWith("apop")) return "only";
  return "off";
}

/** POP3AUTH mentions `cram` (any case): `+apop+cram`, `cram-md5`. */
export function cramMd5Of(pop3auth: string | undefined): boolean {
  return (pop3auth ?? "").toLowerCase().includes("cram");
}

/** UCSPITLS: unset or `-` → no STLS; `!` → required; anything else → offered. */
export function stlsModeOf(ucspitls: string | undefined): StlsMode {
  if (ucspitls === undefined || ucspitls === "-") return "off";
  return ucspitls === "!" ? "required" : "offered";
}

/**
 * QMAIL_POPUP_LOGIN_LIMIT: 1 to 999999 seconds (11.5 days; any longer is
 * no limit worth setting); unset, empty, 0 or anything else: no limit.
 */
export function loginLimitOf(value: string | undefined): number | undefined {
  const seconds = decimalOf(value, 6);
  return seconds !== undefined && seconds > 0 ? seconds : undefined;
}

export function ucspiTlsOf(env: Environment): UcspiTlsDescriptors | undefined {
  const control = decimalOf(env.SSLCTLFD, 9);
  const read = decimalOf(env.SSLREADFD, 9);
  const write = decimalOf(env.SSLWRITEFD, 9);
  if (control === undefined || read === undefined || write === undefined) return undefined;
  return { control, read, write };
}

function firstSet(env: Environment, ...names: string[]): string | undefined {
  for (const name of names) {
    const value = env[name];
    if (value !== undefined) return value;
  }
  return undefined;
}

/**
 * Where each launcher puts the client's address and name, in order of
 * preference: tcpserver's first (a PROXY header's addresses come as its),
 * then sslserver's, then those of launchers that give an address only.
 * The name is taken from the launcher whose address is taken, so that a
 * PROXY header's address is never logged with the balancer's name.
 */
const LAUNCHERS: readonly { readonly addresses: readonly string[]; readonly names: readonly string[] }[] = [
  // tcpserver; sslserver -e; a PROXY header.
  { addresses: ["TCP6REMOTEIP", "TCPREMOTEIP"], names: ["TCP6REMOTEHOST", "TCPREMOTEHOST"] },
  // sslserver.
  { addresses: ["SSLREMOTEIP"], names: ["SSLREMOTEHOST"] },
  // systemd, a socket with Accept=yes.
  { addresses: ["REMOTE_ADDR"], names: [] },
  // xinetd, and stunnel's exec mode: the address, never a name.
  { addresses: ["REMOTE_HOST"], names: [] },
  // socat.
  { addresses: ["SOCAT_PEERADDR"], names: [] },
];

export interface Client {
  readonly ip: string;
  readonly host: string;
}

/** The client's address and name for the log, from the first launcher that gave an address. */
export function clientOf(env: Environment): Client {
  const launcher = LAUNCHERS.find((each) => firstSet(env, ...each.addresses) !== undefined) ?? LAUNCHERS[0]!;
  const ip = firstSet(env, ...launcher.addresses);
  return { ip: ip === undefined ? "unknown" : addressOf(ip), host: firstSet(env, ...launcher.names) ?? "unknown" };
}

/**
 * An address as the log shows it: a leading `::ffff:` (an IPv4 client on
 * an IPv6 socket) is dropped; socat's `[0000:0000:…:0001]` loses its
 * brackets and is written short, as tcpserver writes it (`::1`, or
 * `127.0.0.1` for an IPv4 client).
 */
export function addressOf(value: string): string {
  const bare = /^\[(.*)\]$/.exec(value)?.[1] ?? value;
  const groups = /^[0-9a-fA-F]{1,4}(:[0-9a-fA-F]{1,4}){7}$/.test(bare) ? bare.split(":").map((group) => parseInt(group, 16)) : undefined;
  if (groups !== undefined) return shortIpv6(groups);
  return bare.startsWith("::ffff:") ? bare.slice("::ffff:".length) : bare;
}

/** Eight 16-bit groups written as RFC 5952 says (an IPv4-mapped address as IPv4). */
function shortIpv6(groups: readonly number[]): string {
  const [a, b, c, d, e, f, g, h] = groups as [number, number, number, number, number, number, number, number];
  if (a === 0 && b === 0 && c === 0 && d === 0 && e === 0 && f === 0xffff) return `${g >> 8}.${g & 255}.${h >> 8}.${h & 255}`;
  // The longest run of two or more zero groups (the first of equals) becomes `::`.
  let runStart = -1;
  let runLength = 1;
  for (let start = 0; start < 8; start++) {
    let length = 0;
    while (start + length < 8 && groups[start + length] === 0) length++;
    if (length > runLength) [runStart, runLength] = [start, length];
  }
  const hex = (part: readonly number[]) => part.map((group) => group.toString(16)).join(":");
  if (runStart < 0) return hex(groups);
  return `${hex(groups.slice(0, runStart))}::${hex(groups.slice(runStart + runLength))}`;
}

/**
 * Implicit TLS: the launcher did the handshake before starting us. Known
 * by what the administrator says (POP3S set, any value: stunnel and
 * systemd set nothing that says TLS), by sslserver's SSL_PROTOCOL (set in
 * the environment only where sslserver did the handshake first, with -s;
 * under -n it comes at STLS, and sslserver's own SSL_UID, SSL_CHROOT, …
 * mean nothing about TLS), or by the local port, 995 (sslserver without
 * -e sets SSLLOCALPORT only). PROTO=SSL says nothing: sslserver sets it
 * with -n too.
 */
export function implicitTlsOf(env: Environment): boolean {
  if (env.POP3S !== undefined || env.SSL_PROTOCOL !== undefined) return true;
  return firstSet(env, "TCP6LOCALPORT", "TCPLOCALPORT", "SSLLOCALPORT") === "995";
}

/**
 * Returns undefined when the arguments are missing (the caller prints
 * usage). POP3TIMEOUT is not read here: the front parses it and passes
 * timeoutSeconds in its introduction. launcher: the environment as the
 * launcher set it, before a PROXY header's addresses were merged into env:
 * whether the connection is TLS is the launcher's knowledge, never a
 * client-supplied header's.
 */
export function readConfig(
  args: readonly string[],
  env: Environment,
  timeoutSeconds: number = DEFAULT_TIMEOUT_SECONDS,
  launcher: Environment = env,
): Config | undefined {
  const [hostname, ...subprogram] = args;
  if (hostname === undefined || subprogram.length === 0) return undefined;
  const client = clientOf(env);
  return {
    hostname,
    subprogram,
    apop: apopModeOf(env.POP3AUTH),
    cramMd5: cramMd5Of(env.POP3AUTH),
    stls: stlsModeOf(env.UCSPITLS),
    timeoutSeconds,
    remoteIp: client.ip,
    remoteHost: client.host,
    implicitTls: implicitTlsOf(launcher),
    ucspiTls: ucspiTlsOf(env),
    proxyHeader: (env.QMAIL_POPUP_PROXY ?? "") !== "",
    loginLimitSeconds: loginLimitOf(env.QMAIL_POPUP_LOGIN_LIMIT),
  };
}
