// The platform on Bun: descriptor I/O through libc (bun:ffi), the
// subprogram through Bun's node:child_process, as on Node.

import { dlopen, ptr } from "bun:ffi";
import { isInheritedDescriptor } from "./descriptors.ts";
import { LIBC_CANDIDATES, execIntoWaiter, libcDescriptorOps, type ExecLibc } from "./libc.ts";
import { nodePlatform, statDescriptor } from "./node.ts";
import type { Platform } from "./types.ts";

const SYMBOLS = {
  poll: { args: ["ptr", "u64", "i32"], returns: "i32" },
  read: { args: ["i32", "ptr", "u64"], returns: "i32" },
  write: { args: ["i32", "ptr", "u64"], returns: "i32" },
  recv: { args: ["i32", "ptr", "u64", "i32"], returns: "i32" },
  fcntl: { args: ["i32", "i32", "i32"], returns: "i32" },
  pipe: { args: ["ptr"], returns: "i32" },
  close: { args: ["i32"], returns: "i32" },
  execve: { args: ["ptr", "ptr", "ptr"], returns: "i32" },
  signal: { args: ["i32", "ptr"], returns: "ptr" },
  dup2: { args: ["i32", "i32"], returns: "i32" },
  _exit: { args: ["i32"], returns: "void" },
} as const;

function openLibc(): ExecLibc | undefined {
  for (const name of LIBC_CANDIDATES[process.platform] ?? []) {
    try {
      return dlopen(name, SYMBOLS).symbols as unknown as ExecLibc;
    } catch {
      // Not this name: try the next.
    }
  }
  return undefined;
}

export function bunPlatform(): Platform {
  const base = nodePlatform();
  const libc = openLibc();
  // Without libc (an unknown system), Node's thread-pool reads still work in Bun.
  const io = libc === undefined ? {} : libcDescriptorOps(libc, base.nowMs);
  return {
    ...base,
    ...io,
    inheritedFd: (fd) => isInheritedDescriptor(fd, statDescriptor),
    ...(libc && {
      becomeWaiter: (descriptors, planFor) =>
        execIntoWaiter(libc, process.platform, (buffer) => BigInt(ptr(buffer)), descriptors, planFor),
    }),
  };
}
