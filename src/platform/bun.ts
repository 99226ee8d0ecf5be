// The platform on Bun: descriptor I/O through libc (bun:ffi); the greeting
// and the control socket through node:fs, as on Node.

import { dlopen, ptr } from "bun:ffi";
import { LIBC_CANDIDATES, libcDescriptorOps, translateSignatures, type Libc, type LibcDescriptorOps } from "./libc.ts";
import { nodePlatform } from "./node.ts";
import type { Platform } from "./types.ts";

// Int returns are read as 32 bits: ssize_t's values here (-1, a few kilobytes) fit.
const SYMBOLS = translateSignatures(
  process.platform,
  { int: "i32", size: "u64", buffer: "ptr", long: "i64" },
  (args, returns) => ({ args, returns }),
);

function openLibc(): Libc | undefined {
  for (const name of LIBC_CANDIDATES[process.platform] ?? []) {
    try {
      const symbols = dlopen(name, SYMBOLS as never).symbols as unknown as Libc;
      return { ...symbols, addressOf: (buffer) => BigInt(ptr(buffer)) };
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
  let bound: LibcDescriptorOps | null | undefined;
  const bind = () => {
    if (bound === undefined) {
      const libc = openLibc();
      bound = libc === undefined ? null : libcDescriptorOps(libc, process.platform, base.nowMs);
    }
    return bound;
  };
  return {
    ...base,
    // Without libc (an unknown system), Node's way still works in Bun.
    readLinePart: (fd, buffer, deadlineMs) => (bind() ?? base).readLinePart(fd, buffer, deadlineMs),
    read: (fd, buffer, deadlineMs) => (bind() ?? base).read(fd, buffer, deadlineMs),
    // The greeting goes out through node:fs, a plain write: the first bytes
    // on a connection (or sslserver's empty pipe) cannot find it full.
    // Everything after, and anything to another descriptor (fd 2, fd 5),
    // through libc, bounded by poll: Bun's net.Socket cannot make a
    // descriptor non-blocking, as Node's writes need.
    write: (fd, bytes, deadlineMs) =>
      fd === 1 && bound === undefined ? Promise.resolve(base.writeControl(fd, bytes)) : (bind() ?? base).write(fd, bytes, deadlineMs),
    forbidDumps: () => bind()?.forbidDumps(),
    endWithFront: (frontPid) => (bind() ?? base).endWithFront(frontPid),
  };
}
