// Descriptor I/O through libc itself (poll, recv, read, write, pwritev2, fcntl, prctl), for
// the runtimes that can call it: Bun (bun:ffi) and Deno (Deno.dlopen).
// poll(2) gives the idle timeout without a thread; recv(MSG_PEEK) lets a
// whole line be taken in one read without consuming a byte past its LF.
//
// Every call that takes a buffer goes through `checked`: the length given
// to libc is asserted against the buffer's own, so no bug above can make
// libc write past a JavaScript array.

import type { Platform } from "./types.ts";

/** The libc calls we bind, as the runtime's FFI gives them. Buffers are passed by pointer. */
export interface Libc {
  poll(fds: Uint8Array, count: number, timeoutMs: number): number;
  read(fd: number, buffer: Uint8Array, length: number): number;
  write(fd: number, buffer: Uint8Array, length: number): number;
  recv(fd: number, buffer: Uint8Array, length: number, flags: number): number;
  fcntl(fd: number, command: number, argument: number): number;
  prctl(option: number, argument: number, unused3: number, unused4: number, unused5: number): number;
  getppid(): number;
  /** Linux's own (absent elsewhere): a write that may be made non-blocking by its flags alone. */
  pwritev2?(fd: number, iovec: Uint8Array, count: number, offset: number, flags: number): number;
  /** Not libc's: where a buffer's bytes are, for an iovec (the runtime's FFI says). */
  addressOf?(buffer: Uint8Array): bigint;
}

type CType = "int" | "size" | "buffer" | "long";

/** The libc functions bound, in a neutral notation that each runtime's FFI translates. */
export const LIBC_SIGNATURES: Readonly<Record<Exclude<keyof Libc, "addressOf">, readonly [readonly CType[], CType]>> = {
  poll: [["buffer", "size", "int"], "int"],
  read: [["int", "buffer", "size"], "int"],
  write: [["int", "buffer", "size"], "int"],
  recv: [["int", "buffer", "size", "int"], "int"],
  fcntl: [["int", "int", "int"], "int"],
  prctl: [["int", "long", "long", "long", "long"], "int"],
  getppid: [[], "int"],
  pwritev2: [["int", "buffer", "int", "long", "int"], "int"],
};

/** LIBC_SIGNATURES in one runtime's type names, for this OS (prctl and pwritev2 are Linux's own). */
export function translateSignatures<Entry>(
  os: string,
  names: Readonly<Record<CType, string>>,
  entry: (parameters: string[], result: string) => Entry,
): Record<string, Entry> {
  const symbols: Record<string, Entry> = {};
  for (const [name, [parameters, result]] of Object.entries(LIBC_SIGNATURES)) {
    if ((name === "prctl" || name === "pwritev2") && os !== "linux") continue;
    symbols[name] = entry(parameters.map((type) => names[type]), names[result]);
  }
  return symbols;
}

/** The shared object to open, per OS; musl's name varies with the machine. */
export const LIBC_CANDIDATES: Readonly<Record<string, readonly string[]>> = {
  linux: ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1", "libc.so"],
  freebsd: ["libc.so.7"],
};

/** Refuses a length that does not fit the buffer it is for. */
export function checkedLength(buffer: Uint8Array, length: number): number {
  if (!Number.isInteger(length) || length < 0 || length > buffer.byteLength) {
    throw new RangeError(`libc call of ${length} bytes on a buffer of ${buffer.byteLength}`);
  }
  return length;
}

/** The libc calls with every buffer length checked against its buffer. */
export function checked(libc: Libc): Libc {
  return {
    poll: (fds, count, timeoutMs) => libc.poll(fds, checkedLength(fds, count * 8) / 8, timeoutMs),
    read: (fd, buffer, length) => libc.read(fd, buffer, checkedLength(buffer, length)),
    write: (fd, buffer, length) => libc.write(fd, buffer, checkedLength(buffer, length)),
    recv: (fd, buffer, length, flags) => libc.recv(fd, buffer, checkedLength(buffer, length), flags),
    fcntl: libc.fcntl,
    prctl: libc.prctl,
    getppid: libc.getppid,
    pwritev2: libc.pwritev2 && ((fd, iovec, count, offset, flags) => libc.pwritev2!(fd, iovec, checkedLength(iovec, count * 16) / 16, offset, flags)),
    addressOf: libc.addressOf,
  };
}

// Values shared by Linux and FreeBSD.
const POLLIN = 0x1;
const POLLOUT = 0x4;
const MSG_PEEK = 0x2;
const LF = 0x0a;
/** prctl(PR_SET_DUMPABLE, 0): no core file, no ptrace by a process of the same user. */
const PR_SET_DUMPABLE = 4;
/** prctl(PR_SET_PDEATHSIG, SIGKILL): killed when our parent, the front, ends. */
const PR_SET_PDEATHSIG = 1;
const SIGKILL = 9;
const POLLERR = 0x8;
const POLLNVAL = 0x20;
const F_GETFL = 3;
const F_SETFL = 4;
/** O_NONBLOCK: Linux's on every architecture we build for, and FreeBSD's. */
const O_NONBLOCK: Readonly<Record<string, number>> = { linux: 0o4000, freebsd: 0x4 };
/** poll(2) failing this many times in a row (EINTR is the only expected cause) ends the wait. */
const POLL_RETRIES = 100;
/** pwritev2(RWF_NOWAIT): this one write does not block, whatever the descriptor's flags (Linux: sockets and pipes, on the kernels that honour it there). */
const RWF_NOWAIT = 0x8;
/** write(2) failing this many times in a row though poll(2) said the descriptor was ready ends the write. */
const WRITE_RETRIES = 10;
/** poll(2) takes an int of milliseconds: a longer wait is cut to this, and waited again. */
export const POLL_TIMEOUT_LIMIT_MS = 2 ** 31 - 1;

export type LibcDescriptorOps = Pick<Platform, "readLinePart" | "read" | "readControl" | "writeControl" | "write" | "forbidDumps" | "endWithFront">;

export function libcDescriptorOps(unchecked: Libc, os: string, nowMs: () => number): LibcDescriptorOps {
  const libc = checked(unchecked);
  const pollfd = new Uint8Array(8);
  const pollView = new DataView(pollfd.buffer);
  const iovec = new Uint8Array(16);
  const iovecView = new DataView(iovec.buffer);

  /**
   * One write that cannot block. Where the kernel can, by pwritev2's flag
   * alone: fd 2 and fd 5 are open files shared with the launcher's logger
   * and the login program, whose own writes must not find them
   * non-blocking. Elsewhere (a FIFO, a regular file, an older kernel, FreeBSD),
   * non-blocking for this write only, the flags put back after it.
   */
  function writeNow(fd: number, bytes: Uint8Array): number {
    if (libc.pwritev2 !== undefined && libc.addressOf !== undefined) {
      iovecView.setBigUint64(0, libc.addressOf(bytes), true);
      iovecView.setBigUint64(8, BigInt(bytes.length), true);
      const written = libc.pwritev2(fd, iovec, 1, -1, RWF_NOWAIT);
      if (written >= 0) return written;
    }
    const flags = libc.fcntl(fd, F_GETFL, 0);
    const nonBlocking = O_NONBLOCK[os] ?? 0;
    const toggled = flags >= 0 && nonBlocking !== 0 && (flags & nonBlocking) === 0;
    if (toggled) libc.fcntl(fd, F_SETFL, flags | nonBlocking);
    try {
      return libc.write(fd, bytes, bytes.length);
    } finally {
      if (toggled) libc.fcntl(fd, F_SETFL, flags);
    }
  }

  /**
   * Waits until fd is ready for events; false at the deadline, which is
   * checked first: a client whose bytes are always there is cut at the
   * deadline as one who sends nothing is.
   */
  function waitFor(fd: number, events: number, deadlineMs: number): boolean {
    for (let failures = 0; failures < POLL_RETRIES; ) {
      const remaining = Math.ceil(deadlineMs - nowMs());
      if (remaining <= 0) return false;
      pollView.setInt32(0, fd, true);
      pollView.setInt16(4, events, true);
      pollView.setInt16(6, 0, true);
      const ready = libc.poll(pollfd, 1, Math.min(remaining, POLL_TIMEOUT_LIMIT_MS));
      if (ready > 0) return (pollView.getInt16(6, true) & POLLNVAL) === 0;
      if (ready < 0) failures++;
    }
    return false;
  }

  return {
    async readLinePart(fd, buffer, deadlineMs) {
      if (buffer.length === 0) throw new RangeError("readLinePart into an empty buffer");
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
      // What was looked at but not taken (the next line: a password, perhaps) is not kept.
      if (peeked > 0) buffer.fill(0, Math.max(got, 0), peeked);
      return got < 0 ? 0 : got;
    },
    async read(fd, buffer, deadlineMs) {
      if (buffer.length === 0) throw new RangeError("read into an empty buffer");
      if (!waitFor(fd, POLLIN, deadlineMs)) return "timeout";
      return Math.max(libc.read(fd, buffer, buffer.length), 0);
    },
    readControl(fd, buffer) {
      if (buffer.length === 0) throw new RangeError("readControl into an empty buffer");
      return Math.max(libc.read(fd, buffer, buffer.length), 0);
    },
    writeControl(fd, bytes) {
      for (let offset = 0; offset < bytes.length; ) {
        const rest = bytes.subarray(offset);
        const written = libc.write(fd, rest, rest.length);
        if (written <= 0) return false;
        offset += written;
      }
      return true;
    },
    /** poll(2) says a pipe has room, not how much: a blocking write of more would wait for the reader, unbounded; so each write cannot block. */
    async write(fd, bytes, deadlineMs) {
      for (let offset = 0, refused = 0; offset < bytes.length; ) {
        if (!waitFor(fd, POLLOUT, deadlineMs)) return false;
        if ((pollView.getInt16(6, true) & POLLERR) !== 0) return false;
        const written = writeNow(fd, bytes.subarray(offset));
        // Full again (another writer took the room) or an error: poll(2) tells which, a few times at most.
        if (written < 0) {
          if (++refused >= WRITE_RETRIES) return false;
          continue;
        }
        refused = 0;
        offset += written;
      }
      return true;
    },
    forbidDumps() {
      // Elsewhere (FreeBSD) the front starts us with RLIMIT_CORE 0; ptrace of a root process needs root.
      if (os === "linux") libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    },
    endWithFront(frontPid) {
      // FreeBSD: the front's procctl(PROC_PDEATHSIG_CTL) is kept across exec; the check below still holds.
      if (os === "linux") libc.prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
      // Gone before the signal was armed: nobody would send it.
      if (libc.getppid() !== frontPid) throw new Error("the front is gone");
    },
  };
}
