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

type CType = "int" | "size" | "buffer" | "pointer" | "void";

/** The libc functions bound, in a neutral notation that each runtime's FFI translates. */
export const LIBC_SIGNATURES: Readonly<Record<keyof ExecLibc, readonly [readonly CType[], CType]>> = {
  poll: [["buffer", "size", "int"], "int"],
  read: [["int", "buffer", "size"], "int"],
  write: [["int", "buffer", "size"], "int"],
  recv: [["int", "buffer", "size", "int"], "int"],
  fcntl: [["int", "int", "int"], "int"],
  pipe: [["buffer"], "int"],
  close: [["int"], "int"],
  execve: [["buffer", "buffer", "buffer"], "int"],
  signal: [["int", "pointer"], "pointer"],
  dup2: [["int", "int"], "int"],
  _exit: [["int"], "void"],
};

/** LIBC_SIGNATURES in one runtime's type names. */
export function translateSignatures<Entry>(
  names: Readonly<Record<CType, string>>,
  entry: (parameters: string[], result: string) => Entry,
): Record<string, Entry> {
  const symbols: Record<string, Entry> = {};
  for (const [name, [parameters, result]] of Object.entries(LIBC_SIGNATURES)) {
    symbols[name] = entry(parameters.map((type) => names[type]), names[result]);
  }
  return symbols;
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
      // What was looked at but not taken (the next line: a password, perhaps) is not kept.
      if (peeked > 0) buffer.fill(0, Math.max(got, 0), peeked);
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

/** What becoming the waiter needs beyond descriptor I/O. */
export interface ExecLibc extends Libc {
  pipe(fds: Uint8Array): number;
  close(fd: number): number;
  execve(path: Uint8Array, argv: BigUint64Array, envp: BigUint64Array): number;
  /** signal(2) with SIG_DFL (0) or SIG_IGN (1). */
  signal(signal: number, handler: number): number;
  dup2(from: number, to: number): number;
  _exit(status: number): never;
}

const F_SETFD = 2;
const F_GETFL = 3;
const F_SETFL = 4;
const O_NONBLOCK: Readonly<Record<string, number>> = { linux: 0x800, freebsd: 0x4 };
const SIGPIPE = 13;
const SIGXFSZ = 25;
const SIG_DFL = 0;
const SIG_IGN = 1;
const encoder = new TextEncoder();

/** The descriptors the waiter script gets; dash names only 0-9. */
export interface WaiterDescriptors {
  readonly input: number;
  readonly output: number;
  readonly credentials: Uint8Array;
  readonly logFd: number | undefined;
}

/**
 * Puts the credentials in a pipe, makes the descriptors the waiter needs
 * survive exec (blocking, not close-on-exec), restores the signals the
 * runtime ignores (the subprogram must not inherit SIGPIPE ignored), and
 * execs /bin/sh with the plan made for that pipe's number. Returns only on
 * failure, with the reason; nothing is lost then: the caller runs the
 * subprogram itself.
 */
export function execIntoWaiter(
  libc: ExecLibc,
  os: string,
  addressOf: (buffer: Uint8Array | BigUint64Array) => bigint,
  descriptors: WaiterDescriptors,
  planFor: (credentialsFd: number) => { argv: readonly string[]; env: Readonly<Record<string, string>> },
): string {
  const { input, output, credentials, logFd } = descriptors;
  const oneDigit = (fd: number) => fd >= 0 && fd <= 9;
  if (![input, output, ...(logFd === undefined ? [] : [logFd])].every(oneDigit)) return "a descriptor above 9";
  const fds = new Uint8Array(8);
  if (libc.pipe(fds) !== 0) return "pipe failed";
  const view = new DataView(fds.buffer);
  let readEnd = view.getInt32(0, true);
  const writeEnd = view.getInt32(4, true);
  const reserved = new Set([0, 1, 2, 3, 5, input, output]);
  // Where the runtime holds every number below 10 (Deno does), one of its
  // own close-on-exec descriptors is replaced: exec would close it anyway.
  // Past that point a failed exec cannot hand back to the runtime.
  let pointOfNoReturn = false;
  if (!oneDigit(readEnd) || reserved.has(readEnd)) {
    let moved = -1;
    for (let candidate = 4; candidate <= 9 && moved < 0; candidate++) {
      if (reserved.has(candidate) || libc.fcntl(candidate, F_GETFD, 0) >= 0) continue;
      if (libc.dup2(readEnd, candidate) === candidate) moved = candidate;
    }
    for (let candidate = 9; candidate >= 4 && moved < 0; candidate--) {
      if (reserved.has(candidate) || (libc.fcntl(candidate, F_GETFD, 0) & FD_CLOEXEC) === 0) continue;
      if (libc.dup2(readEnd, candidate) === candidate) {
        moved = candidate;
        pointOfNoReturn = true;
      }
    }
    libc.close(readEnd);
    if (moved < 0) {
      libc.close(writeEnd);
      return "no descriptor below 10 to use";
    }
    readEnd = moved;
  }
  // At most a few kilobytes: the pipe takes them without blocking.
  let written = 0;
  while (written < credentials.length) {
    const n = libc.write(writeEnd, credentials.subarray(written), credentials.length - written);
    if (n <= 0) break;
    written += n;
  }
  libc.close(writeEnd);
  if (written < credentials.length) {
    libc.close(readEnd);
    return "writing the credentials failed";
  }
  for (const fd of [2, input, output, readEnd, ...(logFd === undefined ? [] : [logFd])]) libc.fcntl(fd, F_SETFD, 0);
  const nonBlocking = O_NONBLOCK[os] ?? 0;
  for (const fd of [input, output]) {
    const flags = libc.fcntl(fd, F_GETFL, 0);
    if (flags >= 0 && (flags & nonBlocking) !== 0) libc.fcntl(fd, F_SETFL, flags & ~nonBlocking);
  }
  const plan = planFor(readEnd);
  const keep: Uint8Array[] = [];
  const cString = (text: string) => {
    const bytes = encoder.encode(text + "\0");
    keep.push(bytes);
    return addressOf(bytes);
  };
  const pointers = (strings: readonly string[]) => BigUint64Array.from([...strings.map(cString), 0n]);
  const argv = pointers(plan.argv);
  const envp = pointers(Object.entries(plan.env).map(([name, value]) => `${name}=${value}`));
  libc.signal(SIGPIPE, SIG_DFL);
  libc.signal(SIGXFSZ, SIG_DFL);
  libc.execve(encoder.encode("/bin/sh\0"), argv, envp);
  if (pointOfNoReturn) {
    // The runtime lost a descriptor of its own: say so as a temporary failure and go.
    const reply = encoder.encode("-ERR [SYS/TEMP] authorization failed\r\n");
    libc.write(output, reply, reply.length);
    libc._exit(1);
  }
  // Still here: exec failed. Put things back and let the caller wait in-process.
  libc.signal(SIGPIPE, SIG_IGN);
  libc.signal(SIGXFSZ, SIG_IGN);
  libc.close(readEnd);
  void keep;
  return "execve /bin/sh failed";
}
