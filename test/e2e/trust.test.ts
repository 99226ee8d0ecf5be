// What a root-started qmail-popup does on its host (issue #11): no signal
// opens a listener, no process holding a password can be dumped or traced,
// a resource failure is a temporary failure said on fd 2, an over-long
// answer from sslserver ends the session, and no refusal leaves a password
// in the runtime's memory. Every variant: the front with each runtime.

import { randomBytes } from "node:crypto";
import { chmodSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { makeHomes, tempDir, variants, type TcpServer, type Variant } from "./harness.ts";
import { LOGIN, PROG, RawClient, fileContent, finished, memoryCounts, open, serverPool, sessionRuntimes, talk, within } from "./hostile-helpers.ts";
import { alive, listenerWithin, onlyChildOf } from "./proc.ts";

describe("the probe: a Node process given SIGUSR1 opens a listener within the window (it can fail)", () => {
  test("plain node", async () => {
    const { spawn } = await import("node:child_process");
    const child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 5000)"], { stdio: "ignore" });
    await new Promise((started) => child.once("spawn", started));
    // Node installs its SIGUSR1 handler while starting: wait until it is there (SigCgt bit 10).
    await within(5000, "node's SIGUSR1 handler", (async () => {
      while (!(BigInt(`0x${/^SigCgt:\s+([0-9a-f]+)$/m.exec(readFileSync(`/proc/${child.pid}/status`, "latin1"))![1]}`) & (1n << 9n))) {
        await new Promise((wake) => setTimeout(wake, 10));
      }
    })());
    child.kill("SIGUSR1");
    const found = await listenerWithin(child.pid!, 2000);
    child.kill("SIGKILL");
    expect(found.length).toBeGreaterThan(0);
  });
});

// A signal to the runtime of one connection. In resident mode no runtime is the session's own: a
// worker serves many, and resident.test.ts kills one (its sessions end with -ERR [SYS/TEMP]).
describe.each(variants({ resident: false }))("signals: $name", (variant: Variant) => {
  const pool = serverPool();
  let server: TcpServer;
  beforeAll(async () => {
    server = await pool.start({ variant });
  });
  afterAll(() => pool.stopAll());

  test.concurrent.each(["SIGUSR1", "SIGUSR2", "SIGHUP", "SIGWINCH"] as const)(
    "%s to the runtime opens nothing: it is ignored or ends the session",
    async (signal) => {
      const { client, pid } = await open(server);
      const runtime = onlyChildOf(pid);
      process.kill(runtime, signal);
      await client.send("NOOP\r\n");
      await client.until(() => client.text.endsWith("+OK \r\n") || client.closed, "NOOP's reply or the end");
      expect(await listenerWithin(runtime, 1000), `listening sockets of the runtime ${runtime} after ${signal}`).toEqual([]);
      if (!client.closed) {
        await client.send("QUIT\r\n");
        await client.untilClosed();
      }
      await finished(server, pid, client.localPort);
    },
  );
});

describe.each(variants())("a signal to the front: $name", (variant: Variant) => {
  const pool = serverPool();
  let server: TcpServer;
  beforeAll(async () => {
    server = await pool.start({ variant });
  });
  afterAll(() => pool.stopAll());

  test("SIGUSR1 to qmail-popup itself has its default effect, as for the C program: the session ends, the runtime too (in resident mode, the session in the worker)", async () => {
    const { client, pid } = await open(server);
    const runtime = variant.resident === undefined ? onlyChildOf(pid) : undefined;
    process.kill(pid, "SIGUSR1");
    await client.untilClosed();
    expect(await finished(server, pid, client.localPort)).toBe("signal 10");
    if (runtime === undefined) return;
    // Killed with it (PR_SET_PDEATHSIG): gone, or a zombie waiting for init to reap it.
    await within(5000, `the end of the runtime ${runtime}`, (async () => {
      while (alive(runtime) && !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${runtime}/stat`, "latin1"))) await new Promise((wake) => setTimeout(wake, 10));
    })());
  });
});

// --- no dump, no trace --------------------------------------------------------------

/** Runs the variant as uid/gid 65534, as `tcpserver -u -g` would. */
const unprivileged = (variant: Variant): Variant => ({
  name: `${variant.name} as 65534`,
  command: ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", ...variant.command],
});

/** The Node 20 bundle cannot call prctl(2): no core file (RLIMIT_CORE 0) is all it gets. */
const CANNOT_PRCTL = new Set(["node"]);

// The runtime a front started as 65534 starts. In resident mode the front hands its connection over
// instead, and the resident serves fronts running as root only (resident.test.ts); the workers'
// confinement is resident.test.ts's too.
describe.each(variants({ resident: false }))("no core file, no ptrace: $name", (variant: Variant) => {
  const pool = serverPool();
  const work = tempDir("qmail-popup-trust-");
  chmodSync(work, 0o777);
  let server: TcpServer;
  beforeAll(async () => {
    server = await pool.start({ variant: unprivileged(variant), subprogram: [PROG, "hold"], env: { HOSTILE_RECORD: join(work, "hold") } });
  });
  afterAll(() => pool.stopAll());

  // /proc/PID's files belong to root when the process is not dumpable.
  const owner = (pid: number) => statSync(`/proc/${pid}/environ`).uid;
  const coreLimit = (pid: number) => /^Max core file size\s+(\S+)\s+(\S+)/m.exec(readFileSync(`/proc/${pid}/limits`, "latin1"))![1];

  test("the front and the runtime, from the greeting on; the front while the login program runs", async () => {
    const { client, pid } = await open(server);
    const runtime = onlyChildOf(pid);
    expect(owner(pid), "the front's /proc files").toBe(0);
    // The runtime forbids dumps before it reads a line: a NOOP answered is past that point.
    await client.send("NOOP\r\n");
    await client.lines(2);
    expect(coreLimit(runtime), "the runtime's RLIMIT_CORE").toBe("0");
    if (!CANNOT_PRCTL.has(variant.name)) expect(owner(runtime), "the runtime's /proc files").toBe(0);
    await client.send(`USER alice\r\nPASS pw-${randomBytes(8).toString("hex")}\r\n`);
    const child = Number((await fileContent(join(work, `hold.${client.localPort}`))).trim());
    expect(owner(pid), "the front's /proc files while the login program runs").toBe(0);
    // The login program is the administrator's: exec made it dumpable again, with the limits it was given.
    expect(owner(child)).toBe(65534);
    expect(coreLimit(child)).toBe(coreLimit(process.pid));
    client.end();
    expect(await finished(server, pid, client.localPort)).toBe("1");
  });
});

// --- what ps shows ---------------------------------------------------------------------

describe.each(variants())("ps while the login program runs: $name", (variant: Variant) => {
  const pool = serverPool();
  const work = tempDir("qmail-popup-trust-");
  let server: TcpServer;
  beforeAll(async () => {
    server = await pool.start({ variant, subprogram: [PROG, "hold"], env: { HOSTILE_RECORD: join(work, "hold") } });
  });
  afterAll(() => pool.stopAll());

  test("the waiting process is qmail-popup, with the command line tcpserver gave it, and its only child is the login program", async () => {
    const { client, pid } = await open(server);
    await client.send(`USER alice\r\nPASS pw-${randomBytes(8).toString("hex")}\r\n`);
    const child = Number((await fileContent(join(work, `hold.${client.localPort}`))).trim());
    expect(readFileSync(`/proc/${pid}/comm`, "latin1")).toBe("qmail-popup\n");
    expect(readFileSync(`/proc/${pid}/cmdline`, "latin1").split("\0").slice(0, 3)).toEqual([variant.command[0], "mail.test", PROG]);
    expect(onlyChildOf(pid)).toBe(child);
    client.end();
    expect(await finished(server, pid, client.localPort)).toBe("1");
  });
});

// --- resource failures ---------------------------------------------------------------

/** The variant under hard and soft limits set by prlimit (as root: RLIMIT_NPROC is not enforced for root). */
const limited = (variant: Variant, ...limits: string[]): Variant => ({
  ...variant,
  name: `${variant.name} ${limits.join(" ")}`,
  command: ["/usr/bin/prlimit", ...limits, "--", ...variant.command],
});

describe.each(variants())("resource failures: $name", (variant: Variant) => {
  const pool = serverPool();
  const homes = makeHomes(["alice"]);
  afterAll(() => pool.stopAll());

  // A right password is never "authorization failed" and never silence: either
  // the login works, or -ERR [SYS/TEMP] with the reason on fd 2.
  test.concurrent.each([6, 7, 8, 9, 10, 11, 12, 16])("a hard limit of %i descriptors: logged in, or [SYS/TEMP] and a reason on fd 2", async (files) => {
    const log = join(tempDir("qmail-popup-trust-"), "log");
    const server = await pool.start({ variant: limited(variant, `--nofile=${files}:${files}`), homes, logFile: log });
    // STAT and QUIT only once PASS is answered: input left unread makes a failing front's close a reset, which can discard its -ERR.
    const client = await RawClient.connect(server.port);
    const pid = await server.pidFor(client.localPort);
    await client.send("USER alice\r\nPASS wonderland\r\n");
    await client.until(() => client.closed || client.text.split("\r\n").length > 3, "the reply to PASS");
    if (!client.closed) await client.send("STAT\r\nQUIT\r\n");
    const text = await client.untilClosed();
    const status = await finished(server, pid, client.localPort);
    if (text === "+OK\r\n+OK \r\n+OK \r\n+OK 2 250\r\n+OK \r\n") {
      expect(status).toBe("0");
      expect(readFileSync(log, "latin1")).toBe(`qmail-popup: pid ${pid} Accept::AUTH::User P:POP3 S:127.0.0.1:unknown ?= 'alice'\n`);
    } else {
      expect(text).toMatch(/-ERR \[SYS\/TEMP\] [^\r\n]*\r\n$/);
      expect(text).not.toMatch(/\[AUTH\]/);
      expect(status).toBe("1");
      expect(server.log).toMatch(new RegExp(`qmail-popup: [^\\n]+\\n(.|\\n)*end ${pid} status`));
      const logged = readFileSync(log, "latin1");
      // Where the failure came after the password was read, the refusal is logged as such.
      if (text.startsWith("+OK\r\n+OK \r\n")) expect(logged).toBe(`qmail-popup: pid ${pid} Reject::AUTH::User P:POP3 S:127.0.0.1:unknown ?= 'alice'\n`);
    }
  });
});

// A front that cannot fork its runtime, and its runtime killed: resident mode starts no runtime per
// connection (a worker killed: resident.test.ts).
describe.each(variants({ resident: false }))("the runtime of one connection cannot start, or is killed: $name", (variant: Variant) => {
  const pool = serverPool();
  afterAll(() => pool.stopAll());

  test.concurrent("no process to spare (RLIMIT_NPROC 1 as uid 65534): -ERR [SYS/TEMP], the reason on fd 2, status 1", async () => {
    const server = await pool.start({ variant: limited(unprivileged(variant), "--nproc=1:1") });
    const { text, status, pid } = await talk(server, LOGIN);
    expect(text).toBe("-ERR [SYS/TEMP] unable to run qmail-popup\r\n");
    expect(status).toBe("1");
    expect(server.log).toContain("qmail-popup: unable to fork: Resource temporarily unavailable\n");
    expect(server.log).toContain(`end ${pid} status 256`);
  });

  test.concurrent("the runtime killed mid-session (an abort, an out-of-memory kill): -ERR [SYS/TEMP] to the client, the signal on fd 2, no core file", async () => {
    const cwd = tempDir("qmail-popup-trust-cwd-");
    const server = await pool.start({ variant: { name: variant.name, command: ["/bin/sh", "-c", 'cd "$0" && exec "$@"', cwd, ...variant.command] } });
    const { client, pid } = await open(server);
    await client.send("USER alice\r\n");
    await client.lines(2);
    process.kill(onlyChildOf(pid), "SIGABRT");
    expect(await client.untilClosed()).toBe("+OK\r\n+OK \r\n-ERR [SYS/TEMP] unable to run qmail-popup\r\n");
    expect(await finished(server, pid, client.localPort)).toBe("1");
    expect(server.log).toContain("qmail-popup: the runtime was killed by signal 6\n");
    expect(readdirSync(cwd)).toEqual([]);
  });
});

// --- sslserver's answer ---------------------------------------------------------------

describe.each(variants())("an answer from sslserver longer than qmail-popup takes: $name", (variant: Variant) => {
  const pool = serverPool();
  afterAll(() => pool.stopAll());

  test.concurrent("ends the session, says why on fd 2, writes nothing past its buffer and does not wait for the timeout", async () => {
    const server = await pool.start({ variant, tls: "starttls", env: { SSLSERVER_TEST_CLIENT_CERT_BYTES: String(70_000), POP3TIMEOUT: "600" } });
    const { spawnSync } = await import("node:child_process");
    const started = Date.now();
    const session = spawnSync("/usr/bin/python3", [join(import.meta.dirname, "starttls-client.py"), String(server.port), JSON.stringify("STLS\r\n"), JSON.stringify("CAPA\r\n")], {
      encoding: "latin1",
      timeout: 60_000,
    });
    expect(session.status, session.stderr).toBe(0);
    const { clear, tls } = JSON.parse(session.stdout) as { clear: string; tls: string | null };
    expect(clear).toBe("+OK\r\n+OK starting TLS negotiation\r\n");
    // TLS came up (sslserver's part), and qmail-popup ended without a word on it.
    expect(tls).toBe("");
    expect(Date.now() - started).toBeLessThan(30_000);
    await server.logged("qmail-popup: sslserver's answer is longer than 65536 bytes\n");
  });
});

// --- passwords in the runtime's memory after a refusal ----------------------------------

/** Each needle's copies in the memory of these processes (the runtime; in resident mode, every worker), added up. */
function countsIn(pids: readonly number[], needles: readonly string[]): Record<string, number> {
  const total: Record<string, number> = Object.fromEntries(needles.map((needle) => [needle, 0]));
  for (const pid of pids) for (const [needle, count] of Object.entries(memoryCounts(pid, needles))) total[needle] = (total[needle] ?? 0) + count;
  return total;
}

const b64 = (bytes: string) => Buffer.from(bytes, "latin1").toString("base64");

/** Each way a SASL exchange is refused with the password already sent: the input, and the refusal. */
const REFUSALS: readonly (readonly [name: string, input: (password: string) => string])[] = [
  ["AUTH PLAIN, initial response: an authorization identity", (pw) => `AUTH PLAIN ${b64(`root\0alice\0${pw}`)}\r\n`],
  ["AUTH PLAIN, initial response: valid base64, then junk", (pw) => `AUTH PLAIN ${b64(`\0alice\0${pw}`)}!!\r\n`],
  ["AUTH PLAIN, continuation: valid base64, then junk", (pw) => `AUTH PLAIN\r\n${b64(`\0alice\0${pw}`)}*x\r\n`],
  ["AUTH PLAIN, continuation: a NUL too many", (pw) => `AUTH PLAIN\r\n${b64(`\0alice\0${pw}\0`)}\r\n`],
  ["AUTH LOGIN: a password with a NUL", (pw) => `AUTH LOGIN\r\n${b64("alice")}\r\n${b64(`${pw}\0x`)}\r\n`],
  ["AUTH LOGIN: a password in valid base64, then junk", (pw) => `AUTH LOGIN\r\n${b64("alice")}\r\n${b64(pw)}=junk\r\n`],
  ["AUTH LOGIN, initial response, then a password with junk", (pw) => `AUTH LOGIN ${b64("alice")}\r\n${b64(pw)}%%\r\n`],
  ["AUTH LOGIN: a password line that is too long", (pw) => `AUTH LOGIN\r\n${b64("alice")}\r\n${b64(pw)}${"A".repeat(3000)}\r\n`],
];

describe.each(variants())("no password in the runtime's memory after a refused exchange: $name", (variant: Variant) => {
  const pool = serverPool();
  let server: TcpServer;
  beforeAll(async () => {
    server = await pool.start({ variant });
  });
  afterAll(() => pool.stopAll());

  test.concurrent.each(REFUSALS)("%s", async (_name, input) => {
    const password = "pw-" + randomBytes(12).toString("hex");
    const { client, pid } = await open(server);
    const runtimes = await sessionRuntimes(variant, pid);
    await client.send(input(password));
    await client.until(() => /-ERR [^\r\n]*\r\n$/.test(client.text), "the refusal");
    // The session goes on: NOOP answered means the refusal is behind it.
    await client.send("NOOP\r\n");
    await client.untilEndsWith("+OK \r\n");
    // The password, and the base64 text that carried it, as the client sent it.
    const needles = [password, ...(input(password).match(/[A-Za-z0-9+/]{24,}/g) ?? [])];
    const counts = countsIn(runtimes, needles);
    await client.send("QUIT\r\n");
    await client.untilClosed();
    expect(await finished(server, pid, client.localPort)).toBe("0");
    expect(counts, `copies of the password in the runtime (pids ${runtimes.join(", ")})`).toEqual(Object.fromEntries(needles.map((needle) => [needle, 0])));
  });
});


// --- names in the runtime's memory once replaced or dropped -------------------------------

/** Each way a name (a password typed into the name field, perhaps) is replaced or dropped: the input, and the replies it gets. */
const DROPPED_NAMES: readonly (readonly [name: string, input: (name: string) => string, replies: number])[] = [
  ["USER, replaced by another USER", (name) => `USER ${name}\r\nUSER alice\r\n`, 2],
  ["AUTH LOGIN's name, then the exchange cancelled", (name) => `AUTH LOGIN\r\n${b64(name)}\r\n*\r\n`, 3],
  ["AUTH LOGIN's name as initial response, then the exchange cancelled", (name) => `AUTH LOGIN ${b64(name)}\r\n*\r\n`, 2],
  ["AUTH LOGIN's name, then a password with junk", (name) => `AUTH LOGIN\r\n${b64(name)}\r\n${b64("x")}%%\r\n`, 3],
];

describe.each(variants())("no name in the runtime's memory once replaced or dropped: $name", (variant: Variant) => {
  const pool = serverPool();
  let server: TcpServer;
  beforeAll(async () => {
    server = await pool.start({ variant });
  });
  afterAll(() => pool.stopAll());

  test.concurrent.each(DROPPED_NAMES)("%s", async (_what, input, replies) => {
    const name = "pw-" + randomBytes(12).toString("hex");
    const { client, pid } = await open(server);
    const runtimes = await sessionRuntimes(variant, pid);
    // The greeting, the replies, and NOOP's: the name is behind the session once NOOP is answered.
    await client.send(input(name) + "NOOP\r\n");
    await client.until(() => client.text.split("\r\n").length - 1 === replies + 2 && client.text.endsWith("+OK \r\n"), "NOOP's reply");
    const needles = [name, ...(input(name).match(/[A-Za-z0-9+/]{24,}/g) ?? [])];
    const counts = countsIn(runtimes, needles);
    await client.send("QUIT\r\n");
    await client.untilClosed();
    expect(await finished(server, pid, client.localPort)).toBe("0");
    expect(counts, `copies of the name in the runtime (pids ${runtimes.join(", ")})`).toEqual(Object.fromEntries(needles.map((needle) => [needle, 0])));
  });
});
