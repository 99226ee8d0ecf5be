// For test/e2e/launchers.test.ts: a launcher started on a private port,
// waited on through what it says (its output, or a log file it writes),
// a real POP3 client, and the service definitions of packaging/services
// adapted to the test (port, paths) by exact replacements.
// Nothing here sleeps: every wait is woken by output, a file event or an
// exit, and is bounded.

import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Waiters, freePort } from "../../scripts/lib/tcpserver.mjs";
import { ROOT, waitForLine } from "./harness.ts";

export const SERVICES = join(ROOT, "packaging/services");
const WAIT_MS = 20_000;

/**
 * A launcher process and everything it printed (stdout and stderr, latin1).
 * With group, it leads a process group of its own, which endGroup() ends
 * (svscan: supervise, tcpserver and multilog stay in it).
 */
export class Launched {
  private printed = "";
  private readonly waiters = new Waiters();
  private exited = false;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    private readonly group: boolean,
  ) {
    for (const stream of [child.stdout!, child.stderr!]) {
      stream.setEncoding("latin1");
      stream.on("data", (chunk: string) => {
        this.printed += chunk;
        this.waiters.wake();
      });
    }
    child.on("exit", () => {
      this.exited = true;
      this.waiters.wake();
    });
    child.on("error", (error) => {
      this.printed += `${error.message}\n`;
      this.exited = true;
      this.waiters.wake();
    });
  }

  static start(command: string, args: readonly string[], env: Record<string, string>, options: { group?: boolean } = {}): Launched {
    const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"], detached: options.group ?? false });
    return new Launched(command, child, options.group ?? false);
  }

  get output(): string {
    return this.printed;
  }

  get running(): boolean {
    return !this.exited;
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Resolves true once predicate holds (checked at each output and at the exit), false after timeoutMs. */
  until(predicate: () => boolean, timeoutMs = WAIT_MS): Promise<boolean> {
    return this.waiters.until(predicate, timeoutMs);
  }

  /** Resolves the first line of file that matches pattern, or undefined if the launcher exits first. */
  async fileLine(file: string, pattern: RegExp): Promise<string | undefined> {
    const ended = this.until(() => this.exited).then(() => undefined);
    return Promise.race([waitForLine(file, pattern, WAIT_MS), ended]);
  }

  /** The first match of pattern in the output; throws, with the output, if none comes. */
  async expectOutput(pattern: RegExp): Promise<RegExpExecArray> {
    if (!(await this.until(() => pattern.test(this.printed)))) throw new Error(`${this.name}: no ${pattern} in:\n${this.printed}`);
    return pattern.exec(this.printed)!;
  }

  /** SIGTERM, then SIGKILL if it has not exited within 10 s. */
  async stop(): Promise<void> {
    if (this.exited) return;
    this.child.kill("SIGTERM");
    if (await this.until(() => this.exited, 10_000)) return;
    this.child.kill("SIGKILL");
    await this.until(() => this.exited, 10_000);
  }

  /** SIGKILL to what is left of its process group (started with group): the last resort, after an orderly stop. */
  endGroup(): void {
    if (!this.group) return;
    try {
      process.kill(-this.child.pid!, "SIGKILL");
    } catch {
      // Nothing left.
    }
  }
}

/** What a launcher says where another process holds its port (tcpserver, socat, stunnel, xinetd, systemd-socket-activate). */
export const PORT_TAKEN = /address already (in use|used)/i;

/**
 * Starts a launcher on a free port, retrying (three times at most) where
 * another test took the port first: start resolves the launcher once it
 * listens, undefined where the port was taken, and throws on any other
 * failure.
 */
export async function listening(start: (port: number) => Promise<Launched | undefined>): Promise<{ launcher: Launched; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const launcher = await start(port);
    if (launcher !== undefined) return { launcher, port };
    if (attempt === 3) throw new Error("the launcher did not listen, three times");
  }
}

/**
 * A file of packaging/services with each [from, to] replaced; a from that is
 * not in the file fails the test: the adaptation follows the shipped file.
 */
export function adapted(file: string, replacements: readonly (readonly [string, string])[]): string {
  let text = readFileSync(join(SERVICES, file), "latin1");
  for (const [from, to] of replacements) {
    if (!text.includes(from)) throw new Error(`${file} no longer holds ${JSON.stringify(from)}`);
    text = text.split(from).join(to);
  }
  return text;
}

// Logs in as alice, retrieves message 1, quits; prints the greeting, STAT,
// message 1's Subject and QUIT's reply. With a CA file: POP3 over TLS
// (implicit), the certificate checked against it.
const POP3_CLIENT = `
import poplib, ssl, sys
port = int(sys.argv[1])
if len(sys.argv) > 2:
    p = poplib.POP3_SSL("127.0.0.1", port, context=ssl.create_default_context(cafile=sys.argv[2]), timeout=20)
else:
    p = poplib.POP3("127.0.0.1", port, timeout=20)
print(p.getwelcome().decode())
p.user("alice")
p.pass_("wonderland")
print(p.stat())
print([line.decode() for line in p.retr(1)[1] if line.startswith(b"Subject:")][0])
print(p.quit().decode())
`;

/** What POP3_CLIENT prints after a good session with the test maildir. */
export const SESSION_PRINTED = "+OK\n(2, 250)\nSubject: hello from the test maildir\n+OK \n";

/** python3's poplib against 127.0.0.1:port: resolves its exit code and everything it printed. */
export function pop3Session(port: number, caFile?: string): Promise<{ code: number | null; printed: string }> {
  return run("/usr/bin/python3", ["-c", POP3_CLIENT, String(port), ...(caFile === undefined ? [] : [caFile])]);
}

/** Runs a program to its end (bounded); resolves its exit code and everything it printed. */
export function run(command: string, args: readonly string[], env: Record<string, string> = { PATH: "/usr/bin:/bin" }): Promise<{ code: number | null; printed: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let printed = "";
    child.stdout!.on("data", (chunk: Buffer) => (printed += chunk.toString("latin1")));
    child.stderr!.on("data", (chunk: Buffer) => (printed += chunk.toString("latin1")));
    const deadline = setTimeout(() => child.kill("SIGKILL"), WAIT_MS);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(deadline);
      resolve({ code, printed });
    });
  });
}
