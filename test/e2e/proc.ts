// What Linux's /proc says about a process: whether it is there, its
// children, and the TCP sockets it listens on. For the tests that send a
// runtime signals and check that no listener (an inspector) opens:
// trust.test.ts and binaries.test.ts.

import { existsSync, readFileSync, readdirSync, readlinkSync } from "node:fs";
import { expect } from "vitest";

export function alive(pid: number): boolean {
  return existsSync(`/proc/${pid}`);
}

/** The pids of a process's children (/proc/PID/task/PID/children). */
export function childrenOf(pid: number): number[] {
  return readFileSync(`/proc/${pid}/task/${pid}/children`, "latin1").trim().split(/\s+/).filter(Boolean).map(Number);
}

/** The one child of a process (the front's: the runtime while the protocol runs, the login program after); fails the test otherwise. */
export function onlyChildOf(pid: number): number {
  const children = childrenOf(pid);
  expect(children, `children of ${pid}`).toHaveLength(1);
  return children[0]!;
}

/** Inodes of the sockets a process has open. */
function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const socket = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (socket) inodes.add(socket[1]!);
    } catch {
      // Closed meanwhile.
    }
  }
  return inodes;
}

/**
 * The local addresses (hex, as /proc/net/tcp has them: 0100007F:2405) of the
 * TCP sockets, IPv4 and IPv6, that pid has open and listening. The tables are
 * this process's (the tests share its network namespace): a zombie has no
 * /proc/PID/net, and none left in /proc/PID/fd.
 */
export function listeningSockets(pid: number): string[] {
  const inodes = socketInodes(pid);
  const listening: string[] = [];
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of readFileSync(table, "latin1").split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode; st 0A is LISTEN
      if (fields.length > 9 && fields[3] === "0A" && inodes.has(fields[9]!)) listening.push(fields[1]!);
    }
  }
  return listening;
}

/**
 * Checks every 20 ms, for ms, whether pid listens: absence over a window,
 * not a synchronisation. Resolves the listening sockets as soon as there
 * are any, else none (also once pid is gone: a signal may end it).
 */
export async function listenerWithin(pid: number, ms: number): Promise<string[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = alive(pid) ? listeningSockets(pid) : [];
    if (found.length > 0 || Date.now() >= deadline) return found;
    await new Promise((wake) => setTimeout(wake, 20));
  }
}
