// Readiness without reading: an epoll set that the main thread arms, one
// wait at a time per descriptor (EPOLLONESHOT), and a poller thread (a Bun
// Worker) that blocks in epoll_wait(2) and posts which waits are ready.
// Nothing here consumes a byte: the session then reads exactly what it
// may (never past an LF) with a non-blocking call, and a readiness that
// turns out stale (EAGAIN) only means waiting again. The main thread
// never blocks.

import type { ResidentLibc } from "./libc.ts";
import { EEXIST, ENOENT } from "./libc.ts";

export const READABLE = 0x001;
export const WRITABLE = 0x004;
/** The peer closed its end (or shut down writing): EPOLLRDHUP. */
export const HUNG_UP = 0x2000;
const EPOLLONESHOT = 1 << 30;
const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_DEL = 2;
const EPOLL_CTL_MOD = 3;
/** struct epoll_event: packed on x86-64 (12 bytes), 16 elsewhere. */
const EVENT_SIZE = process.arch === "x64" ? 12 : 16;
const DATA_OFFSET = process.arch === "x64" ? 4 : 8;
const BATCH = 256;

/** The poller's code: it only waits and tells; each ready wait's token, as the main thread armed it. */
function pollerSource(libcName: string, epfd: number): string {
  return `
import { dlopen } from "bun:ffi";
const { symbols } = dlopen(${JSON.stringify(libcName)}, { epoll_wait: { args: ["i32", "ptr", "i32", "i32"], returns: "i32" } });
const events = new Uint8Array(${EVENT_SIZE * BATCH});
const view = new DataView(events.buffer);
for (;;) {
  const n = symbols.epoll_wait(${epfd}, events, ${BATCH}, -1);
  if (n <= 0) continue;
  const tokens = new Array(n);
  for (let i = 0; i < n; i++) tokens[i] = view.getUint32(i * ${EVENT_SIZE} + ${DATA_OFFSET}, true);
  postMessage(tokens);
}
`;
}

export class Readiness {
  private readonly epfd: number;
  private readonly armed = new Set<number>();
  /** The token of each descriptor's wait, while it waits. */
  private readonly tokenOf = new Map<number, number>();
  private readonly waiting = new Map<number, (ready: boolean) => void>();
  private next = 1;
  private readonly event = new Uint8Array(EVENT_SIZE);
  private readonly eventView = new DataView(this.event.buffer);

  constructor(private readonly libc: ResidentLibc) {
    this.epfd = libc.epollCreate();
    if (this.epfd < 0) throw new Error(`epoll_create1: errno ${-this.epfd}`);
    const source = new Blob([pollerSource(libc.libcName, this.epfd)], { type: "application/javascript" });
    const poller = new Worker(URL.createObjectURL(source));
    poller.onmessage = (message: MessageEvent<number[]>) => {
      for (const token of message.data) this.waiting.get(token)?.(true);
    };
  }

  /** Resolves true when fd is ready for events (or failed: the next call says how), false at the deadline. */
  wait(fd: number, events: number, deadlineMs: number): Promise<boolean> {
    const token = this.next;
    this.next = this.next >= 0x7fffffff ? 1 : this.next + 1;
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      this.waiting.set(token, (ready) => {
        if (timer !== undefined) clearTimeout(timer);
        this.waiting.delete(token);
        if (this.tokenOf.get(fd) === token) this.tokenOf.delete(fd);
        resolve(ready);
      });
      // A descriptor waits for one thing at a time: an earlier wait on it is over (not ready).
      const earlier = this.tokenOf.get(fd);
      if (earlier !== undefined) this.waiting.get(earlier)?.(false);
      this.tokenOf.set(fd, token);
      this.eventView.setUint32(0, events | EPOLLONESHOT, true);
      this.eventView.setUint32(DATA_OFFSET, token, true);
      this.eventView.setUint32(DATA_OFFSET + 4, 0, true);
      let done = this.libc.epollCtl(this.epfd, this.armed.has(fd) ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, this.event);
      if (done === -EEXIST) done = this.libc.epollCtl(this.epfd, EPOLL_CTL_MOD, fd, this.event);
      else if (done === -ENOENT) done = this.libc.epollCtl(this.epfd, EPOLL_CTL_ADD, fd, this.event);
      // A descriptor epoll refuses (a regular file): always ready, as poll(2) says of it.
      if (done < 0) return this.waiting.get(token)!(true);
      this.armed.add(fd);
      if (Number.isFinite(deadlineMs)) timer = setTimeout(() => this.waiting.get(token)?.(false), Math.max(0, deadlineMs - Date.now()));
    });
  }

  /** Before fd is closed: its number may come back for another descriptor. */
  /** Ends fd's wait now, as if it were ready: its waiter looks again (and finds its session over). */
  wake(fd: number): void {
    const token = this.tokenOf.get(fd);
    if (token !== undefined) this.waiting.get(token)?.(true);
  }

  forget(fd: number): void {
    const token = this.tokenOf.get(fd);
    if (token !== undefined) this.waiting.get(token)?.(false);
    // Other processes (the front) hold the same files: closing ours would leave them in the set.
    if (this.armed.delete(fd)) this.libc.epollCtl(this.epfd, EPOLL_CTL_DEL, fd, this.event);
  }
}
