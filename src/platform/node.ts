// The platform on Node's APIs (node:fs). Node runs it as is; Bun shares
// its greeting write and its control socket reads.
//
// Never process.stdin/stdout: they would read ahead of the line (what
// follows PASS belongs to the login program) and leave the shared socket
// non-blocking, which qmail-pop3d does not survive.

import { readSync, writeSync } from "node:fs";
import { decimalOf } from "../core/decimal.ts";
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
type Handle = { setBlocking?(blocking: boolean): number };
const nonBlockingHandles = new Map<number, Handle | undefined>();
async function makeNonBlocking(fd: number): Promise<Handle | undefined> {
  if (nonBlockingHandles.has(fd)) {
    const handle = nonBlockingHandles.get(fd);
    handle?.setBlocking?.(false);
    return handle;
  }
  // Imported when first needed: loading node:net costs the greeting a millisecond or two.
  const { Socket } = await import("node:net");
  let handle: Handle | undefined;
  try {
    handle = (new Socket({ fd, readable: false, writable: false, manualStart: true } as never) as unknown as { _handle?: Handle })._handle;
  } catch {
    // A regular file (its reads and writes never block) or a terminal (a person typing): used as it is.
  }
  nonBlockingHandles.set(fd, handle);
  return handle;
}

/** The descriptors the session reads, and fd 1 (fd 0's socket): non-blocking until the runtime ends. */
const readDescriptors = new Set<number>([1]);

/** Calls attempt until it is not EAGAIN or the deadline passes ("timeout"). 0 on any other error. */
async function retryUntil(deadlineMs: number, attempt: () => number): Promise<number | "timeout"> {
  for (let backoff = 1; ; backoff = Math.min(backoff * 2, MAX_BACKOFF_MS)) {
    // The deadline first: a client whose bytes are always there is cut at it as one who sends nothing is.
    if (Date.now() >= deadlineMs) return "timeout";
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
  readDescriptors.add(fd);
  await makeNonBlocking(fd);
  return retryUntil(deadlineMs, () => readSync(fd, buffer, 0, 1, null));
}

async function readSome(fd: number, buffer: Uint8Array, deadlineMs: number): Promise<number | "timeout"> {
  if (buffer.length === 0) throw new RangeError("read into an empty buffer");
  readDescriptors.add(fd);
  await makeNonBlocking(fd);
  return retryUntil(deadlineMs, () => readSync(fd, buffer, 0, buffer.length, null));
}

/** The control socket is blocking and the front always answers: a plain read. */
export function readControl(fd: number, buffer: Uint8Array): number {
  if (buffer.length === 0) throw new RangeError("readControl into an empty buffer");
  try {
    return readSync(fd, buffer, 0, buffer.length, null);
  } catch {
    return 0;
  }
}

/** The control socket is blocking and the front always reads: plain writes. */
export function writeControl(fd: number, bytes: Uint8Array): boolean {
  try {
    for (let offset = 0; offset < bytes.length; ) offset += writeSync(fd, bytes, offset, bytes.length - offset);
    return true;
  } catch {
    return false;
  }
}

/**
 * Writes non-blocking, retrying until the deadline, as reads are polled: a
 * reader that stops (a client, a stuck logger on fd 2 or fd 5) cannot hold
 * the session. A descriptor the session does not read (fd 2, fd 5: one
 * open file with the launcher's logger and the login programs, blocking as
 * they expect) is non-blocking for each attempt only, not while we wait:
 * Node has no write that is non-blocking by itself, and cannot read the
 * flags to put back others.
 */
export async function writeAll(fd: number, bytes: Uint8Array, deadlineMs: number): Promise<boolean> {
  const handle = await makeNonBlocking(fd);
  const shared = !readDescriptors.has(fd);
  const attempt = (offset: number) => {
    handle?.setBlocking?.(false);
    try {
      return writeSync(fd, bytes, offset, bytes.length - offset);
    } finally {
      if (shared) handle?.setBlocking?.(true);
    }
  };
  if (shared) handle?.setBlocking?.(true);
  for (let offset = 0; offset < bytes.length; ) {
    const written = await retryUntil(deadlineMs, () => attempt(offset));
    if (written === "timeout" || written === 0) return false;
    offset += written;
  }
  return true;
}

/** prctl(PR_SET_DUMPABLE, 0): no core file, no ptrace by a process of the same user. */
const PR_SET_DUMPABLE = 4;

/**
 * Through node:ffi where this Node has it (26 and later, the SEA); Node 20
 * has no way to call prctl(2): there the front's RLIMIT_CORE 0 is what keeps
 * a core file from being written.
 */
function forbidDumps(): void {
  if (process.platform !== "linux") return;
  type Ffi = { dlopen(path: string, definitions: object): { functions: { prctl(...args: unknown[]): number } } };
  const ffi = (process as unknown as { getBuiltinModule?(name: string): Ffi | undefined }).getBuiltinModule?.("node:ffi");
  if (ffi === undefined) return;
  try {
    const { functions } = ffi.dlopen("libc.so.6", { prctl: { arguments: ["i32", "i64", "i64", "i64", "i64"], return: "i32" } });
    functions.prctl(PR_SET_DUMPABLE, 0n, 0n, 0n, 0n);
  } catch {
    // No glibc (a musl host): the front's RLIMIT_CORE 0 still holds.
  }
}

/**
 * Node cannot call prctl(2) everywhere (Node 20): it looks for its parent
 * once a second instead. Its reads and writes wait on timers, never in a
 * blocking call, so the check runs while a session waits for its client.
 */
function endWithFront(frontPid: number): void {
  const check = () => {
    if (process.ppid !== frontPid) process.exit(1);
  };
  check();
  setInterval(check, 1000).unref();
}

/** The control socket's number, as the front gave it: our only argument. */
export function controlFdOf(argument: string | undefined): number | undefined {
  return decimalOf(argument, 9);
}

export function nodePlatform(): Platform {
  return {
    controlFd: controlFdOf(process.argv[2]),
    unixSeconds: () => Math.floor(Date.now() / 1000),
    nowMs: () => Date.now(),
    readLinePart: readOneByte,
    read: readSome,
    readControl,
    writeControl,
    // The greeting, before anything is read, a plain write as on Bun: the first
    // bytes on a connection cannot find it full, and node:net is loaded after it.
    write: (fd, bytes, deadlineMs) => (fd === 1 && readDescriptors.size === 1 ? Promise.resolve(writeControl(fd, bytes)) : writeAll(fd, bytes, deadlineMs)),
    forbidDumps,
    endWithFront,
    exit: (status) => process.exit(status),
  };
}
