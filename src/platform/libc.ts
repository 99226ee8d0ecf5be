// Descriptor I/O through libc itself (poll, recv, read, write, fcntl), for
// the runtimes that can call it: Bun (bun:ffi) and Deno (Deno.dlopen).
// poll(2) gives the idle timeout without a thread; recv(MSG_PEEK) lets a
// whole line be taken in one read without consuming a byte past its LF.

import type { Platform } from "./types.ts";

/** The libc calls we need, however the runtime binds them. Buffers are passed by pointer. */
export interface Libc {
  poll(fds: Uint8Array, count: number, timeoutMs: number): number;
  read(fd: number, buffer: Uint8Array, length: number): number;
  write(fd: number, buffer: Uint8Array, length: number): number;
  recv(fd: number, buffer: Uint8Array, length: number, flags: number): number;
  fcntl(fd: number, command: number, argument: number): number;
}

/** The shared object to open, per OS; musl's name varies with the machine. */
export const LIBC_CANDIDATES: Readonly<Record<string, readonly string[]>> = {
  linux: ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1", "libc.so"],
  freebsd: ["libc.so.7"],
};

// Values shared by Linux and FreeBSD.
const POLLIN = 0x1;
const POLLOUT = 0x4;
const MSG_PEEK = 0x2;
const F_GETFD = 1;
const FD_CLOEXEC = 1;
const LF = 0x0a;
/** poll(2) failing this many times in a row (EINTR is the only expected cause) ends the wait. */
const POLL_RETRIES = 100;

export type LibcDescriptorOps = Pick<Platform, "readLinePart" | "write"> & {
  /** Open, and not close-on-exec: handed to us by our parent (Deno leaves those flags alone). */
  openWithoutCloseOnExec(fd: number): boolean;
};

export function libcDescriptorOps(libc: Libc, nowMs: () => number): LibcDescriptorOps {
  const pollfd = new Uint8Array(8);
  const pollView = new DataView(pollfd.buffer);

  /** Waits until fd is ready for events; false at the deadline. */
  function waitFor(fd: number, events: number, deadlineMs: number): boolean {
    for (let failures = 0; failures < POLL_RETRIES; ) {
      const remaining = Math.max(0, Math.ceil(deadlineMs - nowMs()));
      pollView.setInt32(0, fd, true);
      pollView.setInt16(4, events, true);
      pollView.setInt16(6, 0, true);
      const ready = libc.poll(pollfd, 1, remaining);
      if (ready > 0) return true;
      if (ready === 0) return false;
      failures++;
    }
    return false;
  }

  return {
    async readLinePart(fd, buffer, deadlineMs) {
      if (!waitFor(fd, POLLIN, deadlineMs)) return "timeout";
      // On a socket, look at what has arrived and take up to its first LF;
      // elsewhere (a pipe: recv fails) take one byte.
      const peeked = libc.recv(fd, buffer, buffer.length, MSG_PEEK);
      let want = 1;
      if (peeked > 0) {
        const lf = buffer.subarray(0, peeked).indexOf(LF);
        want = lf < 0 ? peeked : lf + 1;
      }
      const got = libc.read(fd, buffer, want);
      return got < 0 ? 0 : got;
    },
    async write(fd, bytes, deadlineMs) {
      for (let offset = 0; offset < bytes.length; ) {
        if (!waitFor(fd, POLLOUT, deadlineMs)) return false;
        const written = libc.write(fd, bytes.subarray(offset), bytes.length - offset);
        if (written < 0) return false;
        offset += written;
      }
      return true;
    },
    openWithoutCloseOnExec(fd) {
      const flags = libc.fcntl(fd, F_GETFD, 0);
      return flags >= 0 && (flags & FD_CLOEXEC) === 0;
    },
  };
}
