// A runtime's floor for scripts/bench.mjs: what a JavaScript runtime costs
// before any of qmail-popup runs. Greets "+OK ", waits for one read on fd 0
// (blocking: tcpserver's socket), answers "+OK " and exits. Only node:fs, so
// that Node, Bun and Deno run the same file.
import { readSync, writeSync } from "node:fs";

writeSync(1, "+OK \r\n");
try {
  readSync(0, new Uint8Array(1024));
  writeSync(1, "+OK \r\n");
} catch {
  // the client is gone
}
