// Helpers of the hostile suite (hostile.test.ts): a raw client that can
// misbehave (one byte per segment, stop reading, RST), and looks into /proc
// for what a session left behind.

import { spawnSync } from "node:child_process";
import { readFileSync, readdirSync, watch } from "node:fs";
import { basename, dirname, join } from "node:path";
import { expect } from "vitest";
import { Client as RawClient, FIXTURES, TcpServer, transcripts, variants, type ServerOptions, type Variant } from "./harness.ts";
import { startResident } from "../../scripts/lib/tcpserver.mjs";
import { alive, childrenOf, onlyChildOf } from "./proc.ts";

export const HERE = import.meta.dirname;

export { RawClient, alive, transcripts };

function environOf(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/environ`, "latin1").split("\0");
  } catch {
    return undefined;
  }
}

/**
 * Processes that serve a connection: tcpserver puts TCPLOCALPORT and
 * TCPREMOTEPORT in qmail-popup's environment, which passes it on to the
 * subprogram unchanged, so whatever a session started carries them.
 * tcpserver itself does not: it is started before any connection.
 */
export function processesServing(serverPort: number, clientPorts: readonly number[]): Map<number, number> {
  const wanted = new Set(clientPorts.map((port) => `TCPREMOTEPORT=${port}`));
  const found = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const environ = environOf(Number(entry));
    if (environ === undefined || !environ.includes(`TCPLOCALPORT=${serverPort}`)) continue;
    const remote = environ.find((variable) => wanted.has(variable));
    if (remote !== undefined) found.set(Number(entry), Number(remote.slice("TCPREMOTEPORT=".length)));
  }
  return found;
}

/** Waits for a file to exist with content (fs.watch on its folder; a re-check every 100 ms in case an event is missed). */
export function fileContent(path: string, timeoutMs = 20_000): Promise<string> {
  return new Promise((done, reject) => {
    const read = () => {
      try {
        const text = readFileSync(path, "latin1");
        return text.endsWith("\n") ? text : undefined;
      } catch {
        return undefined;
      }
    };
    const watcher = watch(dirname(path), (_event, name) => {
      if (name === basename(path)) check();
    });
    const poll = setInterval(() => check(), 100);
    const deadline = setTimeout(() => finish(() => reject(new Error(`${path} never got content`))), timeoutMs);
    const finish = (then: () => void) => {
      watcher.close();
      clearInterval(poll);
      clearTimeout(deadline);
      then();
    };
    const check = () => {
      const text = read();
      if (text !== undefined) finish(() => done(text));
    };
    check();
  });
}

/** Resolves what promise resolves, or rejects after ms: a bound on a wait, never a synchronisation. */
export function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
    }),
  ]);
}

/** Counts each needle in the resident memory of a process (test/e2e/hostile-memscan.py). */
export function memoryCounts(pid: number, needles: readonly string[]): Record<string, number> {
  const result = spawnSync("/usr/bin/python3", [join(HERE, "hostile-memscan.py"), String(pid), ...needles], { encoding: "latin1" });
  if (result.status !== 0) throw new Error(`hostile-memscan.py failed: ${result.stderr}`);
  const counts: Record<string, number> = {};
  for (const [index, count] of result.stdout.trim().split(" ").entries()) counts[needles[index]!] = Number(count);
  return counts;
}

/** /proc/PID/status's VmHWM (peak resident memory), in kB. */
export function peakResidentKb(pid: number): number {
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "latin1"));
  if (match === null) throw new Error(`no VmHWM for ${pid}`);
  return Number(match[1]);
}

// --- sessions ----------------------------------------------------------------------

export const CHECKPASSWORD = join(FIXTURES, "checkpassword");
export const POP3D = join(FIXTURES, "pop3d");
export const PROG = join(HERE, "hostile-prog.py");
export const EXEC = join(HERE, "hostile-exec.py");

/** The compiled binary as installed (the front and the Bun runtime, per connection and resident), and every variant. */
export const COMPILED = variants().filter((variant) => variant.name === "bun-compiled" || variant.name === "resident");
export const MODES = variants();

/**
 * The processes that serve the session of the front pid: the runtime it
 * started (its only child); in resident mode, every worker of the resident
 * (one of them serves it: which, the kernel's accept chose).
 */
export async function sessionRuntimes(variant: Variant, front: number): Promise<number[]> {
  if (variant.resident === undefined) return [onlyChildOf(front)];
  return childrenOf((await startResident(variant.resident)).pid!);
}

/** The same variant (in resident mode, the same resident), started through hostile-exec.py with these options. */
export const wrapped = (variant: Variant, ...options: string[]): Variant => ({
  ...variant,
  name: `${variant.name} ${options.join(" ")}`,
  command: ["/usr/bin/python3", EXEC, ...options, "--", ...variant.command],
});

/** The failure replies; the RFC 3206 code, where present, must be the right one. */
export const FAILED = /^-ERR (\[AUTH\] )?authorization failed\r\n$/;
export const TEMPORARY = /^-ERR (\[SYS\/TEMP\] )?authorization failed\r\n$/;
export const CRASHED = /^-ERR (\[SYS\/TEMP\] )?aack, child crashed\r\n$/;
export const LOGGED_IN = "+OK\r\n+OK \r\n+OK \r\n+OK 2 250\r\n+OK \r\n"; // greeting, USER, pop3d's +OK, STAT, QUIT
export const LOGIN = "USER alice\r\nPASS wonderland\r\nSTAT\r\nQUIT\r\n";

export const POP3TIMEOUT = 2;

/** Servers started by one describe block; stopped (and anything they left, killed by pid) after it. */
export function serverPool(): { start(options: ServerOptions): Promise<TcpServer>; stopAll(): Promise<void> } {
  const servers: TcpServer[] = [];
  return {
    async start(options) {
      const server = await TcpServer.start(options);
      servers.push(server);
      return server;
    },
    async stopAll() {
      for (const server of servers) {
        for (const pid of leftovers(server.port)) {
          try {
            process.kill(pid, "SIGKILL");
          } catch {
            // Gone meanwhile.
          }
        }
      }
      await Promise.all(servers.map((server) => server.stop()));
    },
  };
}

/** Every process that still serves some connection of this server. */
export function leftovers(serverPort: number): number[] {
  const pids: number[] = [];
  for (const entry of spawnSync("/bin/sh", ["-c", `grep -lsa 'TCPLOCALPORT=${serverPort}' /proc/[0-9]*/environ`], { encoding: "latin1" }).stdout.split("\n")) {
    const match = /^\/proc\/(\d+)\/environ$/.exec(entry);
    if (match && Number(match[1]) !== process.pid) pids.push(Number(match[1]));
  }
  return pids;
}

/**
 * The end of a session: tcpserver's "end PID status N" (within boundMs),
 * the pid gone, and nothing left that the session started.
 */
export async function finished(server: TcpServer, pid: number, clientPort: number, boundMs = 20_000): Promise<string> {
  const status = await within(boundMs, `the end of pid ${pid}`, server.endOf(pid));
  expect(alive(pid), `pid ${pid} still in /proc after its end`).toBe(false);
  expect([...processesServing(server.port, [clientPort]).keys()], "processes left behind by the session").toEqual([]);
  return status;
}

export interface Talk {
  text: string;
  status: string;
  pid: number;
  port: number;
}

/** Connects, sends input at once, reads until the server closes; checks the end. */
export async function talk(server: TcpServer, input: string | Uint8Array, boundMs?: number): Promise<Talk> {
  const client = await RawClient.connect(server.port);
  const pid = await server.pidFor(client.localPort);
  await client.send(input);
  const text = await client.untilClosed();
  return { text, status: await finished(server, pid, client.localPort, boundMs), pid, port: client.localPort };
}

/** Connects and waits for the greeting. */
export async function open(server: TcpServer): Promise<{ client: RawClient; pid: number }> {
  const client = await RawClient.connect(server.port);
  const pid = await server.pidFor(client.localPort);
  await client.lines(1);
  return { client, pid };
}

export function expectReply(text: string, prefix: string, reply: RegExp): void {
  expect(text.startsWith(prefix), `${JSON.stringify(text)} starts with ${JSON.stringify(prefix)}`).toBe(true);
  expect(text.slice(prefix.length)).toMatch(reply);
}

