// The platform on Node's APIs (node:fs, node:child_process). Node runs it
// as is; Bun and Deno share its subprogram handling.
//
// Never process.stdin/stdout: they would put the shared socket into
// non-blocking mode, and the subprogram (qmail-pop3d) fails on that.

import { spawn } from "node:child_process";
import { fstatSync, read as fsRead, write as fsWrite } from "node:fs";
import { isInheritedDescriptor } from "./descriptors.ts";
import type { DescriptorStat, Platform, SubprogramRequest, SubprogramResult } from "./types.ts";

/** A descriptor left non-blocking by our parent answers EAGAIN: look again after this long. */
const RETRY_MS = 10;

function isAgain(error: NodeJS.ErrnoException | null): boolean {
  return error?.code === "EAGAIN" || error?.code === "EWOULDBLOCK";
}

/**
 * A read on the thread pool, so that a timer can end the wait: a blocking
 * readSync could not be interrupted. At the deadline the session exits,
 * which abandons the pending read.
 */
export function readWithDeadline(fd: number, buffer: Uint8Array, deadlineMs: number): Promise<number | "timeout"> {
  return new Promise((resolve) => {
    const attempt = () => {
      const timer = setTimeout(() => resolve("timeout"), Math.max(0, deadlineMs - Date.now()));
      fsRead(fd, buffer, 0, buffer.length, null, (error, bytesRead) => {
        clearTimeout(timer);
        if (isAgain(error)) {
          if (Date.now() >= deadlineMs) resolve("timeout");
          else setTimeout(attempt, RETRY_MS);
        } else resolve(error ? 0 : bytesRead);
      });
    };
    attempt();
  });
}

export function writeWithDeadline(fd: number, bytes: Uint8Array, deadlineMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    let offset = 0;
    const attempt = () => {
      if (offset >= bytes.length) return resolve(true);
      const timer = setTimeout(() => resolve(false), Math.max(0, deadlineMs - Date.now()));
      fsWrite(fd, bytes, offset, bytes.length - offset, null, (error, written) => {
        clearTimeout(timer);
        if (isAgain(error)) {
          if (Date.now() >= deadlineMs) resolve(false);
          else setTimeout(attempt, RETRY_MS);
        } else if (error) resolve(false);
        else {
          offset += written;
          attempt();
        }
      });
    };
    attempt();
  });
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
export function runSubprogram(request: SubprogramRequest, passFdsByNumber = true): Promise<SubprogramResult> {
  return new Promise((resolve) => {
    const stdio: (number | "pipe" | "ignore")[] = [request.input, request.output, request.output, "pipe"];
    for (const fd of passFdsByNumber ? request.passFds : []) {
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
    const credentialsPipe = child.stdio[3] as import("node:net").Socket | null;
    if (credentialsPipe === null) return;
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
    // One byte at a time: Node cannot look ahead for the LF without consuming.
    readLinePart: (fd, buffer, deadlineMs) => readWithDeadline(fd, buffer.subarray(0, 1), deadlineMs),
    write: writeWithDeadline,
    inheritedFd: (fd) => isInheritedDescriptor(fd, statDescriptor),
    runSubprogram: (request) => runSubprogram(request),
    exit: (status) => process.exit(status),
  };
}
