// The platform on Bun: descriptor I/O through libc (bun:ffi); the
// subprogram and the fd-5 check as on Node (Bun's node:child_process, fstat).

import { dlopen, ptr } from "bun:ffi";
import { LIBC_CANDIDATES, execIntoWaiter, translateSignatures, libcDescriptorOps, type ExecLibc, type LibcDescriptorOps } from "./libc.ts";
import { nodePlatform } from "./node.ts";
import type { Platform } from "./types.ts";

// Int returns are read as 32 bits: ssize_t's values here (-1, a few kilobytes) fit.
const SYMBOLS = translateSignatures(
  { int: "i32", size: "u64", buffer: "ptr", pointer: "ptr", void: "void" },
  (args, returns) => ({ args, returns }),
);

function openLibc(): ExecLibc | undefined {
  for (const name of LIBC_CANDIDATES[process.platform] ?? []) {
    try {
      return dlopen(name, SYMBOLS as never).symbols as unknown as ExecLibc;
    } catch {
      // Not this name: try the next.
    }
  }
  return undefined;
}

export function bunPlatform(): Platform {
  const base = nodePlatform();
  // libc is bound on first use, after the greeting: bun:ffi compiles a
  // trampoline per symbol, and the greeting must not wait for that.
  let bound: { libc: ExecLibc; io: LibcDescriptorOps } | null | undefined;
  const bind = () => {
    if (bound === undefined) {
      const libc = openLibc();
      bound = libc === undefined ? null : { libc, io: libcDescriptorOps(libc, base.nowMs) };
    }
    return bound;
  };
  return {
    ...base,
    // Without libc (an unknown system), Node's way still works in Bun.
    readLinePart: (fd, buffer, deadlineMs) => (bind()?.io ?? base).readLinePart(fd, buffer, deadlineMs),
    // The greeting goes out through node:fs; everything after, through libc.
    write: (fd, bytes, deadlineMs) => (bound ? bound.io : base).write(fd, bytes, deadlineMs),
    becomeWaiter: (descriptors, planFor) => {
      const libc = bind()?.libc;
      if (libc === undefined) return "no libc";
      return execIntoWaiter(libc, process.platform, (buffer) => BigInt(ptr(buffer)), descriptors, planFor);
    },
  };
}
