// The platform on Node's APIs (node:fs, node:child_process). Node runs it
// as is; Bun and Deno share its subprogram handling.
//
// Never process.stdin/stdout: they would read ahead of the line (what
// follows PASS belongs to the subprogram) and leave the shared socket
// non-blocking, which qmail-pop3d does not survive.

import type { Socket } from "node:net";
import { fstatSync, readSync, writeSync } from "node:fs";
import { isInheritedDescriptor } from "./descriptors.ts";
import type { DescriptorStat, Platform, SubprogramRequest, SubprogramResult } from "./types.ts";

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
 * forever. So the network descriptor is made non-blocking (through a
 * net.Socket that never reads) and polled, backing off while idle. The
 * subprogram still gets it blocking: libuv clears O_NONBLOCK on a child's
 * fds 0-2, and that is the same open file.
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
export async function readOneByte(fd: number, buffer: Uint8Array, deadlineMs: number): Promise<number | "timeout"> {
  await makeNonBlocking(fd);
  return retryUntil(deadlineMs, () => readSync(fd, buffer, 0, 1, null));
}

export async function writeAll(fd: number, bytes: Uint8Array, deadlineMs: number): Promise<boolean> {
  for (let offset = 0; offset < bytes.length; ) {
    const written = await retryUntil(deadlineMs, () => writeSync(fd, bytes, offset, bytes.length - offset));
    if (written === "timeout" || written === 0) return false;
    offset += written;
  }
  return true;
}

export function statDescriptor(fd: number): DescriptorStat | undefined {
  try {
    const stat = fstatSync(fd);
    const kind = stat.isFile()
      ? "file"
      : stat.isFIFO()
        ? "fifo"
        : stat.isSocket()
          ? "socket"
          : stat.isCharacterDevice()
            ? "chardev"
            : "other";
    return { kind, dev: stat.dev, ino: stat.ino };
  } catch {
    return undefined;
  }
}

/**
 * Runs the subprogram with fd 0 = input, fds 1 and 2 = output, fd 3 = the
 * credentials (a socket pair: Node has no plain pipe to offer) and the
 * passed descriptors at their own numbers. Every other descriptor is
 * close-on-exec in Node and Bun, so nothing of the runtime's leaks.
 */
export async function runSubprogram(
  request: SubprogramRequest,
  stdio: (number | "pipe" | "ignore" | "inherit")[] = [request.input, request.output, request.output, "pipe"],
): Promise<SubprogramResult> {
  // Imported when first needed, after the greeting.
  const { spawn } = await import("node:child_process");
  return new Promise((resolve) => {
    for (const fd of request.passFds) {
      while (stdio.length < fd) stdio.push("ignore");
      stdio[fd] = fd;
    }
    const [file, ...args] = request.argv as [string, ...string[]];
    let child;
    try {
      child = spawn(file, args, { stdio, env: { ...request.env } });
    } catch (error) {
      request.credentials.fill(0);
      return resolve({ kind: "failed", reason: (error as Error).message });
    }
    child.on("error", (error) => {
      request.credentials.fill(0);
      resolve({ kind: "failed", reason: error.message });
    });
    child.on("exit", (code, signal) => {
      resolve(signal !== null ? { kind: "signaled" } : { kind: "exited", code: code ?? 1 });
    });
    const credentialsPipe = child.stdio[3] as Socket | null | undefined;
    if (!credentialsPipe) return;
    // A subprogram that closes fd 3 unread is its own business: its exit status tells.
    credentialsPipe.on("error", () => {});
    credentialsPipe.end(request.credentials, () => request.credentials.fill(0));
  });
}

export function nodePlatform(): Platform {
  return {
    pid: process.pid,
    args: process.argv.slice(2),
    env: process.env,
    unixSeconds: () => Math.floor(Date.now() / 1000),
    nowMs: () => Date.now(),
    readLinePart: readOneByte,
    write: writeAll,
    inheritedFd: (fd) => isInheritedDescriptor(fd, statDescriptor),
    runSubprogram: (request) => runSubprogram(request),
    exit: (status) => process.exit(status),
  };
}
