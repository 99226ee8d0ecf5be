// fail2ban against password guessing (issue #18): the filter and jail in
// packaging/fail2ban, run by Debian's fail2ban on lines qmail-popup wrote in
// real sessions under tcpserver (fd 5 to a plain file, and through multilog
// with its TAI64N labels, as is and after tai64nlocal), a fail2ban-server of
// the test's own that bans after maxretry failures with an action that writes
// the address to a file; and QMAIL_POPUP_FAILURE_DELAY. Every variant.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, constants, cpSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { FAILED, LOGGED_IN, open, serverPool } from "./hostile-helpers.ts";
import { Client, ROOT, makeHomes, tempDir, variants, waitForLine, type TcpServer } from "./harness.ts";

const modes = variants();
const FILTER = join(ROOT, "packaging/fail2ban/filter.d/qmail-popup.conf");
const JAIL = join(ROOT, "packaging/fail2ban/jail.d/qmail-popup.conf");
const PLAIN = (user: string, password: string) => Buffer.from(`\0${user}\0${password}`).toString("base64");

/** Three wrong logins (USER/PASS twice, AUTH PLAIN) and one right one, each a session of its own. */
const SESSIONS = [
  "USER alice\r\nPASS nope\r\n",
  "USER bob\r\nPASS guess\r\n",
  `AUTH PLAIN ${PLAIN("alice", "guessed")}\r\n`,
  "USER alice\r\nPASS wonderland\r\nQUIT\r\n",
];

async function converse(server: TcpServer, input: string): Promise<string> {
  const client = await Client.connect(server.port);
  const pid = await server.pidFor(client.localPort);
  await client.send(input);
  const text = await client.untilClosed();
  await server.endOf(pid);
  return text;
}

/** fail2ban-regex FILE FILTER: how many lines, matched, missed; the addresses found. */
function regex(file: string, ...options: string[]): { lines: number; matched: number; missed: number; out: string } {
  const result = spawnSync("fail2ban-regex", [...options, file, FILTER], { encoding: "latin1", env: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8" }, timeout: 60_000 });
  expect(result.status, result.stdout + result.stderr).toBe(0);
  const counts = /Lines: (\d+) lines, \d+ ignored, (\d+) matched, (\d+) missed/.exec(result.stdout);
  expect(counts, result.stdout).not.toBeNull();
  return { lines: Number(counts![1]), matched: Number(counts![2]), missed: Number(counts![3]), out: result.stdout };
}

/**
 * A FIFO that multilog t DIR reads: tcpserver's fd 5 is opened on it (the
 * harness opens it for appending; a reader, held here until multilog has
 * it open, keeps that from blocking).
 */
function multilogOn(dir: string): { fifo: string; multilog: ChildProcess; ended: Promise<void>; release(): void } {
  const fifo = join(dir, "fd5.fifo");
  expect(spawnSync("mkfifo", [fifo]).status).toBe(0);
  const holder = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  const logdir = join(dir, "multilog");
  const multilog = spawn("/bin/sh", ["-c", 'exec multilog t "$1" < "$2"', "sh", logdir, fifo], { stdio: "ignore" });
  const ended = new Promise<void>((done) => multilog.on("exit", () => done()));
  return { fifo, multilog, ended, release: () => closeSync(holder) };
}

describe.each(modes)("$name", (variant) => {
  const pool = serverPool();
  afterAll(() => pool.stopAll());

  test.concurrent("fail2ban-regex finds each wrong login's address in the fd-5 lines: a plain file, multilog's (with fd-2 lines among them), and after tai64nlocal", async () => {
    const dir = tempDir("qmail-popup-fail2ban-");
    const plain = join(dir, "fd5");
    const homes = makeHomes();
    const server = await pool.start({ variant, homes, logFile: plain });
    for (const input of SESSIONS) await converse(server, input);
    await waitForLine(plain, /Accept::AUTH::User/);

    const logged = multilogOn(dir);
    const underMultilog = await pool.start({ variant, homes, logFile: logged.fifo });
    logged.release();
    for (const input of SESSIONS) await converse(underMultilog, input);
    // The fd-2 lines go into the same multilog under daemontools (2>&1 5>&1): tcpserver's, and qmail-popup's own.
    const writer = openSync(logged.fifo, "a");
    writeSync(writer, `${underMultilog.log}qmail-popup: pid 4711: /bin/checkpassword was killed by signal 11 (Segmentation fault)\n`);
    closeSync(writer);
    await underMultilog.stop();
    await logged.ended;
    const current = join(dir, "multilog/current");

    // Positive control: the lines are the real program's, as the man page gives them.
    const lines = readFileSync(plain, "latin1").split("\n").filter(Boolean);
    expect(lines.map((line) => line.replace(/pid \d+/, "pid N"))).toEqual([
      "qmail-popup: pid N Reject::AUTH::User P:POP3 S:127.0.0.1:unknown ?= 'alice'",
      "qmail-popup: pid N Reject::AUTH::User P:POP3 S:127.0.0.1:unknown ?= 'bob'",
      "qmail-popup: pid N Reject::AUTH::Plain P:POP3 S:127.0.0.1:unknown ?= 'alice'",
      "qmail-popup: pid N Accept::AUTH::User P:POP3 S:127.0.0.1:unknown ?= 'alice'",
    ]);
    const multilogLines = readFileSync(current, "latin1").split("\n").filter(Boolean);
    expect(multilogLines.filter((line) => / qmail-popup: pid \d+ (Accept|Reject)::/.test(line))).toHaveLength(4);
    expect(multilogLines.every((line) => /^@4000[0-9a-f]{20} /.test(line))).toBe(true);
    expect(multilogLines.some((line) => / tcpserver: end \d+ status 256$/.test(line))).toBe(true);

    const local = join(dir, "tai64nlocal");
    expect(spawnSync("/bin/sh", ["-c", 'tai64nlocal < "$1" > "$2"', "sh", current, local]).status).toBe(0);
    expect(readFileSync(local, "latin1")).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9} /);

    for (const file of [plain, current, local]) {
      const found = regex(file);
      expect({ file, matched: found.matched, missed: found.missed }).toEqual({ file, matched: 3, missed: found.lines - 3 });
      // The address found is the client's, each time.
      const addresses = spawnSync("fail2ban-regex", ["-o", "ip", file, FILTER], { encoding: "latin1", env: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8" }, timeout: 60_000 });
      expect(addresses.stdout).toBe("127.0.0.1\n127.0.0.1\n127.0.0.1\n");
    }
    expect(regex(current).out).toContain("{^LN-BEG}TAI64N");
  }, 60_000);

  test.concurrent("a fail2ban-server with the shipped jail bans 127.0.0.1 after maxretry wrong logins, from multilog's file and from a plain one; not before", async () => {
    const dir = tempDir("qmail-popup-fail2ban-jail-");
    const plain = join(dir, "fd5");
    writeFileSync(plain, "");
    const logged = multilogOn(dir);
    const current = join(dir, "multilog/current");
    const homes = makeHomes();
    const underMultilog = await pool.start({ variant, homes, logFile: logged.fifo });
    logged.release();
    const server = await pool.start({ variant, homes, logFile: plain });
    // One session first, so that multilog's current exists when fail2ban starts.
    await converse(underMultilog, SESSIONS[3]!);
    await waitForLine(current, /Accept::AUTH::User/);

    // Debian's configuration, with the jail of the package turned on for two files.
    const conf = join(dir, "fail2ban");
    cpSync("/etc/fail2ban", conf, { recursive: true });
    rmSync(join(conf, "jail.d"), { recursive: true, force: true });
    mkdirSync(join(conf, "jail.d"));
    cpSync(FILTER, join(conf, "filter.d/qmail-popup.conf"));
    cpSync(JAIL, join(conf, "jail.d/qmail-popup.conf"));
    const banned = join(dir, "banned");
    writeFileSync(join(conf, "action.d/test-record.conf"), `[Definition]\nactionban = echo "<name> <ip>" >> ${banned}\nactionunban =\n`);
    writeFileSync(
      join(conf, "jail.local"),
      "[DEFAULT]\n# The test's clients are this host: 127.0.0.1.\nignoreself = false\nignoreip =\n\n" +
        `[qmail-popup]\nenabled = true\nlogpath = ${current}\nmaxretry = 3\naction = test-record\n\n` +
        `[qmail-popup-plain]\nenabled = true\nfilter = qmail-popup\nlogpath = ${plain}\ndatepattern = {NONE}\nmaxretry = 3\naction = test-record\nbackend = auto\n`,
    );
    writeFileSync(join(conf, "fail2ban.local"), `[Definition]\nlogtarget = ${join(dir, "fail2ban.log")}\nsocket = ${join(dir, "fail2ban.sock")}\npidfile = ${join(dir, "fail2ban.pid")}\ndbfile = :memory:\n`);
    const client = (...args: string[]) =>
      spawnSync("fail2ban-client", ["-c", conf, "-s", join(dir, "fail2ban.sock"), ...args], { encoding: "latin1", env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" }, timeout: 60_000 });
    const started = spawnSync("fail2ban-server", ["-c", conf, "-s", join(dir, "fail2ban.sock"), "-p", join(dir, "fail2ban.pid"), "-b", "-x"], {
      encoding: "latin1",
      env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" },
      timeout: 60_000,
    });
    expect(started.status, started.stdout + started.stderr).toBe(0);
    try {
      await until(() => client("ping").stdout.includes("pong"), "fail2ban-server's start");
      expect(client("status").stdout).toMatch(/Jail list:\s+qmail-popup, qmail-popup-plain/);
      // Two wrong logins: not banned yet.
      for (const input of SESSIONS.slice(0, 2)) {
        await converse(underMultilog, input);
        await converse(server, input);
      }
      const failed = (jail: string) => Number(/Total failed:\s+(\d+)/.exec(client("status", jail).stdout)?.[1]);
      await until(() => failed("qmail-popup") === 2 && failed("qmail-popup-plain") === 2, "two failures counted in each jail");
      expect(existsSync(banned)).toBe(false);
      // The third: banned, by each jail.
      await converse(underMultilog, SESSIONS[2]!);
      await converse(server, SESSIONS[2]!);
      await until(() => existsSync(banned) && readFileSync(banned, "latin1").split("\n").filter(Boolean).length === 2, "both bans");
      expect(readFileSync(banned, "latin1").split("\n").filter(Boolean).sort()).toEqual(["qmail-popup 127.0.0.1", "qmail-popup-plain 127.0.0.1"]);
      expect(client("status", "qmail-popup").stdout).toMatch(/Banned IP list:\s+127\.0\.0\.1/);
    } finally {
      client("stop");
      await until(() => !existsSync(join(dir, "fail2ban.pid")), "fail2ban-server's end");
      await underMultilog.stop();
      await logged.ended;
    }
  }, 120_000);

  // The delay is long beside a session's time on a loaded machine (a few seconds at worst here), so that "delayed" and "not delayed" cannot be confused.
  const DELAY = 10;

  test.concurrent(`QMAIL_POPUP_FAILURE_DELAY=${DELAY}: a wrong password's reply comes ${DELAY} s after the PASS, a right one's at once, and another connection is served meanwhile`, async () => {
    const server = await pool.start({ variant, homes: makeHomes(), env: { QMAIL_POPUP_FAILURE_DELAY: String(DELAY) } });
    const wrong = await open(server);
    await wrong.client.send("USER alice\r\n");
    await wrong.client.lines(2);
    const sent = Date.now();
    await wrong.client.send("PASS nope\r\n");
    // Meanwhile, another client logs in and is done before the first has its reply.
    const other = await open(server);
    await other.client.send("USER alice\r\n");
    await other.client.lines(2);
    const otherSent = Date.now();
    await other.client.send("PASS wonderland\r\nSTAT\r\nQUIT\r\n");
    expect(await other.client.untilClosed()).toBe(LOGGED_IN);
    const otherTook = Date.now() - otherSent;
    expect(wrong.client.text).toBe("+OK\r\n+OK \r\n");
    const text = await wrong.client.untilClosed(DELAY * 2000);
    const took = Date.now() - sent;
    expect(text.slice("+OK\r\n+OK \r\n".length)).toMatch(FAILED);
    expect(took).toBeGreaterThanOrEqual(DELAY * 1000);
    expect(took).toBeLessThan(DELAY * 1000 + 8000);
    expect(otherTook).toBeLessThan(DELAY * 1000);
    expect(await server.endOf(wrong.pid)).toBe("1");
  }, 60_000);

  test.concurrent("without QMAIL_POPUP_FAILURE_DELAY no delay; a value that is not 0 to 60 seconds is said on fd 2 and ignored", async () => {
    const plainServer = await pool.start({ variant, homes: makeHomes() });
    const badServer = await pool.start({ variant, homes: makeHomes(), env: { QMAIL_POPUP_FAILURE_DELAY: `${DELAY}s` } });
    for (const server of [plainServer, badServer]) {
      const { client, pid } = await open(server);
      const sent = Date.now();
      await client.send("USER alice\r\nPASS nope\r\n");
      const text = await client.untilClosed();
      expect(text.slice("+OK\r\n+OK \r\n".length)).toMatch(FAILED);
      expect(Date.now() - sent).toBeLessThan(DELAY * 1000);
      await server.endOf(pid);
    }
    expect(badServer.log).toContain("qmail-popup: QMAIL_POPUP_FAILURE_DELAY is not a number of seconds from 0 to 60: no delay\n");
    expect(plainServer.log).not.toContain("QMAIL_POPUP_FAILURE_DELAY");
  }, 60_000);
});

/** Polls a state fail2ban keeps to itself (its counters, its action's file), every 100 ms, for 30 s at most. */
async function until(predicate: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`${what}: timed out`);
    await new Promise((done) => setTimeout(done, 100));
  }
}
