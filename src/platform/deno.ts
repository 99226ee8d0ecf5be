// The platform on Deno: descriptor I/O through libc (Deno.dlopen), since
// Deno's node:fs cannot reach a raw descriptor above 2 (fd 5, the TLS
// pipes, the control socket).

import { LIBC_CANDIDATES, libcDescriptorOps, translateSignatures, type Libc } from "./libc.ts";
import { controlFdOf, nodePlatform } from "./node.ts";
import type { Platform } from "./types.ts";

declare const Deno: {
  dlopen(path: string, symbols: Record<string, { parameters: string[]; result: string }>): { symbols: Record<string, Function> };
  build: { os: string };
  UnsafePointer: { of(buffer: Uint8Array): unknown; value(pointer: unknown): bigint | number };
};

function openLibc(): Libc {
  const symbols = translateSignatures(
    Deno.build.os,
    { int: "i32", size: "usize", buffer: "buffer", long: "i64" },
    (parameters, result) => ({ parameters, result }),
  );
  for (const name of LIBC_CANDIDATES[Deno.build.os] ?? []) {
    try {
      const bound = Deno.dlopen(name, symbols).symbols;
      // i64 arguments are BigInts in Deno.
      const prctl = bound.prctl && ((option: number, a: number, b: number, c: number, d: number) =>
        bound.prctl!(option, BigInt(a), BigInt(b), BigInt(c), BigInt(d)));
      const pwritev2 = bound.pwritev2 && ((fd: number, iovec: Uint8Array, count: number, offset: number, flags: number) =>
        bound.pwritev2!(fd, iovec, count, BigInt(offset), flags));
      const addressOf = (buffer: Uint8Array) => BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer)));
      return { ...(bound as unknown as Libc), prctl: prctl as Libc["prctl"], pwritev2: pwritev2 as Libc["pwritev2"], addressOf };
    } catch {
      // Not this name: try the next.
    }
  }
  throw new Error(`no libc found for ${Deno.build.os}`);
}

export function denoPlatform(): Platform {
  const base = nodePlatform();
  const io = libcDescriptorOps(openLibc(), Deno.build.os, base.nowMs);
  return { ...base, ...io, controlFd: controlFdOf(globalThis.process?.argv[2]) };
}
