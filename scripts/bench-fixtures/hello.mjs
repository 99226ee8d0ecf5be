// @ts-check
// The runtime floors of scripts/bench.mjs: what a JavaScript runtime costs
// before any of qmail-popup runs. Greets "+OK ", waits for one read on fd 0
// (blocking: tcpserver's socket: the client's QUIT), answers "+OK " and exits.
// Only node:fs, so that Node, Bun and Deno run the same file.
//
// `make bench` compiles it as the runtime is compiled (dist/bench/hello):
// alone under tcpserver, the Bun floor; as qmail-popup-runtime behind a copy of
// the front, the front's cost. There its one argument is the control socket
// (src/front/qmail-popup.c): it reads the front's introduction first, as the
// runtime does, answers with the front's own version (doc/control-protocol.md:
// the front hears nothing else first), and ends by announcing its end, as the
// runtime does after QUIT (`end=0`): the front then exits 0.
import { readSync, writeSync } from "node:fs";

const control = /^[0-9]+$/.test(process.argv[2] ?? "") ? Number(process.argv[2]) : undefined;

/** Reads netstrings from fd until the one that holds `end=`, the introduction's last; returns its `version=` item. */
function readIntroduction(/** @type {number} */ fd) {
  let version = "";
  const chunk = new Uint8Array(65536);
  // One character per byte, as every length counts them.
  const latin1 = new TextDecoder("latin1");
  let text = "";
  for (;;) {
    const got = readSync(fd, chunk);
    if (got <= 0) throw new Error("the introduction is cut short");
    text += latin1.decode(chunk.subarray(0, got));
    for (let at = 0; ; ) {
      const colon = text.indexOf(":", at);
      if (colon < 0) break;
      const end = colon + 1 + Number(text.slice(at, colon));
      if (end >= text.length) break;
      const item = text.slice(colon + 1, end);
      if (item.startsWith("version=")) version = item;
      if (item === "end=") return version;
      at = end + 1;
    }
  }
}

if (control !== undefined) {
  const version = readIntroduction(control);
  writeSync(control, `${version.length}:${version},`);
}
writeSync(1, "+OK \r\n");
try {
  readSync(0, new Uint8Array(1024));
  writeSync(1, "+OK \r\n");
} catch {
  // the client is gone
}
if (control !== undefined) writeSync(control, "5:end=0,");
