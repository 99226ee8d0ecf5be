// What the runtime and the front (src/front/qmail-popup.c) say to each
// other, as doc/control-protocol.md writes it down. The front introduces
// itself: its version, POP3TIMEOUT as it read it, its pid, the descriptors
// it inherited, its arguments and environment, as bytes. The runtime
// answers with its version, says it is alive at each wait, and, when a
// login is to run, sends the plan: descriptors, credentials, the variables
// to add, and the reply and log line for each outcome.

import { decimalOf } from "./decimal.ts";
import { byteString, concatBytes } from "./bytes.ts";
import { encodeNetstring, type NetstringItem } from "./netstring.ts";
import { OUTCOMES, OUTCOME_KINDS, type OutcomeKind } from "./outcome.ts";

export interface Introduction {
  /** The front's release: the session runs only where it is ours. */
  readonly version: string;
  /** POP3TIMEOUT, as the front read it (the one parse): each wait for the client. */
  readonly timeoutSeconds: number;
  /** The front's pid: the one tcpserver logs, the greeting's and the log's. */
  readonly pid: number;
  /** Descriptors the front inherited from its parent. */
  readonly open: ReadonlySet<number>;
  /** Arguments after the program name, as byte strings. */
  readonly args: readonly string[];
  /** The environment, as byte strings; a name given twice keeps its first value, as getenv(3). */
  readonly env: Readonly<Record<string, string>>;
}

/** `qmail-popup --version`: the front asks only for our version. */
export interface VersionQuery {
  readonly query: "version";
  readonly version: string;
}

/** The most POP3TIMEOUT the front passes: each deadline in milliseconds fits 31 bits. */
export const MAXIMUM_TIMEOUT_SECONDS = 2147483;

/** Builds the introduction from its items, in order; `version` first; undefined until `end`, or if malformed. */
export class IntroductionReader {
  private version: string | undefined;
  private timeoutSeconds: number | undefined;
  private pid: number | undefined;
  private readonly open = new Set<number>();
  private readonly args: string[] = [];
  private readonly env: Record<string, string> = Object.create(null);

  /**
   * Takes one item; the introduction (or the version query) once it is
   * complete, "more" before, "unversioned" if the first item is not the
   * front's version, "malformed" if not ours.
   */
  take(item: NetstringItem): Introduction | VersionQuery | "more" | "unversioned" | "malformed" {
    const text = byteString(item.value);
    if (this.version === undefined) {
      if (item.key !== "version") return "unversioned";
      this.version = text;
      return "more";
    }
    switch (item.key) {
      case "query":
        if (text !== "version" || this.pid !== undefined || this.timeoutSeconds !== undefined) return "malformed";
        return { query: "version", version: this.version };
      case "timeout": {
        const seconds = decimalOf(text, 7);
        if (seconds === undefined || this.timeoutSeconds !== undefined) return "malformed";
        if (seconds < 1 || seconds > MAXIMUM_TIMEOUT_SECONDS) return "malformed";
        this.timeoutSeconds = seconds;
        return "more";
      }
      case "pid":
      case "open": {
        const number = decimalOf(text, 9);
        if (number === undefined) return "malformed";
        if (item.key === "pid") this.pid = number;
        else this.open.add(number);
        return "more";
      }
      case "arg":
        this.args.push(text);
        return "more";
      case "env": {
        const equals = text.indexOf("=");
        // An entry without `=` names nothing getenv(3) could find; it still reaches the login program.
        if (equals >= 0 && !(text.slice(0, equals) in this.env)) this.env[text.slice(0, equals)] = text.slice(equals + 1);
        return "more";
      }
      case "end":
        if (this.pid === undefined || this.timeoutSeconds === undefined) return "malformed";
        return { version: this.version, timeoutSeconds: this.timeoutSeconds, pid: this.pid, open: this.open, args: this.args, env: this.env };
      default:
        return "malformed";
    }
  }
}

export interface Plan {
  /** The descriptors that become the login program's fd 0 and fds 1 and 2. */
  readonly input: number;
  readonly output: number;
  /** `name\0secret\0timestamp\0`, for fd 3. */
  readonly credentials: Uint8Array;
  /**
   * What changes in the login program's environment, as byte strings: a
   * value sets the name (SSL_* after STLS, TCP* from a PROXY header),
   * undefined removes it (what a PROXY header made wrong).
   */
  readonly environment: Readonly<Record<string, string | undefined>>;
  /** The fd-5 line for each outcome; none where fd 5 is closed. */
  readonly lines: Readonly<Record<OutcomeKind, string>> | undefined;
}

/** The plan as the front reads it, with the reply for each outcome (src/core/outcome.ts); `run` last, so a plan cut short is never run. */
export function encodePlan(plan: Plan): Uint8Array {
  const items = [
    encodeNetstring("input", String(plan.input)),
    encodeNetstring("output", String(plan.output)),
    encodeNetstring("credentials", plan.credentials),
    ...Object.entries(plan.environment).map(([name, value]) =>
      value === undefined ? encodeNetstring("unset", name) : encodeNetstring("env", `${name}=${value}`),
    ),
  ];
  for (const kind of OUTCOME_KINDS) {
    const reply = OUTCOMES[kind].reply;
    if (reply !== undefined) items.push(encodeNetstring(`reply-${kind}`, reply));
    if (plan.lines !== undefined) items.push(encodeNetstring(`log-${kind}`, plan.lines[kind]));
  }
  items.push(encodeNetstring("run"));
  const encoded = concatBytes(items);
  // The credentials' netstring is a copy of the secret: only what is returned, which the caller wipes, keeps it.
  for (const item of items) item.fill(0);
  return encoded;
}

/** The session ended without a login, deliberately: 0 after QUIT, 1 otherwise. The front exits so. */
export function encodeEnd(status: 0 | 1): Uint8Array {
  return encodeNetstring("end", String(status));
}

/** Where the session now writes (after STLS), so that the front can say so if the runtime dies. */
export function encodeOutputNotice(output: number): Uint8Array {
  return encodeNetstring("output", String(output));
}

/** Our first item back, before a byte to the client: the front compares it with its own. */
export function encodeVersion(version: string): Uint8Array {
  return encodeNetstring("version", version);
}

/** Said at each wait for the client or the log: a runtime silent far longer is wedged, and the front ends it. */
export const ALIVE: Uint8Array = encodeNetstring("alive");
