// The platform on Node's APIs (node:fs). Node runs it as is; Bun shares
// its greeting write and its control socket reads.
//
// Never process.stdin/stdout: they would read ahead of the line (what
// follows PASS belongs to the login program) and leave the shared socket
// non-blocking, which qmail-pop3d does not survive.

import { readSync, writeSync } from "node:fs";
import type { Platform } from "./types.ts";

/** Waits between attempts on a descriptor that has nothing yet: from 1 ms, doubling to this. */
const MAX_BACKOFF_MS = 50;

const sleep = (ms: number) => new Promise((wake) => setTimeout(wake, ms));

function isAgain(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === "EAGAIN" || code === "EWOULDBLOCK";
}

/**
 * Node cannot wait on a descriptor with a timeout: a blocking read on the
 * thread pool cannot be interrupted, and process.exit then waits for it
 * forever. So a network descriptor is made non-blocking (through a
 * net.Socket that never reads) and polled, backing off while idle. The
 * front makes fds 0-2 blocking again for the login program.
 */
const madeNonBlocking = new Set<number>();
async function makeNonBlocking(fd: number): Promise<void> {
  if (madeNonBlocking.has(fd)) return;
  madeNonBlocking.add(fd);
  // Imported when first needed: loading node:net costs the greeting a millisecond or two.
  const { Socket } = await import("node:net");
  try {
    new Socket({ fd, readable: false, writable: false, manualStart: true } as never);
  } catch {
    // A regular file (its reads never block) or a terminal (a person typing): polled as it is.
  }
}

/** Calls attempt until it is not EAGAIN or the deadline passes ("timeout"). 0 on any other error. */
async function retryUntil(deadlineMs: number, attempt: () => number): Promise<number | "timeout"> {
  for (let backoff = 1; ; backoff = Math.min(backoff * 2, MAX_BACKOFF_MS)) {
    try {
      return attempt();
    } catch (error) {
      if (!isAgain(error)) return 0;
    }
    const remaining = deadlineMs - Date.now();
    if (remaining <= 0) return "timeout";
    await sleep(Math.min(backoff, remaining));
  }
}

/** One byte at a time: Node cannot look ahead for the LF without consuming it. */
async function readOneByte(fd: number, buffer: Uint8Array, deadlineMs: number): Promise<number | "timeout"> {
  if (buffer.length === 0) throw new RangeError("readLinePart into an empty buffer");
  await makeNonBlocking(fd);
  return retryUntil(deadlineMs, () => readSync(fd, buffer, 0, 1, null));
}

async function readSome(fd: number, buffer: Uint8Array, deadlineMs: number): Promise<number | "timeout"> {
  if (buffer.length === 0) throw new RangeError("read into an empty buffer");
  await makeNonBlocking(fd);
  return retryUntil(deadlineMs, () => readSync(fd, buffer, 0, buffer.length, null));
}

/** The control socket is blocking and the front always answers: a plain read. */
export function readControl(fd: number, buffer: Uint8Array): number {
  try {
    return readSync(fd, buffer, 0, buffer.length, null);
  } catch {
    return 0;
  }
}

export async function writeAll(fd: number, bytes: Uint8Array, deadlineMs: number): Promise<boolean> {
  for (let offset = 0; offset < bytes.length; ) {
    const written = await retryUntil(deadlineMs, () => writeSync(fd, bytes, offset, bytes.length - offset));
    if (written === "timeout" || written === 0) return false;
    offset += written;
  }
  return true;
}

/** The control socket's number, as the front gave it: our only argument. */
export function controlFdOf(argument: string | undefined): number | undefined {
  return argument !== undefined && /^[0-9]{1,9}$/.test(argument) ? Number(argument) : undefined;
}

export function nodePlatform(): Platform {
  return {
    controlFd: controlFdOf(process.argv[2]),
    unixSeconds: () => Math.floor(Date.now() / 1000),
    nowMs: () => Date.now(),
    readLinePart: readOneByte,
    read: readSome,
    readControl,
    write: writeAll,
    // Node has no way to call prctl(2): the front starts it with RLIMIT_CORE 0.
    forbidDumps: () => {},
    exit: (status) => process.exit(status),
  };
}
