// Issue #17: every path bounded. No client keeps a core busy or the session
// open past its bounds (POP3TIMEOUT on every read, whatever arrives; the
// bytes before a login; QMAIL_POPUP_LOGIN_LIMIT), no write hangs the session
// (fd 5 or fd 2 full, a client that stops reading after STLS), a PROXY
// header never turns on implicit TLS, a SASL name never carries CR or LF,
// and sslserver's answer is taken only in ucspi-ssl's framing.
//
// Over each launcher where the issue found the defect: tcpserver (plain
// TCP), the test sslserver after STLS (-n) and on 995 (the runtime's input a
// pipe), and a PROXY header. The CPU a streaming client costs the runtime is
// sampled from /proc while it streams and printed (the manual's figures).

import { spawnSync } from "node:child_process";
import { closeSync, constants, openSync, readFileSync, readdirSync } from "node:fs";
import { connect as connectTcp, type Socket } from "node:net";
import { join } from "node:path";
import { connect as connectTls } from "node:tls";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { PROXY, u16, v2 } from "../proxy-headers.ts";
import { makeHomes, tempDir, variants, waitForLine, type TcpServer, type Variant } from "./harness.ts";
import { POP3TIMEOUT, RawClient, finished, open, serverPool, sessionRuntimes, within, wrapped } from "./hostile-helpers.ts";
import { alive, onlyChildOf } from "./proc.ts";

/** INPUT_LIMIT (src/core/line-reader.ts): the most a client may send before a login. */
const INPUT_LIMIT = 65536;
const b64 = (text: string) => Buffer.from(text, "latin1").toString("base64");

type Launcher = "tcp" | "starttls" | "implicit";
const LAUNCHERS: readonly Launcher[] = ["tcp", "starttls", "implicit"];

/** utime + stime of a process, in seconds (clock ticks of 1/100 s on Linux). */
function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

function environOf(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/environ`, "latin1").split("\0");
  } catch {
    return [];
  }
}

function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

/**
 * The front serving a client port. tcpserver says it (-v); the test
 * sslserver does not, so there it is the process whose environment holds
 * that TCPREMOTEPORT and whose parent's does not (the launcher passes the
 * variables to the program only). Waited for on /proc, bounded.
 */
async function frontFor(server: TcpServer, launcher: Launcher, port: number): Promise<number> {
  if (launcher === "tcp") return server.pidFor(port);
  const wanted = `TCPREMOTEPORT=${port}`;
  return within(10_000, `the front for port ${port}`, (async () => {
    for (;;) {
      for (const entry of readdirSync("/proc")) {
        if (!/^\d+$/.test(entry) || !environOf(Number(entry)).includes(wanted)) continue;
        try {
          if (!environOf(parentOf(Number(entry))).includes(wanted)) return Number(entry);
        } catch {
          // Gone meanwhile.
        }
      }
      await new Promise((wake) => setTimeout(wake, 20));
    }
  })());
}

/**
 * The end of the session: tcpserver's "end PID" and its status, or under
 * the test sslserver (which says neither) the front gone from /proc.
 */
async function endOf(server: TcpServer, launcher: Launcher, pid: number, port: number, boundMs = 20_000): Promise<string | undefined> {
  if (launcher === "tcp") return finished(server, pid, port, boundMs);
  await within(boundMs, `the end of pid ${pid}`, (async () => {
    while (alive(pid)) await new Promise((wake) => setTimeout(wake, 20));
  })());
  return undefined;
}

/** A connection to the session, in clear (tcp), after STLS, or TLS from the first byte (995); the greeting read. */
async function connectSession(server: TcpServer, launcher: Launcher): Promise<{ socket: Socket; port: number; received: () => string }> {
  let text = "";
  const plain = await new Promise<Socket>((done, fail) => {
    const socket = connectTcp(server.port, "127.0.0.1", () => done(socket));
    socket.once("error", fail);
  });
  const port = plain.localPort!;
  const upto = (socket: Socket, pattern: RegExp) =>
    new Promise<void>((done, fail) => {
      const check = () => (pattern.test(text) ? (socket.off("data", take), done()) : undefined);
      const take = (chunk: Buffer) => ((text += chunk.toString("latin1")), check());
      socket.on("data", take);
      socket.once("close", () => fail(new Error(`closed before ${pattern}: ${JSON.stringify(text)}`)));
    });
  if (launcher === "implicit") {
    const secure = connectTls({ socket: plain, rejectUnauthorized: false });
    secure.on("error", () => {});
    await upto(secure, /^\+OK[^\n]*\n/);
    return { socket: secure, port, received: () => text };
  }
  plain.on("error", () => {});
  await upto(plain, /^\+OK[^\n]*\n/);
  if (launcher === "tcp") return { socket: plain, port, received: () => text };
  plain.write("STLS\r\n");
  await upto(plain, /\n\+OK[^\n]*\n$/);
  const secure = connectTls({ socket: plain, rejectUnauthorized: false });
  secure.on("error", () => {});
  await new Promise((done) => secure.once("secureConnect", done));
  return { socket: secure, port, received: () => text };
}

interface Streamed {
  readonly seconds: number;
  readonly cpu: number;
  readonly sent: number;
}

/**
 * Streams chunk after chunk as fast as the session takes them (reading
 * whatever it answers) until it closes the connection, at most capSeconds;
 * samples the runtime's CPU time every 20 ms meanwhile.
 */
async function stream(variant: Variant, server: TcpServer, launcher: Launcher, chunk: Buffer, capSeconds: number): Promise<Streamed & { status: string | undefined }> {
  const { socket, port } = await connectSession(server, launcher);
  const pid = await frontFor(server, launcher, port);
  // In resident mode the workers' CPU (every session's: this one is alone) from here on.
  const runtimes = await sessionRuntimes(variant, pid);
  const used = () => runtimes.reduce((total, runtime) => total + (cpuSeconds(runtime) ?? 0), 0);
  const before = variant.resident === undefined ? 0 : used();
  let cpu = 0;
  const sampler = setInterval(() => (cpu = Math.max(cpu, used() - before)), 20);
  const start = Date.now();
  let sent = 0;
  let closed = false;
  socket.on("data", () => {});
  const done = new Promise<void>((finish) => socket.once("close", () => ((closed = true), finish())));
  const cap = setTimeout(() => socket.destroy(), capSeconds * 1000);
  const pump = () => {
    while (!closed && socket.write(chunk)) sent += chunk.length;
    if (!closed) sent += chunk.length;
  };
  socket.on("drain", pump);
  pump();
  await done;
  const seconds = (Date.now() - start) / 1000;
  clearTimeout(cap);
  clearInterval(sampler);
  cpu = Math.max(cpu, used() - before);
  return { seconds, cpu, sent, status: await endOf(server, launcher, pid, port) };
}

const ENDLESS_LINE = Buffer.alloc(16384, "A");
const SHORT_LINES = Buffer.from("NOOP\r\n".repeat(2048));

/** The CPU figures of every run, printed once at the end: the report's and the manual's table. */
const figures: string[] = [];
afterAll(() => console.log(`CPU a streaming client costs the runtime (POP3TIMEOUT=${POP3TIMEOUT}):\n${figures.join("\n")}`));

describe.each(variants())("a client streaming input ends at the bounds, over every launcher: $name", (variant: Variant) => {
  const pool = serverPool();
  const servers = new Map<Launcher, TcpServer>();
  beforeAll(async () => {
    const env = { POP3TIMEOUT: String(POP3TIMEOUT) };
    servers.set("tcp", await pool.start({ variant, env }));
    servers.set("starttls", await pool.start({ variant, env, tls: "starttls" }));
    servers.set("implicit", await pool.start({ variant, env, tls: "implicit" }));
  });
  afterAll(() => pool.stopAll());

  test.each(LAUNCHERS)("an endless line, over %s: the session ends within POP3TIMEOUT, past INPUT_LIMIT bytes", async (launcher) => {
    const server = servers.get(launcher)!;
    const result = await stream(variant, server, launcher, ENDLESS_LINE, POP3TIMEOUT + 10);
    figures.push(`${variant.name} ${launcher} endless line: ${result.cpu.toFixed(2)} s CPU, ended after ${result.seconds.toFixed(2)} s`);
    expect(result.seconds, "seconds until the session ended").toBeLessThan(POP3TIMEOUT + 1.5);
    if (launcher === "tcp") expect(result.status).toBe("1");
    await server.logged(`qmail-popup: more than ${INPUT_LIMIT} bytes before a login: session ended\n`);
  });

  test.each(LAUNCHERS)("endless short lines, over %s: the session ends past INPUT_LIMIT bytes", async (launcher) => {
    const server = servers.get(launcher)!;
    const result = await stream(variant, server, launcher, SHORT_LINES, POP3TIMEOUT + 10);
    figures.push(`${variant.name} ${launcher} short lines: ${result.cpu.toFixed(2)} s CPU, ended after ${result.seconds.toFixed(2)} s`);
    expect(result.seconds, "seconds until the session ended").toBeLessThan(POP3TIMEOUT + 1.5);
    if (launcher === "tcp") expect(result.status).toBe("1");
  });
});

describe.each(variants())("QMAIL_POPUP_LOGIN_LIMIT: $name", (variant: Variant) => {
  const pool = serverPool();
  afterAll(() => pool.stopAll());

  test("a client kept alive by NOOPs is ended at the limit, with a line on fd 2", async () => {
    const limit = 3;
    const server = await pool.start({ variant, env: { POP3TIMEOUT: String(POP3TIMEOUT), QMAIL_POPUP_LOGIN_LIMIT: String(limit) } });
    const { client, pid } = await open(server);
    const start = Date.now();
    // A NOOP every half second: POP3TIMEOUT (2 s) never runs out. The timer is the client's behaviour.
    const keepAlive = setInterval(() => void client.send("NOOP\r\n"), 500);
    try {
      await client.untilClosed((limit + 5) * 1000);
    } finally {
      clearInterval(keepAlive);
    }
    const seconds = (Date.now() - start) / 1000;
    expect(client.text.split("+OK \r\n").length - 1, "NOOPs answered").toBeGreaterThanOrEqual(3);
    expect(seconds).toBeGreaterThanOrEqual(limit - 0.5);
    expect(seconds).toBeLessThan(limit + 1.5);
    expect(await finished(server, pid, client.localPort)).toBe("1");
    await server.logged(`qmail-popup: no login within ${limit} seconds (QMAIL_POPUP_LOGIN_LIMIT): session ended\n`);
  });

  test("unset, the session lives as long as the client keeps it busy (the C program's behaviour)", async () => {
    const server = await pool.start({ variant, env: { POP3TIMEOUT: String(POP3TIMEOUT) } });
    const { client, pid } = await open(server);
    for (let i = 0; i < 8; i++) {
      await client.send("NOOP\r\n");
      await client.until(() => client.text.split("+OK \r\n").length - 1 === i + 1, "NOOP's reply");
      await new Promise((wake) => setTimeout(wake, 500));
    }
    await client.send("QUIT\r\n");
    await client.untilClosed();
    expect(await finished(server, pid, client.localPort)).toBe("0");
  });
});

/** A FIFO whose reader (this process) never reads: the writer's end is filled by hostile-exec.py. */
function neverReadFifo(): { path: string; close(): void } {
  const path = join(tempDir("qmail-popup-bounds-"), "full.fifo");
  spawnSync("mkfifo", [path]);
  const reader = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  return { path, close: () => closeSync(reader) };
}

describe.each(variants())("no write hangs the session: $name", (variant: Variant) => {
  const pool = serverPool();
  afterAll(() => pool.stopAll());

  test("fd 5 a full pipe: the runtime's own Reject::STLS::Any line is given up at POP3TIMEOUT", async () => {
    const fifo = neverReadFifo();
    try {
      const server = await pool.start({ variant: wrapped(variant, `--fd5=full:${fifo.path}`), env: { POP3TIMEOUT: String(POP3TIMEOUT), UCSPITLS: "!" } });
      const { client, pid } = await open(server);
      await client.send("USER alice\r\n");
      // While the runtime waits for room, fd 5 (one open file with the front's, the login programs' and multilog's) stays blocking: sampled until the end.
      const samples: number[] = [];
      while (!client.closed) {
        try {
          samples.push(Number.parseInt(/^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/5`, "latin1"))![1]!, 8));
        } catch {
          break;
        }
        await new Promise((wake) => setTimeout(wake, 20));
      }
      await client.untilClosed((POP3TIMEOUT + 6) * 1000);
      expect(client.text).toMatch(/^\+OK[^\n]*\r\n-ERR [^\n]*\r\n$/);
      expect(await finished(server, pid, client.localPort, (POP3TIMEOUT + 3) * 1000)).toBe("1");
      expect(samples.length).toBeGreaterThan(10);
      const nonBlocking = samples.filter((flags) => (flags & constants.O_NONBLOCK) !== 0);
      // Before, non-blocking all the wait long. Now: a FIFO (no RWF_NOWAIT there) or Node, non-blocking for each attempt only (microseconds), which a sample may rarely see.
      expect(nonBlocking.length).toBeLessThanOrEqual(1);
    } finally {
      fifo.close();
    }
  });

  test("fd 2 a full pipe: \"PROXY header refused\" is given up, the session ends", async () => {
    const fifo = neverReadFifo();
    try {
      const server = await pool.start({ variant: wrapped(variant, `--fd2=full:${fifo.path}`), env: { QMAIL_POPUP_PROXY: "1" } });
      const client = await RawClient.connect(server.port);
      const pid = await server.pidFor(client.localPort);
      await client.send("NOT A PROXY HEADER\r\n");
      await client.untilClosed(8000);
      expect(client.text).toBe("");
      expect(await finished(server, pid, client.localPort, 5000)).toBe("1");
    } finally {
      fifo.close();
    }
  });

  test("after STLS, sslserver's pipe to the client full: the runtime's write ends at POP3TIMEOUT", async () => {
    const fifo = neverReadFifo();
    try {
      // SSLWRITEFD (8 under the test sslserver) the full FIFO: the first reply after STLS finds no room.
      const server = await pool.start({ variant: wrapped(variant, `--fd8=full:${fifo.path}`), env: { POP3TIMEOUT: String(POP3TIMEOUT) }, tls: "starttls" });
      const { socket, port } = await connectSession(server, "starttls");
      const pid = await frontFor(server, "starttls", port);
      // In resident mode the session's end is its front's: the worker serves others.
      const runtime = variant.resident === undefined ? onlyChildOf(pid) : pid;
      socket.write("CAPA\r\n");
      const start = Date.now();
      await endOf(server, "starttls", runtime, port, (POP3TIMEOUT + 30) * 1000);
      expect((Date.now() - start) / 1000, "seconds until the runtime ended").toBeLessThan(POP3TIMEOUT + 2);
      socket.destroy();
    } finally {
      fifo.close();
    }
  });
});

describe.each(variants())("a PROXY header never turns on implicit TLS: $name", (variant: Variant) => {
  const pool = serverPool();
  let server: TcpServer;
  beforeAll(async () => {
    server = await pool.start({ variant, homes: makeHomes(), env: { UCSPITLS: "!", QMAIL_POPUP_PROXY: "1" }, tls: "starttls" });
  });
  afterAll(() => pool.stopAll());

  const ipv4 = (text: string) => text.split(".").map(Number);
  const headers: readonly (readonly [string, Uint8Array])[] = [
    ["v1", Buffer.from("PROXY TCP4 192.0.2.1 198.51.100.7 56324 995\r\n", "latin1")],
    ["v2", v2(PROXY, 0x11, [...ipv4("192.0.2.1"), ...ipv4("198.51.100.7"), ...u16(56324), ...u16(995)])],
  ];

  test.each(headers)("a %s header with destination port 995, under sslserver -n with UCSPITLS=!: STLS still required", async (_version, header) => {
    const client = await RawClient.connect(server.port);
    await client.send(header);
    const pid = await frontFor(server, "starttls", client.localPort);
    // No PASS after USER: the session ends at USER's -ERR, and input left unread makes the close a
    // reset, which can discard the -ERR before the client reads it (sooner in resident mode, whose
    // worker closes the connection at once).
    await client.send("CAPA\r\nUSER alice\r\n");
    const text = await client.untilClosed();
    expect(text).toMatch(/^\+OK[^\n]*\r\n\+OK[^\n]*\r\n([^\n]*\r\n)*STLS\r\n([^\n]*\r\n)*\.\r\n-ERR [^\n]*\r\n$/);
    await endOf(server, "starttls", pid, client.localPort);
  });
});

describe.each(variants())("SASL names holding CR or LF are refused as malformed: $name", (variant: Variant) => {
  const pool = serverPool();
  let server: TcpServer;
  let log: string;
  beforeAll(async () => {
    log = join(tempDir("qmail-popup-bounds-"), "log");
    server = await pool.start({ variant, homes: makeHomes(), logFile: log });
  });
  afterAll(() => pool.stopAll());

  test.each([
    ["PLAIN, a name with LF and =", `AUTH PLAIN ${b64("\0al\nice=LD_PRELOAD\0wonderland")}\r\n`],
    ["PLAIN, a name with CRLF", `AUTH PLAIN ${b64("\0alice\r\nX\0wonderland")}\r\n`],
    ["PLAIN, an authorization identity with LF", `AUTH PLAIN ${b64("alice\n\0alice\0wonderland")}\r\n`],
    ["LOGIN, a name with CRLF", `AUTH LOGIN\r\n${b64("alice\r\nX")}\r\n`],
    ["LOGIN, a name with LF as initial response", `AUTH LOGIN ${b64("al\nice")}\r\n`],
  ])("%s: never reaches fd 3", async (_name, input) => {
    const { client, pid } = await open(server);
    await client.send(input);
    await client.until(() => client.text.endsWith("-ERR malformed SASL response\r\n"), "the refusal");
    await client.send("QUIT\r\n");
    await client.untilClosed();
    expect(await finished(server, pid, client.localPort)).toBe("0");
  });

  test("a name with other control bytes still reaches fd 3, as s/qmail passes it (the refusal is checkpassword's)", async () => {
    const { client, pid } = await open(server);
    await client.send(`AUTH PLAIN ${b64("\0al\tice\x01\0wonderland")}\r\n`);
    await client.untilClosed();
    expect(client.text).toMatch(/-ERR (\[AUTH\] )?authorization failed\r\n$/);
    expect(await finished(server, pid, client.localPort)).toBe("1");
    await waitForLine(log, new RegExp(`pid ${pid} Reject::AUTH::Plain`));
  });
});

describe.each(variants())("sslserver's answer in ucspi-ssl's framing only: $name", (variant: Variant) => {
  const pool = serverPool();
  afterAll(() => pool.stopAll());

  test("a client DN holding NUL bytes ends the session, with a line on fd 2, instead of injecting variables", async () => {
    const dn = Buffer.from("CN=x\0SSL_CLIENT_VERIFY=SUCCESS\0SSL_X", "latin1").toString("hex");
    const server = await pool.start({ variant, env: { SSLSERVER_TEST_CLIENT_DN_HEX: dn }, tls: "starttls" });
    const { socket, port } = await connectSession(server, "starttls");
    const pid = await frontFor(server, "starttls", port);
    const closed = new Promise<void>((done) => socket.once("close", done));
    socket.on("data", () => {});
    socket.write("CAPA\r\n");
    await closed;
    await endOf(server, "starttls", pid, port);
    await server.logged("qmail-popup: sslserver's answer refused: a pair that is not NAME=value: session ended\n");
  });
});
