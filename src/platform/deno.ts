// The platform on Deno: descriptor I/O through libc (Deno.dlopen), since
// Deno's node:fs cannot reach a raw descriptor above 2 (fd 5, the TLS
// pipes); the subprogram through Deno's node:child_process.

import { LIBC_CANDIDATES, execIntoWaiter, translateSignatures, libcDescriptorOps, type ExecLibc } from "./libc.ts";
import { nodePlatform, runSubprogram } from "./node.ts";
import type { Platform, SubprogramRequest } from "./types.ts";

declare const Deno: {
  dlopen(path: string, symbols: Record<string, { parameters: string[]; result: string }>): { symbols: Record<string, Function> };
  build: { os: string };
  UnsafePointer: {
    of(buffer: ArrayBufferView): unknown;
    value(pointer: unknown): bigint;
    create(address: bigint): unknown;
  };
};

const SYMBOLS = translateSignatures(
  { int: "i32", size: "usize", buffer: "buffer", pointer: "pointer", void: "void" },
  (parameters, result) => ({ parameters, result }),
);

function openLibc(): ExecLibc {
  for (const name of LIBC_CANDIDATES[Deno.build.os] ?? []) {
    try {
      const symbols = Deno.dlopen(name, SYMBOLS).symbols;
      // signal(2)'s handler is a pointer: SIG_DFL 0 is null, SIG_IGN 1.
      const signal = (number: number, handler: number) => (symbols.signal!(number, Deno.UnsafePointer.create(BigInt(handler))), 0);
      return { ...(symbols as unknown as ExecLibc), signal };
    } catch {
      // Not this name: try the next.
    }
  }
  throw new Error(`no libc found for ${Deno.build.os}`);
}

/**
 * Deno's node:child_process leaks duplicates of numbered stdio entries into
 * the child, so the subprogram is started with plain inheritance through
 * /bin/sh, which puts input, output and fd 2 = output in place and execs.
 * Inherited descriptors (fd 5, and the UCSPI-TLS ones) pass as they are.
 * sh's own complaint about a missing program must not reach the network: it
 * is checked first, and said on fd 2.
 */
function throughShell(request: SubprogramRequest): SubprogramRequest {
  const script =
    'program=$(command -v "$1"); if [ -z "$program" ] || [ ! -x "$program" ] || [ -d "$program" ]; then ' +
    'echo "qmail-popup: unable to run $1: not found or not executable" >&2; exit 111; fi; ' +
    `exec "$@" <&${request.input} >&${request.output} 2>&1`;
  return { ...request, argv: ["/bin/sh", "-c", script, "qmail-popup", ...request.argv], passFds: [] };
}

export function denoPlatform(): Platform {
  const base = nodePlatform();
  const libc = openLibc();
  const io = libcDescriptorOps(libc, base.nowMs);
  return {
    ...base,
    readLinePart: io.readLinePart,
    write: io.write,
    // Deno marks its own descriptors close-on-exec and leaves inherited ones alone,
    // so the flag tells them apart, and an inherited fd 5 reaches the subprogram as is.
    inheritedFd: io.openWithoutCloseOnExec,
    becomeWaiter: (descriptors, planFor) =>
      execIntoWaiter(libc, Deno.build.os, (buffer) => Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer)), descriptors, planFor),
    runSubprogram: (request) => runSubprogram(throughShell(request), ["inherit", "inherit", "inherit", "pipe"]),
  };
}
