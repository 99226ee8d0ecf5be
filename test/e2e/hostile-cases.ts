// Hostile cases whose outcome depends on how the compiled binary waits for
// the subprogram: as a /bin/sh waiter (the default, after execve) or
// in-process (QMAIL_POPUP_NOEXEC=1). Each starts its own servers for the
// variant it is given and stops them. hostile.test.ts runs each for the
// modes that pass it; a mode that fails one is a bug, reported with its
// reproduction rather than committed as a failing test.

import { randomBytes } from "node:crypto";
import { closeSync, constants, openSync, readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { expect } from "vitest";
import { makeHomes, tempDir, type Variant } from "./harness.ts";
import {
  FAILED,
  LOGGED_IN,
  LOGIN,
  POP3TIMEOUT,
  PROG,
  expectReply,
  fileContent,
  finished,
  memoryCounts,
  open,
  serverPool,
  talk,
  wrapped,
} from "./hostile-helpers.ts";

/** fd 5 a pipe whose reader is gone: the log write gets EPIPE, which must neither kill nor hang the session. */
export async function fd5BrokenPipe(variant: Variant): Promise<void> {
  const pool = serverPool();
  try {
    const server = await pool.start({ variant: wrapped(variant, "--fd5=broken"), homes: makeHomes() });
    const ok = await talk(server, LOGIN);
    expect(ok.text).toBe(LOGGED_IN);
    expect(ok.status, "status of an accepted session").toBe("0");
    const refused = await talk(server, "USER bob\r\nPASS nope\r\n");
    expectReply(refused.text, "+OK\r\n+OK \r\n", FAILED);
    expect(refused.status, "status of a refused session").toBe("1");
  } finally {
    await pool.stopAll();
  }
}

/**
 * fd 5 a full pipe whose reader lives and never reads: the reply still
 * arrives and the session ends; the log line is given up at the write
 * timeout (POP3TIMEOUT=2), as the spec says.
 */
export async function fd5FullPipe(variant: Variant): Promise<void> {
  const pool = serverPool();
  const fifo = join(tempDir("qmail-popup-hostile-"), "fd5.fifo");
  spawnSync("mkfifo", [fifo]);
  // The reader: this process, which never reads.
  const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const server = await pool.start({ variant: wrapped(variant, `--fd5=full:${fifo}`), homes: makeHomes(), env: { POP3TIMEOUT: String(POP3TIMEOUT) } });
    const { client, pid } = await open(server);
    await client.send("USER bob\r\nPASS nope\r\n");
    await client.lines(3);
    expectReply(client.text, "+OK\r\n+OK \r\n", FAILED);
    expect(await finished(server, pid, client.localPort, (POP3TIMEOUT + 6) * 1000)).toBe("1");
    const ok = await talk(server, LOGIN, (POP3TIMEOUT + 6) * 1000);
    expect(ok.text).toBe(LOGGED_IN);
    expect(ok.status).toBe("0");
  } finally {
    await pool.stopAll();
    closeSync(reader);
  }
}

/**
 * The client hangs up (FIN or RST) while a checkpassword that will refuse
 * still runs: the refusal is still reported (the reply write may fail, the
 * log line must not be lost), status 1.
 */
export async function hangUpDuringFailingChild(variant: Variant, how: "EOF" | "RST"): Promise<void> {
  const pool = serverPool();
  const work = tempDir("qmail-popup-hostile-");
  const log = join(work, "log");
  try {
    const server = await pool.start({ variant, subprogram: [PROG, "hold"], env: { HOSTILE_RECORD: join(work, "hold") }, logFile: log });
    const { client, pid } = await open(server);
    await client.send("USER bob\r\nPASS nope\r\n");
    await fileContent(join(work, `hold.${client.localPort}`));
    if (how === "EOF") client.end();
    else client.reset();
    expect(await finished(server, pid, client.localPort), "qmail-popup's status").toBe("1");
    expect(readFileSync(log, "latin1")).toBe(`qmail-popup: pid ${pid} Reject::AUTH::User P:POP3 S:127.0.0.1:unknown ?= 'bob'\n`);
    if (how === "EOF") {
      await client.untilClosed();
      expectReply(client.text, "+OK\r\n+OK \r\n", FAILED);
    }
  } finally {
    await pool.stopAll();
  }
}

/** A checkpassword that exits with a status above 128 (perl's die exits 255) has failed, not crashed. */
export async function highExitStatus(variant: Variant, status: number): Promise<void> {
  const pool = serverPool();
  try {
    const server = await pool.start({ variant, subprogram: [PROG, "exit", String(status)] });
    const refused = await talk(server, "USER alice\r\nPASS wonderland\r\n");
    expectReply(refused.text, "+OK\r\n+OK \r\n", FAILED);
    expect(refused.status).toBe("1");
  } finally {
    await pool.stopAll();
  }
}

/**
 * "The password is not kept around after it is written (overwrite the
 * buffer)": while the subprogram runs, qmail-popup's resident memory holds
 * no copy of it (read through /proc/PID/mem).
 */
export async function passwordNotInMemory(variant: Variant): Promise<void> {
  const pool = serverPool();
  const work = tempDir("qmail-popup-hostile-");
  try {
    const server = await pool.start({ variant, subprogram: [PROG, "hold"], env: { HOSTILE_RECORD: join(work, "hold") } });
    const password = "pw-" + randomBytes(12).toString("hex");
    const { client, pid } = await open(server);
    await client.send(`USER alice\r\nPASS ${password}\r\n`);
    await fileContent(join(work, `hold.${client.localPort}`));
    const counts = memoryCounts(pid, [password, `PASS ${password}`]);
    client.end();
    expect(await finished(server, pid, client.localPort)).toBe("1");
    expect(counts, `copies of the password in the memory of qmail-popup (pid ${pid}) while its child runs`).toEqual({ [password]: 0, [`PASS ${password}`]: 0 });
  } finally {
    await pool.stopAll();
  }
}

/**
 * A refusing subprogram leaves the connection full (the client stopped
 * reading): the reply cannot be written, and that write is bounded by
 * POP3TIMEOUT like every other; the session ends, status 1, the Reject
 * line logged.
 */
export async function replyToStuckClient(variant: Variant): Promise<void> {
  const pool = serverPool();
  const work = tempDir("qmail-popup-hostile-");
  const log = join(work, "log");
  try {
    const server = await pool.start({ variant, subprogram: [PROG, "flood", "1"], env: { POP3TIMEOUT: String(POP3TIMEOUT), HOSTILE_RECORD: join(work, "flood") }, logFile: log });
    const { client, pid } = await open(server);
    client.socket.pause();
    await client.send("USER bob\r\nPASS nope\r\n");
    await fileContent(join(work, `flood.${client.localPort}`));
    expect(await finished(server, pid, client.localPort, (POP3TIMEOUT + 6) * 1000)).toBe("1");
    expect(readFileSync(log, "latin1")).toBe(`qmail-popup: pid ${pid} Reject::AUTH::User P:POP3 S:127.0.0.1:unknown ?= 'bob'\n`);
    client.destroy();
  } finally {
    await pool.stopAll();
  }
}
