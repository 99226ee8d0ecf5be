// The libc calls a resident worker makes (Bun, Linux): accepting fronts,
// receiving their descriptors, non-blocking I/O, epoll. Every call returns
// its result, or -errno when it failed, so that no caller reads a stale
// errno after another call.

import { dlopen, ptr, read } from "bun:ffi";
import { LIBC_CANDIDATES } from "../platform/libc.ts";

const SYMBOLS = {
  accept4: { args: ["i32", "ptr", "ptr", "i32"], returns: "i32" },
  recvmsg: { args: ["i32", "ptr", "i32"], returns: "i64" },
  recv: { args: ["i32", "ptr", "u64", "i32"], returns: "i64" },
  read: { args: ["i32", "ptr", "u64"], returns: "i64" },
  write: { args: ["i32", "ptr", "u64"], returns: "i64" },
  preadv2: { args: ["i32", "ptr", "i32", "i64", "i32"], returns: "i64" },
  pwritev2: { args: ["i32", "ptr", "i32", "i64", "i32"], returns: "i64" },
  close: { args: ["i32"], returns: "i32" },
  fcntl: { args: ["i32", "i32", "i64"], returns: "i32" },
  getsockopt: { args: ["i32", "i32", "i32", "ptr", "ptr"], returns: "i32" },
  epoll_create1: { args: ["i32"], returns: "i32" },
  epoll_ctl: { args: ["i32", "i32", "i32", "ptr"], returns: "i32" },
  prctl: { args: ["i32", "i64", "i64", "i64", "i64"], returns: "i32" },
  getppid: { args: [], returns: "i32" },
  __errno_location: { args: [], returns: "ptr" },
} as const;

export const EAGAIN = 11;
export const EINTR = 4;
export const ENOTSOCK = 88;
export const EEXIST = 17;
export const ENOENT = 2;
export const MSG_PEEK = 0x2;
export const MSG_DONTWAIT = 0x40;
const EOPNOTSUPP = 95;
/** preadv2/pwritev2: this one call does not block, whatever the descriptor's flags. */
const RWF_NOWAIT = 0x8;
const MSG_CTRUNC = 0x8;
const MSG_CMSG_CLOEXEC = 0x40000000;
const SOCK_NONBLOCK = 0x800;
const SOCK_CLOEXEC = 0x80000;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const SO_PEERCRED = 17;
const F_GETFL = 3;
const F_SETFL = 4;
const O_NONBLOCK = 0x800;

export interface Received {
  /** Bytes received, or -errno; 0 at end of file. */
  length: number;
  /** Descriptors that came with them (close-on-exec). */
  descriptors: number[];
  /** The control data was cut short: descriptors may have been lost. */
  truncated: boolean;
}

export interface ResidentLibc {
  libcName: string;
  accept(fd: number): number;
  /** The peer's uid (SO_PEERCRED), or -1. */
  peerUid(fd: number): number;
  receive(fd: number, buffer: Uint8Array): Received;
  recv(fd: number, buffer: Uint8Array, length: number, flags: number): number;
  read(fd: number, buffer: Uint8Array, length: number): number;
  write(fd: number, bytes: Uint8Array): number;
  close(fd: number): void;
  setNonBlocking(fd: number): void;
  /**
   * A read and a write that cannot block, leaving the descriptor's flags
   * alone (RWF_NOWAIT): a session's descriptors are open files shared with
   * the front, tcpserver, the login programs and multilog. Where the kernel
   * cannot (a FIFO, a regular file), non-blocking for that one call.
   */
  readNow(fd: number, buffer: Uint8Array, length: number): number;
  writeNow(fd: number, bytes: Uint8Array): number;
  epollCreate(): number;
  epollCtl(epfd: number, op: number, fd: number, event: Uint8Array): number;
  forbidDumps(): void;
  /** Killed when the resident ends (PR_SET_PDEATHSIG); false if it already has (our parent is not it). */
  endWithParent(parent: number): boolean;
}

function checkedLength(buffer: Uint8Array, length: number): number {
  if (!Number.isInteger(length) || length < 0 || length > buffer.byteLength) throw new RangeError(`libc call of ${length} bytes on a buffer of ${buffer.byteLength}`);
  return length;
}

export function residentLibc(): ResidentLibc {
  let opened: { symbols: Record<keyof typeof SYMBOLS, (...args: never[]) => number | bigint> } | undefined;
  let libcName = "";
  for (const name of LIBC_CANDIDATES.linux ?? []) {
    try {
      opened = dlopen(name, SYMBOLS as never) as never;
      libcName = name;
      break;
    } catch {
      // Not this name.
    }
  }
  if (opened === undefined) throw new Error("resident mode needs the C library (Linux)");
  const f = opened.symbols as unknown as Record<keyof typeof SYMBOLS, (...args: unknown[]) => number | bigint>;
  const errno = () => read.i32(f.__errno_location() as never, 0);
  const result = (r: number | bigint) => (Number(r) < 0 ? -errno() : Number(r));

  // recvmsg's structures, made once (no allocation per call): msghdr (56 bytes), one iovec, room for SCM_RIGHTS of 16 descriptors.
  const header = new Uint8Array(56);
  const headerView = new DataView(header.buffer);
  const iovec = new Uint8Array(16);
  const iovecView = new DataView(iovec.buffer);
  const control = new Uint8Array(16 + 16 * 4);
  const controlView = new DataView(control.buffer);
  let iovecBuffer: Uint8Array | undefined;
  header.fill(0);
  headerView.setBigUint64(16, BigInt(ptr(iovec)), true);
  headerView.setBigUint64(24, 1n, true);
  headerView.setBigUint64(32, BigInt(ptr(control)), true);
  // One iovec for preadv2/pwritev2.
  const single = new Uint8Array(16);
  const singleView = new DataView(single.buffer);
  const once = (call: (typeof f)["preadv2"], plain: (typeof f)["read"], fd: number, buffer: Uint8Array, length: number) => {
    singleView.setBigUint64(0, BigInt(ptr(buffer)), true);
    singleView.setBigUint64(8, BigInt(length), true);
    const done = result(call(fd, single, 1, -1, RWF_NOWAIT));
    if (done !== -EOPNOTSUPP) return done;
    // A FIFO or a regular file: non-blocking for this one call, the flags put back.
    const flags = result(f.fcntl(fd, F_GETFL, 0));
    const toggled = flags >= 0 && !(flags & O_NONBLOCK);
    if (toggled) f.fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    const plainly = result(plain(fd, buffer, length));
    if (toggled) f.fcntl(fd, F_SETFL, flags);
    return plainly;
  };
  const credentials = new Uint8Array(12);
  const credentialsView = new DataView(credentials.buffer);
  const credentialsLength = new Uint8Array(4);
  const credentialsLengthView = new DataView(credentialsLength.buffer);

  return {
    libcName,
    accept: (fd) => result(f.accept4(fd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC)),
    peerUid(fd) {
      credentialsLengthView.setUint32(0, 12, true);
      if (result(f.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, credentials, credentialsLength)) < 0) return -1;
      return credentialsView.getUint32(4, true);
    },
    receive(fd, buffer) {
      // The same buffer as last time (the worker has one): its iovec stands.
      if (buffer !== iovecBuffer) {
        iovecView.setBigUint64(0, BigInt(ptr(buffer)), true);
        iovecView.setBigUint64(8, BigInt(buffer.byteLength), true);
        iovecBuffer = buffer;
      }
      control.fill(0);
      headerView.setBigUint64(40, BigInt(control.byteLength), true);
      headerView.setInt32(48, 0, true);
      const length = result(f.recvmsg(fd, header, MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
      const descriptors: number[] = [];
      const controlLength = Number(headerView.getBigUint64(40, true));
      // One cmsghdr at most: cmsg_len (8), level (4), type (4), the descriptors.
      if (length >= 0 && controlLength >= 16) {
        const cmsgLength = Number(controlView.getBigUint64(0, true));
        if (controlView.getInt32(8, true) === SOL_SOCKET && controlView.getInt32(12, true) === SCM_RIGHTS)
          for (let at = 16; at + 4 <= Math.min(cmsgLength, control.byteLength); at += 4) descriptors.push(controlView.getInt32(at, true));
      }
      return { length, descriptors, truncated: length >= 0 && (headerView.getInt32(48, true) & MSG_CTRUNC) !== 0 };
    },
    recv: (fd, buffer, length, flags) => result(f.recv(fd, buffer, checkedLength(buffer, length), flags)),
    read: (fd, buffer, length) => result(f.read(fd, buffer, checkedLength(buffer, length))),
    write: (fd, bytes) => result(f.write(fd, bytes, bytes.byteLength)),
    readNow: (fd, buffer, length) => once(f.preadv2, f.read, fd, buffer, checkedLength(buffer, length)),
    writeNow: (fd, bytes) => once(f.pwritev2, f.write, fd, bytes, bytes.byteLength),
    close: (fd) => void f.close(fd),
    setNonBlocking(fd) {
      const flags = result(f.fcntl(fd, F_GETFL, 0));
      if (flags >= 0 && !(flags & O_NONBLOCK)) f.fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    },
    epollCreate: () => result(f.epoll_create1(SOCK_CLOEXEC)),
    epollCtl: (epfd, op, fd, event) => result(f.epoll_ctl(epfd, op, fd, event)),
    forbidDumps: () => void f.prctl(4, 0, 0, 0, 0),
    endWithParent(parent) {
      f.prctl(1, 9, 0, 0, 0);
      return f.getppid() === parent;
    },
  };
}
