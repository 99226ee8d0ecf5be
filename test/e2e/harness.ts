// End-to-end harness: real tcpserver on loopback running a built
// qmail-popup variant with the test checkpassword and pop3d stand-in.
// Synchronisation comes from tcpserver's own -v lines on stderr
// ("status", "ok PID …", "end PID status N"), never from sleeps.

import { spawn, spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, watch, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { FRONT_VARIANTS, ROOT, ServerProcess, Waiters, spawnClosingFds, startResident } from "../../scripts/lib/tcpserver.mjs";

export { ROOT };
/** The subject of message 1 in the Maildir make-maildir creates. */
export const FIRST_SUBJECT = "Subject: hello from the test maildir";
export const FIXTURES = join(ROOT, "test/fixtures");

/** How each runtime variant is started. */
export interface Variant {
  readonly name: string;
  readonly command: readonly string[];
  /** Resident mode: the resident's socket (started with the first server), and the front's variables naming it. */
  readonly resident?: string;
  readonly env?: Record<string, string>;
}

/**
 * Every variant: the front with each runtime next to it (FRONT_VARIANTS, which
 * the benchmark runs too), resident mode (`resident`) among them: a client
 * cannot tell the modes apart (issue #19). QMAIL_POPUP_VARIANTS=node,deno
 * narrows the matrix (for a quick local run). { resident: false } leaves
 * resident mode out, for a case about the runtime a front starts for its
 * connection (its process, its memory, its confinement): the caller says why.
 */
export function variants(options: { resident?: boolean } = {}): Variant[] {
  const wanted = process.env.QMAIL_POPUP_VARIANTS?.split(",");
  return FRONT_VARIANTS.filter((variant) => (!wanted || wanted.includes(variant.name)) && (options.resident !== false || !("resident" in variant)));
}

/**
 * A fresh directory, 0755 like an installation's bin/: a front run from it
 * runs its runtime as the unprivileged account qmailpopup, which must reach it.
 */
export function tempDir(prefix = "qmail-popup-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  return dir;
}

/** A home per user with a two-message Maildir, as the checkpassword fixture expects. */
/**
 * A stand-in for a resident: a unix socket in `directory` (made, and given
 * to uid), bound and listened on as uid, which takes one connection's
 * hand-over and says what came ("took bytes N descriptors M"), then ends,
 * closing it. Resolves once it listens.
 */
export async function standInResident(directory: string, uid: number): Promise<{ socket: string; said(): string; ended: Promise<unknown> }> {
  mkdirSync(directory, { recursive: true });
  chownSync(directory, uid, uid);
  const socket = join(directory, "socket");
  const standIn = spawn("/usr/bin/setpriv", [`--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", "--", "/usr/bin/python3", "-c", String.raw`
import socket, sys, os
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o777); s.listen(5)
print("listening", flush=True)
c, _ = s.accept()
data, ancillary, flags, _ = c.recvmsg(4096, socket.CMSG_SPACE(64))
print("took bytes", len(data), "descriptors", sum(len(d) // 4 for _, _, d in ancillary), flush=True)
`, socket], { stdio: ["ignore", "pipe", "inherit"] });
  let said = "";
  standIn.stdout.setEncoding("latin1").on("data", (c: string) => (said += c));
  const ended = new Promise((done) => standIn.on("close", done));
  const deadline = Date.now() + 10_000;
  while (!said.includes("listening") && Date.now() < deadline) await new Promise((wake) => setTimeout(wake, 10));
  if (!said.includes("listening")) throw new Error(`the stand-in resident did not listen: ${said}`);
  return { socket, said: () => said, ended };
}

export function makeHomes(users: readonly string[] = ["alice", "bob", "latin", "mrose"]): string {
  const homes = tempDir("qmail-popup-homes-");
  for (const user of users) {
    const result = spawnSync(join(FIXTURES, "make-maildir"), [join(homes, user, "Maildir")]);
    if (result.status !== 0) throw new Error(`make-maildir failed: ${result.stderr}`);
  }
  return homes;
}

export interface ServerOptions {
  readonly variant: Variant;
  /** Extra environment for qmail-popup (POP3AUTH, POP3TIMEOUT, …). */
  readonly env?: Record<string, string>;
  /** The subprogram; default: checkpassword pop3d Maildir. */
  readonly subprogram?: readonly string[];
  readonly hostname?: string;
  /** Open fd 5 on this file (tcpserver … 5>file). */
  readonly logFile?: string;
  /** Arguments for qmail-popup instead of hostname + subprogram (usage tests). */
  readonly rawArgs?: readonly string[];
  readonly homes?: string;
  /**
   * Run under the test UCSPI-TLS server instead of tcpserver: "starttls"
   * (sslserver -n, STLS) or "implicit" (sslserver on 995, TLS first).
   */
  readonly tls?: "starttls" | "implicit";
}

let certificate: { cert: string; key: string } | undefined;
/** A self-signed certificate for localhost, made once per test run. */
export function testCertificate(): { cert: string; key: string } {
  if (certificate === undefined) {
    const dir = tempDir("qmail-popup-cert-");
    const made = spawnSync(join(ROOT, "test/ucspi-tls/make-cert.sh"), [dir]);
    if (made.status !== 0) throw new Error(`make-cert.sh failed: ${made.stdout}${made.stderr}`);
    certificate = { cert: join(dir, "cert.pem"), key: join(dir, "key.pem") };
  }
  return certificate;
}

/** tcpserver prints the raw wait status: an exit code, or the signal that killed it. */
function describeWaitStatus(raw: number): string {
  return (raw & 0x7f) === 0 ? String(raw >> 8) : `signal ${raw & 0x7f}`;
}

/** A qmail-popup variant under tcpserver (or the test sslserver): scripts/lib/tcpserver.mjs drives it. */
export class TcpServer {
  private constructor(private readonly server: ServerProcess) {}

  static async start(options: ServerOptions): Promise<TcpServer> {
    const args =
      options.rawArgs ??
      [
        options.hostname ?? "mail.test",
        ...(options.subprogram ?? [join(FIXTURES, "checkpassword"), join(FIXTURES, "pop3d"), "Maildir"]),
      ];
    if (options.variant.resident !== undefined) await startResident(options.variant.resident);
    if (options.tls !== undefined) return TcpServer.startTls(options, args);
    const env = { PATH: "/usr/bin:/bin", CHECKPASSWORD_HOMES: options.homes ?? "/nonexistent", ...options.env, ...options.variant.env };
    return new TcpServer(await ServerProcess.tcpserver({ command: [...options.variant.command, ...args], env, fd5: options.logFile }));
  }

  /** The test sslserver: it picks the port and says it on stderr ("listening on PORT"). */
  private static async startTls(options: ServerOptions, args: readonly string[]): Promise<TcpServer> {
    const { cert, key } = testCertificate();
    const env: Record<string, string> = {
      PATH: "/usr/bin:/bin",
      CHECKPASSWORD_HOMES: options.homes ?? "/nonexistent",
      ...(options.tls === "starttls" ? { UCSPITLS: "" } : {}),
      ...options.env,
      ...options.variant.env,
    };
    const argv = [
      "/usr/bin/python3", join(ROOT, "test/ucspi-tls/sslserver.py"),
      ...(options.tls === "starttls" ? ["-n"] : []),
      "-c", cert, "-k", key, "127.0.0.1", "0",
      // sslserver sets TCPLOCALPORT to the port it listens on: say 995 for the implicit mode.
      ...(options.tls === "implicit" ? ["/usr/bin/env", "TCPLOCALPORT=995"] : []),
      ...options.variant.command, ...args,
    ];
    const server = new ServerProcess(spawnClosingFds(argv, { env, fd5: options.logFile }));
    const listening = /listening on (\d+)/;
    if (!(await server.until(() => listening.test(server.log) || server.exited)) || server.exited) {
      throw new Error(`sslserver did not start: ${server.log}`);
    }
    server.port = Number(listening.exec(server.log)![1]);
    return new TcpServer(server);
  }

  get port(): number {
    return this.server.port;
  }

  /** The pid tcpserver gave the connection from this client port. */
  pidFor(clientPort: number): Promise<number> {
    return this.server.pidFor(clientPort);
  }

  /** Waits until tcpserver reports the end of that pid; resolves its exit code (or "signal N"). */
  async endOf(pid: number): Promise<string> {
    return describeWaitStatus(await this.server.endOf(pid));
  }

  /** Waits until fd 2's text (the launcher's and qmail-popup's lines) holds text; resolves it all. */
  logged(text: string): Promise<string> {
    return this.server.logged(text);
  }

  /** Everything tcpserver and qmail-popup wrote on fd 2 (qmail-popup's own lines among them). */
  get log(): string {
    return this.server.log;
  }

  stop(): Promise<void> {
    return this.server.stop();
  }
}

/** Every transcript a Client saw, for the suites' check that no runtime message reached a client. */
export const transcripts: string[] = [];

/**
 * A raw client connection under the test's full control, for byte-exact
 * dialogues and for misbehaving (one byte per segment, stop reading, RST).
 * What it receives is kept as latin1 text.
 */
export class Client {
  private received = Buffer.alloc(0);
  private closedFlag = false;
  private readonly waiters = new Waiters();

  private constructor(readonly socket: Socket) {
    socket.on("data", (chunk) => {
      this.received = Buffer.concat([this.received, chunk]);
      this.waiters.wake();
    });
    socket.on("close", () => {
      this.closedFlag = true;
      transcripts.push(this.text);
      this.waiters.wake();
    });
    socket.on("error", () => {});
  }

  static connect(port: number): Promise<Client> {
    return new Promise((done, reject) => {
      const socket = connect(port, "127.0.0.1", () => done(new Client(socket)));
      socket.on("error", reject);
    });
  }

  get localPort(): number {
    return this.socket.localPort!;
  }

  get text(): string {
    return this.received.toString("latin1");
  }

  get bytes(): Buffer {
    return this.received;
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Resolves once predicate holds (checked on every event); rejects after timeoutMs. */
  async until(predicate: () => boolean, what = "waiting", timeoutMs = 20_000): Promise<void> {
    if (!(await this.waiters.until(predicate, timeoutMs))) throw new Error(`${what}: timed out; received ${JSON.stringify(this.text)}`);
  }

  /** Waits until the received text ends with this (or the connection closed). */
  async untilEndsWith(tail: string): Promise<string> {
    await this.until(() => this.text.endsWith(tail) || this.closedFlag, `waiting for ${JSON.stringify(tail)}`);
    return this.text;
  }

  /** Waits for count CRLF-terminated lines in all (from the start of the connection), or the close. */
  async lines(count: number): Promise<string> {
    await this.until(() => this.text.split("\r\n").length > count || this.closedFlag, `waiting for ${count} lines`);
    return this.text;
  }

  /** Waits until the server closes the connection; resolves everything received. */
  async untilClosed(timeoutMs = 20_000): Promise<string> {
    await this.until(() => this.closedFlag, "waiting for the close", timeoutMs);
    return this.text;
  }

  /** Writes; resolves once the bytes are with the kernel. */
  send(data: string | Uint8Array): Promise<void> {
    return new Promise((done) => this.socket.write(typeof data === "string" ? Buffer.from(data, "latin1") : data, () => done()));
  }

  /** One byte per write (and so per TCP segment, with Nagle off), each awaited. */
  async sendBytewise(data: string): Promise<void> {
    this.socket.setNoDelay(true);
    for (const byte of Buffer.from(data, "latin1")) await this.send(Uint8Array.of(byte));
  }

  /** FIN: the server reads EOF. */
  end(): void {
    this.socket.end();
  }

  /** RST. */
  reset(): void {
    this.socket.resetAndDestroy();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Sends the whole dialogue at once, reads until the server closes; returns replies and exit status. */
export async function converse(server: TcpServer, input: string | Uint8Array): Promise<{ text: string; status: string; pid: number }> {
  const client = await Client.connect(server.port);
  const pid = await server.pidFor(client.localPort);
  await client.send(input);
  const text = await client.untilClosed();
  return { text, status: await server.endOf(pid), pid };
}


/**
 * Waits until a line of file matches pattern (the fd-5 log is written after
 * the client may already have seen QUIT's reply): woken by fs.watch, not a
 * timer. Resolves the matching line.
 */
export function waitForLine(file: string, pattern: RegExp, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const find = () => (existsSync(file) ? readFileSync(file, "latin1").split("\n").find((line) => pattern.test(line)) : undefined);
    const watcher = watch(dirname(file), () => check());
    const deadline = setTimeout(() => {
      watcher.close();
      reject(new Error(`no line matching ${pattern} in ${file}:\n${existsSync(file) ? readFileSync(file, "latin1") : "(absent)"}`));
    }, timeoutMs);
    const check = () => {
      const line = find();
      if (line === undefined) return;
      clearTimeout(deadline);
      watcher.close();
      resolve(line);
    };
    check();
  });
}

/** Runs a client program to completion with PATH=/usr/bin:/bin; resolves its exit code and all it printed. */
export function runClient(
  command: string,
  args: readonly string[],
  env: Record<string, string> = {},
  input = "",
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { PATH: "/usr/bin:/bin", ...env }, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    child.stdout!.on("data", (chunk: Buffer) => (out += chunk.toString("latin1")));
    child.stderr!.on("data", (chunk: Buffer) => (out += chunk.toString("latin1")));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, out }));
    child.stdin!.end(input);
  });
}

/**
 * fetchmail, retrieving alice's mail from port into a file, with server
 * options (`auth password`) and user options (`sslproto ""`): resolves that
 * file's path once fetchmail ends, and its exit code and output.
 */
export async function fetchmail(port: number, serverOptions: string, userOptions: string): Promise<{ code: number | null; out: string; mail: string }> {
  const home = tempDir();
  const mail = join(home, "out");
  const rc = join(home, "fetchmailrc");
  writeFileSync(
    rc,
    `set no syslog\npoll 127.0.0.1 proto pop3 port ${port} timeout 20 ${serverOptions}\n` +
      `  user "alice" there with password "wonderland" is "root" here\n` +
      `  mda "/usr/bin/tee -a ${mail}"\n  fetchall keep ${userOptions}\n`,
  );
  chmodSync(rc, 0o600);
  // A lock file of its own: as root, fetchmail locks /var/run/fetchmail.pid, and two runs at once collide.
  const args = ["-f", rc, "--nodetach", "--pidfile", join(home, "fetchmail.pid")];
  return { ...(await runClient("fetchmail", args, { HOME: home })), mail };
}
