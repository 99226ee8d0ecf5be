// scripts/harden-bun-runtime.mjs RUNTIME OUTPUT
//
// Writes a copy of the Bun runtime RUNTIME (a pinned @oven/bun-* binary) to
// OUTPUT in which the environment variables below cannot be set: the compiled
// qmail-popup is that runtime with the program appended, and Bun has no compile
// flag that turns them off.
//
// Each name is in the runtime once as a NUL-terminated string, the one Bun
// looks up. The patch turns its first byte into NUL, so the lookup is for the
// empty name: getenv("") is NULL in glibc, musl and FreeBSD's libc, and no
// environment entry begins with NUL. A name found other than exactly once
// fails the build: another Bun version needs a look before it is trusted.
import { readFileSync, writeFileSync, chmodSync, renameSync } from "node:fs";

/** Variables by which whoever sets qmail-popup's environment could change its code. */
const DISABLED_VARIABLES = [
  "BUN_OPTIONS", // command-line options for the runtime: --preload FILE runs FILE first
  "BUN_BE_BUN", // the binary becomes the bun CLI and runs its first argument (the host name) as a script
  "BUN_INSPECT", // starts the debugger, listening on a port: whoever connects runs code
  "BUN_INSPECT_CONNECT_TO", // connects to a debugger
  "BUN_INSPECT_PRELOAD", // a file the debugger preloads
];

const [runtime, output] = process.argv.slice(2);
if (!runtime || !output) {
  console.error("usage: node scripts/harden-bun-runtime.mjs RUNTIME OUTPUT");
  process.exit(2);
}

const binary = readFileSync(runtime);
for (const name of DISABLED_VARIABLES) {
  const needle = Buffer.from(`\0${name}\0`, "latin1");
  const first = binary.indexOf(needle);
  if (first < 0 || binary.indexOf(needle, first + 1) >= 0) {
    console.error(`harden-bun-runtime: ${runtime}: "${name}" found ${first < 0 ? "nowhere" : "more than once"} as a NUL-terminated string; expected once`);
    process.exit(1);
  }
  binary[first + 1] = 0;
}

const temporary = `${output}.tmp`;
writeFileSync(temporary, binary);
chmodSync(temporary, 0o755);
renameSync(temporary, output);
