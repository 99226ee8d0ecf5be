// One POP3 authorization session, the same on every runtime. It reads the
// front's introduction (arguments, environment, descriptors), greets,
// reads lines and applies the core's steps; when a login is to run, it
// hands the front the plan and ends: the front starts the login program.

import { allocateBytes, bytesOf, concatBytes } from "./core/bytes.ts";
import { encodeCheckpasswordInput } from "./core/checkpassword.ts";
import { readConfig, type Config, type Environment } from "./core/config.ts";
import { ALIVE, IntroductionReader, encodeEnd, encodeOutputNotice, encodePlan, encodeVersion, type Introduction, type VersionQuery } from "./core/front.ts";
import { INPUT_LIMIT, LineReader, type LineEvent } from "./core/line-reader.ts";
import { PROXY_HEADER_LIMIT, proxyEnvironment, proxyStep } from "./core/proxy-protocol.ts";
import { formatLogLine } from "./core/log.ts";
import { netstringItem, netstringLength } from "./core/netstring.ts";
import { OUTCOMES, OUTCOME_KINDS, type OutcomeKind } from "./core/outcome.ts";
import { usage } from "./core/replies.ts";
import { SASL_RESPONSE_LIMIT } from "./core/sasl.ts";
import { greeting, handleLine, initialState, lineLimit, logEntry, type Action, type SessionState } from "./core/session.ts";
import { apopTimestamp } from "./core/timestamp.ts";
import { TLS_ANSWER_LIMIT, parseTlsEnvironment, tlsAnswerComplete } from "./core/tls-environment.ts";
import type { Platform } from "./platform/types.ts";
import { VERSION } from "./version.ts";

const LOG_FD = 5;
/** The most the front may say: its arguments and environment, as execve(2) took them. */
const INTRODUCTION_LIMIT = 8 * 1024 * 1024;
/** The runtime's own failure: the front answers the client `-ERR [SYS/TEMP] …`. */
export const RUNTIME_FAILURE_STATUS = 111;

export async function serve(platform: Platform): Promise<never> {
  const control = platform.controlFd;
  if (control === undefined) {
    await platform.write(2, bytesOf("qmail-popup: this is qmail-popup's runtime: run qmail-popup, the program next to it\n"), platform.nowMs() + 1000);
    return platform.exit(RUNTIME_FAILURE_STATUS);
  }
  const introduction = readIntroduction(platform, control);
  // Our version first, before a byte to the client: the front compares it
  // with its own, and on a mismatch says so on fd 2 and answers the client.
  platform.writeControl(control, encodeVersion(VERSION));
  if ("query" in introduction) return platform.exit(0);
  if (introduction.version !== VERSION) return platform.exit(RUNTIME_FAILURE_STATUS);
  // Every deliberate end is announced to the front; any other end of ours is a failure it reports.
  const end = (status: 0 | 1): never => {
    platform.writeControl(control, encodeEnd(status));
    return platform.exit(status);
  };
  const received = readConfig(introduction.args, introduction.env, introduction.timeoutSeconds);
  if (received === undefined) {
    await platform.write(1, bytesOf(usage(VERSION)), platform.nowMs() + 10_000);
    return end(1);
  }
  // Behind a load balancer the addresses are the PROXY header's: for the log and for the login program.
  const proxied = received.proxyHeader ? await readProxyHeader(platform, control, end) : {};
  const config = received.proxyHeader ? readConfig(introduction.args, { ...introduction.env, ...proxied }, introduction.timeoutSeconds, introduction.env)! : received;
  return new Session(platform, await withUsableTls(platform, config, introduction.open), introduction, control, end, proxied).run();
}
/** A balancer sends its header at once: a connection that does not is not from one. */
const PROXY_HEADER_SECONDS = 10;

/**
 * Reads the PROXY header (v1 or v2) exactly, never a byte past it: what
 * follows is the client's. Anything malformed, cut short or slow ends the
 * connection without a greeting, the reason on fd 2.
 */
async function readProxyHeader(platform: Platform, control: number, end: (status: 1) => never): Promise<Environment> {
  platform.writeControl(control, ALIVE);
  const deadline = platform.nowMs() + PROXY_HEADER_SECONDS * 1000;
  const received = new Uint8Array(PROXY_HEADER_LIMIT);
  let length = 0;
  const refuse = async (reason: string): Promise<never> => {
    await platform.write(2, bytesOf(`qmail-popup: PROXY header refused: ${reason}\n`), platform.nowMs() + 1000);
    return end(1);
  };
  for (;;) {
    const step = proxyStep(received.subarray(0, length));
    if (step.kind === "done") return proxyEnvironment(step.header);
    if (step.kind === "malformed") return refuse(step.reason);
    const room = received.subarray(length, length + (step.kind === "read" ? step.bytes : step.limit));
    const got =
      step.kind === "read" ? await platform.read(0, room, deadline) : await platform.readLinePart(0, room, deadline);
    if (got === "timeout") return refuse(`none within ${PROXY_HEADER_SECONDS} seconds`);
    if (got === 0) return refuse("the connection ended first");
    length += got;
  }
}

/**
 * Reads what the front says first, whole: it says nothing more until we
 * answer, so reading ahead takes nothing that is not the introduction.
 */
function readIntroduction(platform: Platform, control: number): Introduction | VersionQuery {
  const reader = new IntroductionReader();
  // Most introductions fit one read; a small buffer is less for the runtime to allocate before the greeting.
  const chunk = new Uint8Array(8192);
  let pending: Uint8Array = new Uint8Array(0);
  let total = 0;
  for (;;) {
    const got = platform.readControl(control, chunk);
    total += got;
    if (got <= 0 || total > INTRODUCTION_LIMIT) throw new Error("the front's introduction is cut short or too long");
    // What is left of an item read in part is copied out: the next read reuses the chunk.
    pending = pending.length === 0 ? chunk.subarray(0, got) : concatBytes([pending, chunk.subarray(0, got)]);
    for (;;) {
      const colon = pending.indexOf(0x3a);
      const length = netstringLength(colon < 0 ? pending : pending.subarray(0, colon + 1));
      if (length === "malformed") throw new Error("the front's introduction is malformed");
      if (length === "more" || pending.length < colon + 1 + length) break;
      const item = netstringItem(pending.subarray(colon + 1, colon + 1 + length));
      if (item === "malformed") throw new Error("the front's introduction is malformed");
      const taken = reader.take(item);
      if (taken === "malformed") throw new Error("the front's introduction is malformed");
      if (taken === "unversioned")
        throw new Error(`the front (qmail-popup) said no version first: it is not qmail-popup ${VERSION}: install qmail-popup and qmail-popup-runtime from one release`);
      pending = pending.subarray(colon + 1 + length);
      if (taken !== "more") return taken;
    }
    if (pending.buffer === chunk.buffer) pending = concatBytes([pending]);
  }
}

/** Where the session reads and writes: fds 0/1, or the UCSPI-TLS pipes after STLS. */
interface Channel {
  readonly input: number;
  readonly output: number;
}

class Session {
  private channel: Channel = { input: 0, output: 1 };
  private state: SessionState;
  private readonly reader = new LineReader(SASL_RESPONSE_LIMIT);
  private readonly timestamp: Uint8Array;
  /** What sslserver told us at STLS: SSL_* variables for the login program. */
  private tlsEnvironment: Record<string, string> = {};
  /** Bytes read from the client so far: past INPUT_LIMIT the session ends. */
  private received = 0;
  /** When QMAIL_POPUP_LOGIN_LIMIT runs out, counted from the start; never, where unset. */
  private readonly loginDeadline: number;

  constructor(
    private readonly platform: Platform,
    private readonly config: Config,
    private readonly introduction: Introduction,
    private readonly control: number,
    /** Ends the session with this status, telling the front so. */
    private readonly end: (status: 0 | 1) => never,
    /** What a PROXY header changed in the environment, for the login program too. */
    private readonly proxied: Environment,
  ) {
    this.loginDeadline = config.loginLimitSeconds === undefined ? Infinity : platform.nowMs() + config.loginLimitSeconds * 1000;
    this.timestamp = apopTimestamp(introduction.pid, platform.unixSeconds(), config.hostname);
    this.state = initialState(config, this.timestamp);
  }

  async run(): Promise<never> {
    await this.send(greeting(this.config, this.timestamp));
    this.platform.forbidDumps();
    this.platform.endWithFront(this.introduction.pid);
    for (;;) {
      const event = await this.readLine();
      const step = handleLine(this.config, this.state, event);
      this.state = step.state;
      // The actions hold copies of what they need: the line (a password,
      // perhaps) is wiped now, before a login that never returns.
      if (event.kind === "line") event.line.fill(0);
      for (const action of step.actions) await this.perform(action);
    }
  }

  /** Each wait starts here: the front hears we are alive, so that it ends us only when we are not. POP3TIMEOUT from now, or the login limit if that comes first. */
  private deadline(): number {
    this.platform.writeControl(this.control, ALIVE);
    return Math.min(this.platform.nowMs() + this.config.timeoutSeconds * 1000, this.loginDeadline);
  }

  /** Ends the session over a bound the client ran into, saying which on fd 2 (the operator's log). */
  private async refuse(reason: string): Promise<never> {
    await this.platform.write(2, bytesOf(`qmail-popup: ${reason}: session ended\n`), this.platform.nowMs() + 1000);
    return this.end(1);
  }

  /** Writes to the client; a client that is gone or stuck ends the session. */
  private async send(bytes: Uint8Array): Promise<void> {
    if (!(await this.platform.write(this.channel.output, bytes, this.deadline()))) this.end(1);
  }

  /**
   * Reads one line. The deadline covers the whole line, so a client
   * dripping a byte now and then cannot hold the connection open; the
   * platform checks it on every read, so a client whose bytes are always
   * there is cut at it too. INPUT_LIMIT bounds the bytes (and so the
   * time a core spends on them) before a login, at any rate.
   */
  private async readLine(): Promise<LineEvent> {
    const deadline = this.deadline();
    const window = allocateBytes(this.reader.limit);
    for (;;) {
      const got = await this.platform.readLinePart(this.channel.input, window, deadline);
      if (got === "timeout" && this.platform.nowMs() >= this.loginDeadline) {
        return this.refuse(`no login within ${this.config.loginLimitSeconds} seconds (QMAIL_POPUP_LOGIN_LIMIT)`);
      }
      if (got === "timeout" || got === 0) this.end(1);
      this.received += got;
      if (this.received > INPUT_LIMIT) {
        window.fill(0, 0, got);
        this.reader.wipe();
        return this.refuse(`more than ${INPUT_LIMIT} bytes before a login`);
      }
      const { consumed, event } = this.reader.feed(window.subarray(0, got), lineLimit(this.state));
      window.fill(0, 0, got);
      // The platform reads no further than an LF: anything after it would be a command lost.
      if (consumed !== got) throw new Error(`read ${got} bytes past the end of a line`);
      if (event !== undefined) return event;
    }
  }

  private async perform(action: Action): Promise<void> {
    switch (action.kind) {
      case "reply":
        return this.send(bytesOf(action.text));
      case "log":
        return this.log(formatLogLine({ pid: this.introduction.pid, ...action.entry }));
      case "quit":
        return this.end(action.status);
      case "startTls":
        return this.startTls();
      case "spawnAuth":
        return this.login(action);
    }
  }

  /**
   * STLS over UCSPI-TLS: the +OK has been written in clear; `Y` on the
   * control socket asks sslserver for the handshake, its answer brings the
   * SSL_* variables, and from then on the session reads and writes the
   * TLS pipes. If the handshake fails, sslserver ends us. An answer longer
   * than we take ends the session.
   */
  private async startTls(): Promise<void> {
    const tls = this.config.ucspiTls!;
    const deadline = this.deadline();
    if (!(await this.platform.write(tls.control, bytesOf("Y"), deadline))) this.end(1);
    const answer = new Uint8Array(TLS_ANSWER_LIMIT);
    let length = 0;
    while (!tlsAnswerComplete(answer.subarray(0, length))) {
      if (length === answer.length) {
        await this.platform.write(2, bytesOf(`qmail-popup: sslserver's answer is longer than ${TLS_ANSWER_LIMIT} bytes\n`), deadline);
        this.end(1);
      }
      // sslserver says nothing after its answer: a plain read takes nothing that is not the answer.
      const got = await this.platform.read(tls.control, answer.subarray(length), deadline);
      if (got === "timeout" || got === 0) this.end(1);
      length += got;
    }
    const parsed = parseTlsEnvironment(answer.subarray(0, length));
    if ("refused" in parsed) return this.refuse(`sslserver's answer refused: ${parsed.refused}`);
    this.tlsEnvironment = parsed.variables;
    this.channel = { input: tls.read, output: tls.write };
    this.platform.writeControl(this.control, encodeOutputNotice(tls.write));
  }

  /** Hands the front the plan for this login, and ends: the front runs the login program. */
  private async login(action: Extract<Action, { kind: "spawnAuth" }>): Promise<never> {
    const credentials = encodeCheckpasswordInput(action.name, action.secret, this.timestamp);
    action.secret.fill(0);
    const lineFor = (kind: OutcomeKind) =>
      formatLogLine({ pid: this.introduction.pid, ...logEntry(this.config, this.state, OUTCOMES[kind].result, `AUTH::${action.method}`, action.name) });
    const plan = encodePlan({
      input: this.channel.input,
      output: this.channel.output,
      credentials,
      environment: { ...this.proxied, ...this.tlsEnvironment },
      lines: this.introduction.open.has(LOG_FD) ? (Object.fromEntries(OUTCOME_KINDS.map((kind) => [kind, lineFor(kind)])) as Record<OutcomeKind, string>) : undefined,
    });
    credentials.fill(0);
    // The front reads while we write: this returns once the plan is with it, or it is gone.
    this.platform.writeControl(this.control, plan);
    plan.fill(0);
    return this.platform.exit(0);
  }

  /** fd 5, where our parent opened it. A log that cannot take the line in time is skipped. */
  private async log(line: string): Promise<void> {
    if (!this.introduction.open.has(LOG_FD)) return;
    await this.platform.write(LOG_FD, bytesOf(line), this.deadline());
  }
}

/**
 * The configuration with STLS only where it can work. UCSPITLS set, but the
 * descriptors sslserver -n would give are missing or closed: STLS cannot be offered. Say why on fd 2 (the operator's log);
 * with UCSPITLS=! every login is then refused, never taken in clear.
 */
async function withUsableTls(platform: Platform, config: Config, open: ReadonlySet<number>): Promise<Config> {
  // On port 995 TLS is already there: STLS is never offered, nothing to check.
  if (config.stls === "off" || config.implicitTls) return config;
  const tls = config.ucspiTls;
  if (tls !== undefined && [tls.control, tls.read, tls.write].every((fd) => open.has(fd))) return config;
  const problem =
    tls === undefined ? "SSLCTLFD, SSLREADFD and SSLWRITEFD are not all set" : "SSLCTLFD, SSLREADFD or SSLWRITEFD is not open";
  await platform.write(2, bytesOf(`qmail-popup: UCSPITLS is set but ${problem}: STLS not offered\n`), platform.nowMs() + 1000);
  return { ...config, ucspiTls: undefined };
}
