// What the environment and the command line say, read once at start.

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
  /** Idle timeout for each line read and each write, in seconds. */
  readonly timeoutSeconds: number;
  readonly remoteIp: string;
  readonly remoteHost: string;
  /** Local port 995: implicit TLS (sslserver without -n). */
  readonly implicitTls: boolean;
  /** The UCSPI-TLS descriptors sslserver -n named, where all three are given. */
  readonly ucspiTls: UcspiTlsDescriptors | undefined;
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

export function timeoutOf(pop3timeout: string | undefined): number {
  if (pop3timeout === undefined || !/^[0-9]+$/.test(pop3timeout)) return DEFAULT_TIMEOUT_SECONDS;
  const seconds = Number(pop3timeout);
  return seconds > 0 ? seconds : DEFAULT_TIMEOUT_SECONDS;
}

function descriptorOf(value: string | undefined): number | undefined {
  return value !== undefined && /^[0-9]{1,9}$/.test(value) ? Number(value) : undefined;
}

export function ucspiTlsOf(env: Environment): UcspiTlsDescriptors | undefined {
  const control = descriptorOf(env.SSLCTLFD);
  const read = descriptorOf(env.SSLREADFD);
  const write = descriptorOf(env.SSLWRITEFD);
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

/** Returns undefined when the arguments are missing (the caller prints usage). */
export function readConfig(args: readonly string[], env: Environment): Config | undefined {
  const [hostname, ...subprogram] = args;
  if (hostname === undefined || subprogram.length === 0) return undefined;
  const remoteIp = firstSet(env, "TCP6REMOTEIP", "TCPREMOTEIP") ?? "unknown";
  return {
    hostname,
    subprogram,
    apop: apopModeOf(env.POP3AUTH),
    cramMd5: cramMd5Of(env.POP3AUTH),
    stls: stlsModeOf(env.UCSPITLS),
    timeoutSeconds: timeoutOf(env.POP3TIMEOUT),
    remoteIp: remoteIp.startsWith("::ffff:") ? remoteIp.slice("::ffff:".length) : remoteIp,
    remoteHost: firstSet(env, "TCP6REMOTEHOST", "TCPREMOTEHOST") ?? "unknown",
    implicitTls: firstSet(env, "TCP6LOCALPORT", "TCPLOCALPORT") === "995",
    ucspiTls: ucspiTlsOf(env),
  };
}
