// The descriptor-level operations a runtime must supply. Everything else
// (the session loop, the line reading rule, what to log) is shared.

import type { Environment } from "../core/config.ts";
import type { ChildOutcome } from "../core/session.ts";
import type { WaiterPlan } from "../waiter.ts";
import type { WaiterDescriptors } from "./libc.ts";

/** A descriptor's identity, as fstat(2) gives it. */
export interface DescriptorStat {
  readonly kind: "file" | "fifo" | "socket" | "chardev" | "other";
  readonly dev: number;
  readonly ino: number;
}

export interface SubprogramRequest {
  readonly argv: readonly string[];
  readonly env: Environment;
  /** Becomes the subprogram's fd 0. */
  readonly input: number;
  /** Becomes the subprogram's fds 1 and 2. */
  readonly output: number;
  /** Written to the subprogram's fd 3, then overwritten with zeros. */
  readonly credentials: Uint8Array;
  /** Descriptors passed on at the same number (fd 5, the log). */
  readonly passFds: readonly number[];
}

export type SubprogramResult = ChildOutcome | { readonly kind: "failed"; readonly reason: string };

export interface Platform {
  readonly pid: number;
  readonly args: readonly string[];
  readonly env: Environment;
  unixSeconds(): number;
  /** Milliseconds, for deadlines. */
  nowMs(): number;
  /**
   * Reads at most buffer.length bytes and never past the first LF: what
   * follows PASS belongs to the subprogram, and what follows STLS must not be
   * read in clear. 0 at end of file or on a read error, "timeout" when
   * nothing arrived before the deadline.
   */
  readLinePart(fd: number, buffer: Uint8Array, deadlineMs: number): Promise<number | "timeout">;
  /** Writes all of bytes. False when the peer is gone or the deadline passed. */
  write(fd: number, bytes: Uint8Array, deadlineMs: number): Promise<boolean>;
  /** fd is open and was handed to us by our parent (not one the runtime opened for itself). */
  inheritedFd(fd: number): boolean;
  /**
   * Where the runtime can exec: becomes the waiter (src/waiter.ts) and does
   * not return; returns the reason where it could not, and the caller then
   * waits in-process.
   */
  becomeWaiter?(descriptors: WaiterDescriptors, planFor: (credentialsFd: number) => WaiterPlan): string;
  /** Runs the subprogram and waits for it. */
  runSubprogram(request: SubprogramRequest): Promise<SubprogramResult>;
  exit(status: number): never;
}
