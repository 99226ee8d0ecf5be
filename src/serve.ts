// One POP3 authorization session, the same on every runtime: greet, read
// lines, apply the core's steps, hand the credentials to the subprogram.

import { encodeCheckpasswordInput } from "./core/checkpassword.ts";
import { readConfig, type Config } from "./core/config.ts";
import { formatLogLine } from "./core/log.ts";
import { LineReader, type LineEvent } from "./core/line-reader.ts";
import { SASL_RESPONSE_LIMIT } from "./core/sasl.ts";
import { authOutcome, greeting, handleLine, initialState, lineLimit, logEntry, type Action, type SessionState } from "./core/session.ts";
import { apopTimestamp } from "./core/timestamp.ts";
import { allocateBytes, bytesOf } from "./core/bytes.ts";
import { TLS_ANSWER_LIMIT, parseTlsEnvironment, tlsAnswerComplete } from "./core/tls-environment.ts";
import type { Platform } from "./platform/types.ts";
import { VERSION } from "./version.ts";
import { waiterPlan } from "./waiter.ts";

/** The log entry of an authentication, its result still open. */
function logEntryWithoutResult(config: Config, state: SessionState, action: Extract<Action, { kind: "spawnAuth" }>) {
  const { result: _open, ...entry } = logEntry(config, state, "Reject", `AUTH::${action.method}`, action.name);
  return entry;
}

const LOG_FD = 5;

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
  private logFd: number | undefined | null = null;
  /** The SSL_* variables sslserver told us at STLS, for the subprogram. */
  private tlsEnvironment: Record<string, string> = {};

  constructor(
    private readonly platform: Platform,
    private readonly config: Config,
  ) {
    this.timestamp = apopTimestamp(platform.pid, platform.unixSeconds(), config.hostname);
    this.state = initialState(config, this.timestamp);
  }

  async run(): Promise<never> {
    await this.send(greeting(this.config, this.timestamp));
    for (;;) {
      const event = await this.readLine();
      const step = handleLine(this.config, this.state, event);
      this.state = step.state;
      // The actions hold copies of what they need: the line (a password,
      // perhaps) is wiped now, before a spawnAuth that never returns.
      if (event.kind === "line") event.line.fill(0);
      for (const action of step.actions) await this.perform(action);
    }
  }

  private deadline(): number {
    return this.platform.nowMs() + this.config.timeoutSeconds * 1000;
  }

  /** Writes to the client; a client that is gone or stuck ends the session. */
  private async send(bytes: Uint8Array): Promise<void> {
    if (!(await this.platform.write(this.channel.output, bytes, this.deadline()))) this.platform.exit(1);
  }

  /**
   * Reads one line. The deadline covers the whole line, so a client
   * dripping a byte now and then cannot hold the connection open.
   */
  private async readLine(): Promise<LineEvent> {
    const deadline = this.deadline();
    const window = allocateBytes(this.reader.limit);
    for (;;) {
      const got = await this.platform.readLinePart(this.channel.input, window, deadline);
      if (got === "timeout" || got === 0) this.platform.exit(1);
      const { event } = this.reader.feed(window.subarray(0, got), lineLimit(this.state));
      window.fill(0, 0, got);
      if (event !== undefined) return event;
    }
  }

  private async perform(action: Action): Promise<void> {
    switch (action.kind) {
      case "reply":
        return this.send(bytesOf(action.text));
      case "log":
        return this.log(action.entry);
      case "quit":
        return this.platform.exit(action.status);
      case "startTls":
        return this.startTls();
      case "spawnAuth":
        return this.authenticate(action);
    }
  }

  /**
   * STLS over UCSPI-TLS: the +OK has been written in clear; `Y` on the
   * control socket asks sslserver for the handshake, its answer brings the
   * SSL_* variables, and from then on the session reads and writes the
   * TLS pipes. If the handshake fails, sslserver ends us.
   */
  private async startTls(): Promise<void> {
    const tls = this.config.ucspiTls!;
    const deadline = this.deadline();
    if (!(await this.platform.write(tls.control, bytesOf("Y"), deadline))) this.platform.exit(1);
    const answer = new Uint8Array(TLS_ANSWER_LIMIT);
    let length = 0;
    while (!tlsAnswerComplete(answer.subarray(0, length))) {
      const got = await this.platform.readLinePart(tls.control, answer.subarray(length), deadline);
      if (got === "timeout" || got === 0) this.platform.exit(1);
      length += got;
    }
    this.tlsEnvironment = parseTlsEnvironment(answer.subarray(0, length));
    this.channel = { input: tls.read, output: tls.write };
  }

  private async authenticate(action: Extract<Action, { kind: "spawnAuth" }>): Promise<never> {
    const credentials = encodeCheckpasswordInput(action.name, action.secret, this.timestamp);
    action.secret.fill(0);
    const logFd = this.logDescriptor();
    const env = { ...this.platform.env, ...this.tlsEnvironment };
    if (this.platform.becomeWaiter !== undefined && this.platform.env.QMAIL_POPUP_NOEXEC === undefined) {
      // Returns only where exec was not possible; then we wait ourselves.
      this.platform.becomeWaiter({ input: this.channel.input, output: this.channel.output, credentials, logFd }, (credentialsFd) =>
        waiterPlan({
          subprogram: this.config.subprogram,
          env,
          input: this.channel.input,
          output: this.channel.output,
          credentialsFd,
          logFd,
          timeoutSeconds: this.config.timeoutSeconds,
          log: logFd === undefined ? undefined : { pid: this.platform.pid, ...logEntryWithoutResult(this.config, this.state, action) },
        }),
      );
    }
    const result = await this.platform.runSubprogram({
      argv: this.config.subprogram,
      env,
      input: this.channel.input,
      output: this.channel.output,
      credentials,
      passFds: logFd === undefined ? [] : [logFd],
    });
    credentials.fill(0);
    if (result.kind === "failed") {
      await this.platform.write(2, bytesOf(`qmail-popup: unable to run ${this.config.subprogram[0]}: ${result.reason}\n`), this.deadline());
    }
    // A subprogram that could not be started is a temporary failure, as checkpassword's 111.
    const outcome = authOutcome(result.kind === "failed" ? { kind: "exited", code: 111 } : result);
    if (outcome.reply !== undefined) await this.platform.write(this.channel.output, bytesOf(outcome.reply), this.deadline());
    await this.log(logEntry(this.config, this.state, outcome.result, `AUTH::${action.method}`, action.name));
    return this.platform.exit(outcome.status);
  }

  /** fd 5, where our parent opened it; looked at once, when first needed. */
  private logDescriptor(): number | undefined {
    if (this.logFd === null) {
      this.logFd = this.platform.inheritedFd(LOG_FD) ? LOG_FD : undefined;
    }
    return this.logFd;
  }

  private async log(entry: ReturnType<typeof logEntry>): Promise<void> {
    const fd = this.logDescriptor();
    if (fd === undefined) return;
    // A log that cannot take the line in time is skipped: the session never hangs on it.
    await this.platform.write(fd, bytesOf(formatLogLine({ pid: this.platform.pid, ...entry })), this.deadline());
  }
}

export async function serve(platform: Platform): Promise<never> {
  const config = readConfig(platform.args, platform.env);
  if (config === undefined) {
    await platform.write(1, bytesOf(`-ERR usage: qmail-popup hostname subprogram [args...] (qmail-popup ${VERSION})\r\n`), platform.nowMs() + 10_000);
    return platform.exit(1);
  }
  return new Session(platform, await checkUcspiTls(platform, config)).run();
}

/**
 * UCSPITLS set, but the descriptors sslserver -n would give are missing or
 * closed: STLS cannot be offered. Say why on fd 2 (the operator's log);
 * with UCSPITLS=! every login is then refused, never taken in clear.
 */
async function checkUcspiTls(platform: Platform, config: Config): Promise<Config> {
  // On port 995 TLS is already there: STLS is never offered, nothing to check.
  if (config.stls === "off" || config.implicitTls) return config;
  const tls = config.ucspiTls;
  if (tls !== undefined && [tls.control, tls.read, tls.write].every((fd) => platform.inheritedFd(fd))) return config;
  const problem =
    tls === undefined ? "SSLCTLFD, SSLREADFD and SSLWRITEFD are not all set" : "SSLCTLFD, SSLREADFD or SSLWRITEFD is not open";
  await platform.write(2, bytesOf(`qmail-popup: UCSPITLS is set but ${problem}: STLS not offered\n`), platform.nowMs() + 1000);
  return { ...config, ucspiTls: undefined };
}
