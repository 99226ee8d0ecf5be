// A resident worker: `qmail-popup-runtime --resident LISTEN RETIRE RESTART
// LIMIT MEMORY RESIDENT`, started by `qmail-popup --resident` (src/front/resident.c) as the
// runtime's account. It accepts fronts (root only: SO_PEERCRED) on the
// inherited socket LISTEN, receives each connection's descriptors and the
// front's introduction, and runs serve() (src/serve.ts) for it on a
// platform of its own: many sessions on one event loop, none waiting for
// another, every wait through Readiness (no blocking call here). After
// RESTART sessions it closes RETIRE (its replacement starts), ends the
// sessions it has and exits; it holds at most LIMIT at once. It retires the
// same way once its resident set passes MEMORY MiB (0: no bound); the
// resident kills one that grows past twice that.

import { bytesOf, concatBytes } from "../core/bytes.ts";
import { decimalOf } from "../core/decimal.ts";
import type { Platform } from "../platform/types.ts";
import { RUNTIME_FAILURE_STATUS, serve } from "../serve.ts";
import { EAGAIN, EINTR, ENOTSOCK, MSG_DONTWAIT, MSG_PEEK, residentLibc, type ResidentLibc } from "./libc.ts";
import { HUNG_UP, READABLE, Readiness, WRITABLE } from "./readiness.ts";

const LF = 0x0a;
/** The front writes its introduction at once: one that takes longer is not a front's. */
const INTRODUCTION_SECONDS = 10;
const INTRODUCTION_LIMIT = 8 * 1024 * 1024;
/** What a worker at its session limit says to a front (resident_taken() in src/front/resident.c), and how long it lets a worker with room take that front first. */
const FULL = bytesOf("5:full=,");
const FULL_GRACE_MS = 50;
/** The descriptors a front hands over: 0, 1, 2, 5 and sslserver's three. */
const HANDED_LIMIT = 7;
/**
 * Where every hand-over is received, one for the worker: an 8 KiB typed
 * array made per session cost more than the rest of receiving it. Each
 * read is copied out (and wiped) before the next await.
 */
const receiving = new Uint8Array(8192);

/** platform.exit() in a session: ends that session, not the process. */
class SessionEnd {
  constructor(readonly status: number) {}
}

interface Handed {
  control: number;
  /** The front's descriptor numbers → ours. */
  descriptors: Map<number, number>;
  introduction: Uint8Array;
}

export async function residentWorker(args: readonly string[]): Promise<void> {
  const numbers = args.map((a) => decimalOf(a, 9) ?? NaN);
  const [listening = NaN, retire = NaN, restart = NaN, limit = NaN, memoryMiB = NaN, resident = NaN] = numbers;
  if (numbers.length !== 6 || !numbers.every((n) => Number.isInteger(n))) {
    process.stderr.write("qmail-popup: resident worker: usage: qmail-popup-runtime --resident LISTEN RETIRE RESTART LIMIT MEMORY RESIDENT\n");
    process.exit(RUNTIME_FAILURE_STATUS);
  }
  const libc = residentLibc();
  libc.forbidDumps();
  // The resident gone (killed), its workers go too: nobody would replace or bound them, and they would hold its socket.
  if (!libc.endWithParent(resident)) process.exit(0);
  libc.setNonBlocking(listening);
  const readiness = new Readiness(libc);
  let sessions = 0;
  let accepted = 0;
  let retired = false;
  let roomMade: (() => void) | undefined;
  let memoryLookedAt = 0;
  /** Stops accepting: its replacement starts (the resident sees RETIRE closed); the sessions it has end as they would. */
  const retireNow = () => {
    retired = true;
    readiness.forget(listening);
    libc.close(listening);
    libc.close(retire);
    roomMade?.();
  };
  const ended = () => {
    sessions--;
    // Memory grows with sessions: looked at as one ends, at most once a second.
    if (!retired && memoryMiB > 0 && Date.now() - memoryLookedAt >= 1000) {
      memoryLookedAt = Date.now();
      const used = process.memoryUsage.rss();
      if (used > memoryMiB * 1024 * 1024) {
        process.stderr.write(`qmail-popup: resident worker ${process.pid}: ${Math.ceil(used / 1048576)} MiB, over QMAIL_POPUP_RESIDENT_MEMORY=${memoryMiB}: retiring\n`);
        retireNow();
      }
    }
    roomMade?.();
    if (retired && sessions === 0) process.exit(0);
  };

  while (!retired) {
    if (sessions >= limit) {
      // Full: wait for room, or for a front in the queue.
      const roomOrFront = new Promise<void>((wake) => (roomMade = wake));
      void readiness.wait(listening, READABLE, Infinity).then((ready) => ready && roomMade?.());
      await roomOrFront;
      roomMade = undefined;
      // Retired meanwhile (its memory bound): the socket is closed, the queue its replacement's.
      if (retired || sessions < limit) continue;
      // A worker with room may take it first; if none has, this front is told we are full, and starts its own runtime.
      await new Promise((wake) => setTimeout(wake, FULL_GRACE_MS));
      if (retired || sessions < limit) continue;
      const fd = libc.accept(listening);
      if (fd >= 0) {
        if (libc.peerUid(fd) === 0) libc.write(fd, FULL);
        libc.close(fd);
      }
      continue;
    }
    const fd = libc.accept(listening);
    if (fd === -EAGAIN || fd === -EINTR) {
      await readiness.wait(listening, READABLE, Infinity);
      continue;
    }
    if (fd < 0) {
      // Out of descriptors, say: try again a little later rather than spin.
      process.stderr.write(`qmail-popup: resident worker: accept: errno ${-fd}\n`);
      await readiness.wait(listening, READABLE, Date.now() + 100);
      await new Promise((wake) => setTimeout(wake, 100));
      continue;
    }
    // Only root (a front) hands us connections; anyone else gets nothing.
    if (libc.peerUid(fd) !== 0) {
      libc.close(fd);
      continue;
    }
    accepted++;
    sessions++;
    if (accepted >= restart) retireNow();
    void runSession(libc, readiness, fd).finally(ended);
  }
}

async function runSession(libc: ResidentLibc, readiness: Readiness, control: number): Promise<void> {
  let handed: Handed | undefined;
  try {
    handed = await receive(libc, readiness, control);
  } catch {
    // Not a front's hand-over: nothing was said to a client.
  }
  if (handed === undefined) {
    readiness.forget(control);
    libc.close(control);
    return;
  }
  const session = sessionPlatform(libc, readiness, handed);
  try {
    await serve(session.platform);
  } catch (error) {
    if (!(error instanceof SessionEnd)) {
      const message = error instanceof Error ? error.message : String(error);
      await session.platform.write(2, bytesOf(`qmail-popup: fatal: ${message}\n`), Date.now() + 1000).catch(() => false);
    }
  }
  await session.close();
}

/**
 * The front's hand-over: `fds=N,...` with its descriptors (SCM_RIGHTS),
 * then its introduction up to `end` (or a version query). Anything else
 * and every descriptor received is closed.
 */
async function receive(libc: ResidentLibc, readiness: Readiness, control: number): Promise<Handed | undefined> {
  const deadline = Date.now() + INTRODUCTION_SECONDS * 1000;
  const received: number[] = [];
  const chunks: Uint8Array[] = [];
  let total = 0;
  let refused = false;
  for (;;) {
    const got = libc.receive(control, receiving);
    received.push(...got.descriptors);
    if (got.truncated || received.length > HANDED_LIMIT) refused = true;
    if (got.length === -EAGAIN || got.length === -EINTR) {
      if (refused || !(await readiness.wait(control, READABLE, deadline))) break;
      continue;
    }
    if (got.length <= 0 || refused) break;
    chunks.push(receiving.slice(0, got.length));
    receiving.fill(0, 0, got.length);
    total += got.length;
    if (total > INTRODUCTION_LIMIT) break;
    const whole = concatBytes(chunks);
    const items = netstrings(whole);
    if (items === undefined) break;
    const first = items[0];
    const last = items[items.length - 1];
    if (first === undefined || !startsWith(whole, first, "fds=")) {
      if (first !== undefined) break;
      continue;
    }
    if (last === undefined || !(startsWith(whole, last, "end=") || startsWith(whole, last, "query="))) continue;
    const numbers = text(whole.subarray(first.start + 4, first.end)).split(",");
    if (numbers.length !== received.length || !numbers.every((n) => /^(0|[1-9][0-9]{0,3})$/.test(n))) break;
    const descriptors = new Map<number, number>();
    numbers.forEach((n, i) => descriptors.set(Number(n), received[i]!));
    if (descriptors.size !== received.length) break;
    return { control, descriptors, introduction: whole.subarray(first.end + 1) };
  }
  for (const fd of received) libc.close(fd);
  return undefined;
}

/** Where each complete netstring's bytes are; undefined if malformed. */
function netstrings(bytes: Uint8Array): { start: number; end: number }[] | undefined {
  const items: { start: number; end: number }[] = [];
  for (let at = 0; at < bytes.length; ) {
    let length = 0;
    let i = at;
    for (; i < bytes.length && bytes[i]! >= 0x30 && bytes[i]! <= 0x39 && i - at < 10; i++) length = length * 10 + bytes[i]! - 0x30;
    if (i === bytes.length) return items;
    if (i === at || bytes[i] !== 0x3a) return undefined;
    if (bytes.length < i + 1 + length + 1) return items;
    if (bytes[i + 1 + length] !== 0x2c) return undefined;
    items.push({ start: i + 1, end: i + 1 + length });
    at = i + 1 + length + 1;
  }
  return items;
}

function startsWith(bytes: Uint8Array, item: { start: number; end: number }, prefix: string): boolean {
  if (item.end - item.start < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[item.start + i] !== prefix.charCodeAt(i)) return false;
  return true;
}

function text(bytes: Uint8Array): string {
  return String.fromCharCode.apply(null, Array.from(bytes));
}

/** One session's platform: the front's descriptor numbers, ours underneath; exit() ends the session. */
function sessionPlatform(libc: ResidentLibc, readiness: Readiness, handed: Handed): { platform: Platform; close(): Promise<void> } {
  const { control, descriptors } = handed;
  let introduction: Uint8Array | undefined = handed.introduction;
  /** What the front has not yet taken of what we said (the plan, perhaps: wiped once sent). */
  let unsent: Uint8Array[] = [];
  let gone = false;
  /** The front went away (killed, or it killed us for silence): every wait of the session ends, and the session with it. */
  let abandoned = false;
  let closing = false;
  /** The session's descriptors stay as the front gave them (blocking: shared open files); each call is non-blocking by itself. */
  const local = (fd: number) => {
    if (abandoned) throw new SessionEnd(RUNTIME_FAILURE_STATUS);
    return descriptors.get(fd);
  };

  /** Writes what it can of the control queue now; the rest waits for close(). */
  const flushNow = (): boolean => {
    while (unsent.length > 0) {
      const first = unsent[0]!;
      const written = libc.write(control, first);
      if (written === -EAGAIN || written === -EINTR) return true;
      if (written <= 0) {
        gone = true;
        return false;
      }
      if (written === first.length) {
        first.fill(0);
        unsent.shift();
      } else {
        const rest = first.slice(written);
        first.fill(0);
        unsent[0] = rest;
      }
    }
    return true;
  };

  async function write(fd: number, bytes: Uint8Array, deadlineMs: number): Promise<boolean> {
    const ours = local(fd);
    if (ours === undefined) return false;
    for (let offset = 0; offset < bytes.length; ) {
      const written = libc.writeNow(ours, bytes.subarray(offset));
      if (written === -EAGAIN || written === -EINTR) {
        const ready = await readiness.wait(ours, WRITABLE, deadlineMs);
        if (abandoned) throw new SessionEnd(RUNTIME_FAILURE_STATUS);
        if (!ready) return false;
        continue;
      }
      if (written <= 0) return false;
      offset += written;
    }
    return true;
  }

  async function read(fd: number, buffer: Uint8Array, deadlineMs: number, line: boolean): Promise<number | "timeout"> {
    if (buffer.length === 0) throw new RangeError("read into an empty buffer");
    const ours = local(fd);
    if (ours === undefined) return 0;
    for (;;) {
      let want = buffer.length;
      let peeked = 0;
      if (line) {
        // On a socket, look at what has arrived and take up to its first LF; elsewhere (a pipe) one byte.
        peeked = libc.recv(ours, buffer, buffer.length, MSG_PEEK | MSG_DONTWAIT);
        if (peeked === 0) return 0;
        if (peeked > 0) {
          const lf = buffer.subarray(0, peeked).indexOf(LF);
          want = lf < 0 ? peeked : lf + 1;
        } else if (peeked === -ENOTSOCK) want = 1;
        else if (peeked !== -EAGAIN && peeked !== -EINTR) return 0;
      }
      const got = peeked < 0 && peeked !== -ENOTSOCK ? -EAGAIN : libc.readNow(ours, buffer, want);
      // What was looked at but not taken (the next line: a password, perhaps) is not kept.
      if (peeked > 0) buffer.fill(0, Math.max(got, 0), peeked);
      if (got >= 0) return got;
      if (got !== -EAGAIN && got !== -EINTR) return 0;
      const ready = await readiness.wait(ours, READABLE, deadlineMs);
      if (abandoned) throw new SessionEnd(RUNTIME_FAILURE_STATUS);
      if (!ready) return "timeout";
    }
  }

  const platform: Platform = {
    controlFd: control,
    unixSeconds: () => Math.floor(Date.now() / 1000),
    nowMs: () => Date.now(),
    readLinePart: (fd, buffer, deadlineMs) => read(fd, buffer, deadlineMs, true),
    read: (fd, buffer, deadlineMs) => read(fd, buffer, deadlineMs, false),
    // The introduction, received whole before the session started.
    readControl(_fd, buffer) {
      if (introduction === undefined || introduction.length === 0) return 0;
      const n = Math.min(buffer.length, introduction.length);
      buffer.set(introduction.subarray(0, n));
      introduction = introduction.subarray(n);
      return n;
    },
    writeControl(_fd, bytes) {
      if (gone) throw new SessionEnd(RUNTIME_FAILURE_STATUS);
      unsent.push(bytes.slice());
      // The front gone (killed us for silence, or itself killed): this session is over.
      if (!flushNow()) throw new SessionEnd(RUNTIME_FAILURE_STATUS);
      return true;
    },
    write,
    // The whole worker is undumpable from its start.
    forbidDumps: () => {},
    // The front is not our parent: its end is the control socket's. It says nothing more until the plan, so readable is hung up.
    endWithFront() {
      void readiness.wait(control, READABLE | HUNG_UP, Infinity).then((ready) => {
        if (!ready || closing) return;
        abandoned = true;
        for (const fd of descriptors.values()) readiness.wake(fd);
      });
    },
    exit(status): never {
      throw new SessionEnd(status);
    },
  };

  return {
    platform,
    async close() {
      closing = true;
      // What the front has not taken yet (the plan), within the timeout; then every descriptor.
      const deadline = Date.now() + INTRODUCTION_SECONDS * 1000;
      while (!gone && unsent.length > 0 && flushNow() && unsent.length > 0)
        if (!(await readiness.wait(control, WRITABLE, deadline))) break;
      for (const chunk of unsent) chunk.fill(0);
      unsent = [];
      for (const fd of new Set([...descriptors.values(), control])) {
        readiness.forget(fd);
        libc.close(fd);
      }
    },
  };
}
