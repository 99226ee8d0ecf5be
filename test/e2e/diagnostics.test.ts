// What the operator's log (fd 2) says when something goes wrong that the
// client only sees as -ERR (issue #18): a login program that crashed or
// exited 111, an fd-5 line that could not be written (a full disk, a reader
// that stalled), no /proc. Every variant; the lines are the front's.

import { spawnSync } from "node:child_process";
import { closeSync, constants, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { CRASHED, FAILED, POP3TIMEOUT, TEMPORARY, expectReply, fileContent, open, serverPool, wrapped } from "./hostile-helpers.ts";
import { startResident } from "../../scripts/lib/tcpserver.mjs";
import { FIXTURES, makeHomes, tempDir, variants, waitForLine } from "./harness.ts";

const modes = variants();

/** A login program that shows it ran (its pid in RECORD.PORT), then ends as told: by SIGSEGV, or exit N. */
function standIn(how: "crash" | "exit 111" | "exit 1"): { program: string; record: string } {
  const dir = tempDir("qmail-popup-diagnostics-");
  const program = join(dir, `login-${how.replace(" ", "-")}`);
  const end = how === "crash" ? "kill -SEGV $$" : how;
  writeFileSync(program, `#!/bin/sh\ncat <&3 >/dev/null\necho $$ > "${dir}/record.$TCPREMOTEPORT"\n${end}\n`, { mode: 0o755 });
  return { program, record: join(dir, "record") };
}

/** Connects, sends input, reads until the close: the replies, the pid, the client's port, qmail-popup's status. */
async function session(server: Awaited<ReturnType<ReturnType<typeof serverPool>["start"]>>, input: string) {
  const { client, pid } = await open(server);
  const port = client.localPort;
  await client.send(input);
  const text = await client.untilClosed();
  return { text, pid, port, status: await server.endOf(pid) };
}

/** The lines qmail-popup wrote on fd 2 for that pid (tcpserver's own lines left out). */
function frontLines(log: string, pid: number): string[] {
  return log.split("\n").filter((line) => line.startsWith(`qmail-popup: pid ${pid}: `));
}

describe.each(modes)("$name", (variant) => {
  const pool = serverPool();
  afterAll(() => pool.stopAll());

  test.concurrent("a login program killed by a signal: fd 2 says which, the fd-5 line is as before", async () => {
    const { program, record } = standIn("crash");
    const log = join(tempDir("qmail-popup-diagnostics-log-"), "fd5");
    const server = await pool.start({ variant, subprogram: [program], logFile: log });
    const ended = await session(server, "USER alice\r\nPASS wonderland\r\n");
    // Positive control: the stand-in ran.
    expect(Number(await fileContent(`${record}.${ended.port}`))).toBeGreaterThan(0);
    expectReply(ended.text, "+OK\r\n+OK \r\n", CRASHED);
    expect(ended.status).toBe("1");
    await server.logged(`qmail-popup: pid ${ended.pid}: `);
    expect(frontLines(server.log, ended.pid)).toEqual([`qmail-popup: pid ${ended.pid}: ${program} was killed by signal 11 (Segmentation fault)`]);
    expect(readFileSync(log, "latin1")).toBe(`qmail-popup: pid ${ended.pid} Reject::AUTH::User P:POP3 S:127.0.0.1:unknown ?= 'alice'\n`);
  });

  test.concurrent("a login program that exits 111: fd 2 says it is a temporary failure", async () => {
    const { program, record } = standIn("exit 111");
    const server = await pool.start({ variant, subprogram: [program] });
    const ended = await session(server, "USER alice\r\nPASS wonderland\r\n");
    expect(Number(await fileContent(`${record}.${ended.port}`))).toBeGreaterThan(0);
    expectReply(ended.text, "+OK\r\n+OK \r\n", TEMPORARY);
    await server.logged(`qmail-popup: pid ${ended.pid}: `);
    expect(frontLines(server.log, ended.pid)).toEqual([`qmail-popup: pid ${ended.pid}: ${program} exited 111: a temporary failure`]);
  });

  test.concurrent("a wrong password (exit 1) gets no line on fd 2: the fd-5 line is its record", async () => {
    const { program, record } = standIn("exit 1");
    const log = join(tempDir("qmail-popup-diagnostics-log-"), "fd5");
    const server = await pool.start({ variant, subprogram: [program], logFile: log });
    const ended = await session(server, "USER alice\r\nPASS nope\r\n");
    expect(Number(await fileContent(`${record}.${ended.port}`))).toBeGreaterThan(0);
    expectReply(ended.text, "+OK\r\n+OK \r\n", FAILED);
    await waitForLine(log, /Reject::AUTH::User/);
    await server.logged(`end ${ended.pid} status`);
    expect(server.log.split("\n").filter((line) => line.startsWith("qmail-popup:"))).toEqual([]);
  });

  test.concurrent("fd 5 a full pipe that nobody reads: the line is dropped after POP3TIMEOUT, and fd 2 says so", async () => {
    const fifo = join(tempDir("qmail-popup-diagnostics-"), "fd5.fifo");
    spawnSync("mkfifo", [fifo]);
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const server = await pool.start({ variant: wrapped(variant, `--fd5=full:${fifo}`), homes: makeHomes(), env: { POP3TIMEOUT: String(POP3TIMEOUT) } });
      const { client, pid } = await open(server);
      await client.send("USER bob\r\nPASS nope\r\n");
      await client.lines(3);
      expectReply(client.text, "+OK\r\n+OK \r\n", FAILED);
      await server.logged(`qmail-popup: pid ${pid}: `);
      expect(frontLines(server.log, pid)).toEqual([
        `qmail-popup: pid ${pid}: unable to write the log line to fd 5: no room in it for ${POP3TIMEOUT} seconds: line dropped`,
      ]);
    } finally {
      closeSync(reader);
    }
  }, 30_000);

  test.concurrent("fd 5 a file on a full disk: fd 2 says the line is lost and why", async () => {
    const disk = tempDir("qmail-popup-diagnostics-disk-");
    expect(spawnSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", disk]).status).toBe(0);
    try {
      const log = join(disk, "fd5");
      writeFileSync(log, "");
      // Fill the rest of the disk; the test's own control that it is full.
      spawnSync("/bin/sh", ["-c", `cat /dev/zero > ${disk}/filler 2>/dev/null`]);
      const full = spawnSync("python3", ["-c", "import os, sys\ntry: os.write(os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND), b'x')\nexcept OSError as e: print(e.strerror)", log], { encoding: "latin1" });
      expect(full.stdout).toBe("No space left on device\n");
      const server = await pool.start({ variant, homes: makeHomes(), logFile: log });
      const ended = await session(server, "USER alice\r\nPASS nope\r\n");
      expectReply(ended.text, "+OK\r\n+OK \r\n", FAILED);
      await server.logged(`qmail-popup: pid ${ended.pid}: `);
      expect(frontLines(server.log, ended.pid)).toEqual([`qmail-popup: pid ${ended.pid}: unable to write the log line to fd 5: No space left on device`]);
      expect(readFileSync(log, "latin1")).toBe("");
    } finally {
      spawnSync("umount", ["-l", disk]);
    }
  });

  // tcpserver, the login programs of other sessions and multilog share fd 2 (and fd 5) with the session:
  // made non-blocking, a burst of lines finds the pipe full and tcpserver's own lines are lost (EAGAIN).
  test.concurrent("while a session is open, fd 2 and fd 5 (tcpserver's too: one open file each) stay blocking", async () => {
    const log = join(tempDir("qmail-popup-diagnostics-log-"), "fd5");
    const server = await pool.start({ variant, logFile: log });
    const { client, pid } = await open(server);
    await client.send("NOOP\r\n");
    await client.lines(2);
    const flags = (fd: number) => Number.parseInt(/^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, "latin1"))![1]!, 8);
    // The control: fd 5 is the log file, opened for appending.
    expect(flags(5) & constants.O_APPEND).toBe(constants.O_APPEND);
    expect({ fd2: flags(2) & constants.O_NONBLOCK, fd5: flags(5) & constants.O_NONBLOCK }).toEqual({ fd2: 0, fd5: 0 });
    await client.send("QUIT\r\n");
    await client.untilClosed();
    expect(await server.endOf(pid)).toBe("0");
  });

  test.concurrent("no /proc: the front refuses before the greeting, with one line on fd 2 and -ERR [SYS/TEMP]; with /proc it greets (the control)", async () => {
    const front = variant.command;
    if (variant.resident !== undefined) await startResident(variant.resident);
    const script = 'umount -l /proc || exit 97; exec "$@"';
    const noProc = spawnSync("unshare", ["--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "sh", ...front, "mail.test", join(FIXTURES, "checkpassword"), "/bin/true"], {
      input: "QUIT\r\n",
      env: { PATH: "/usr/bin:/bin", ...variant.env },
      encoding: "latin1",
      timeout: 20_000,
    });
    expect({ stdout: noProc.stdout, stderr: noProc.stderr, status: noProc.status }).toEqual({
      stdout: "-ERR [SYS/TEMP] unable to run qmail-popup\r\n",
      stderr: "qmail-popup: /proc is not mounted (/proc/self/exe: No such file or directory): the runtime needs it\n",
      status: 1,
    });
    const withProc = spawnSync("unshare", ["--mount", "--propagation", "private", "--", "/bin/sh", "-c", 'exec "$@"', "sh", ...front, "mail.test", "/bin/true"], {
      input: "QUIT\r\n",
      env: { PATH: "/usr/bin:/bin", ...variant.env },
      encoding: "latin1",
      timeout: 20_000,
    });
    expect({ stdout: withProc.stdout, stderr: withProc.stderr, status: withProc.status }).toEqual({ stdout: "+OK\r\n+OK \r\n", stderr: "", status: 0 });
  });
});
