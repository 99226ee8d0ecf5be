// One contract suite for every real platform (src/platform/types.ts), as
// crossws runs one suite against every adapter. Each runtime runs
// platform-driver.ts on real descriptors set up here: socket pairs from
// Node's child_process (stdio "pipe" entries are socket pairs, the child's
// end blocking, as the front leaves its descriptors), a pipe from sh.
// What the driver reports must be the same table on every runtime.
//
// Node runs the driver as the project ships its Node runtime: bundled by
// esbuild (Node 20 runs no TypeScript), in a process of its own. The
// vitest process cannot host the contract itself: Node makes no socket
// pair it does not read from itself, and none blocking, which the control
// socket must be.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Socket } from "node:net";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
const DRIVER = join(ROOT, "test/e2e/platform-driver.ts");
const BIN = join(ROOT, "node_modules/.bin");

/** The driver's numbers (platform-driver.ts). */
const RESULTS_STATUS = 42;
const LARGE_LENGTH = 1 << 20;
const IDLE_DEADLINE_MS = 300;
const CONTROL_FD = 7;

const ON_FD3 = "A\r\nB\r\nLONG LINE\r\n";
const ON_FD8 = "READ ME\r\nTOO";
const FRONT_ANSWER = "front says hello";

/** What every platform must report. */
const EXPECTED_TABLE = {
  // The harness's own check: what it set up is what the driver has.
  descriptors: ["3 socket", "4 pipe", "5 socket", "6 socket", "7 socket", "8 socket", "9 socket"],
  controlFd: CONTROL_FD,
  unixSecondsIsNow: true,
  // readLinePart stops at each LF and leaves the rest: "B\r\n" is still there for the next call.
  socketLines: [
    { line: "A\r\n", withinContract: true },
    { line: "B\r\n", withinContract: true },
    { line: "LONG LINE\r\n", withinContract: true },
  ],
  // An empty buffer is refused, and nothing is read: "B\r\n" comes whole after.
  emptyLinePart: "threw RangeError",
  emptySubarrayLinePart: "threw RangeError",
  emptyRead: "threw RangeError",
  // A deadline already passed: "timeout" though bytes wait, and they are still there after.
  pastLinePart: "timeout",
  pastRead: "timeout",
  pipeLines: [
    { line: "A\r\n", withinContract: true },
    { line: "B\r\n", withinContract: true },
  ],
  pipeEnd: 0,
  idleLinePart: "timeout",
  idleRead: "timeout",
  // read is bounded by its buffer, not by an LF.
  readFirst: [4, "READ"],
  readRest: [8, " ME\r\nTOO"],
  writeShort: true,
  writeLarge: true,
  writeLeavesBlocking: true,
  goneEnd: 0,
  writeGone: false,
  controlWrite: true,
  // The front's answer, at most 5 bytes a read, then its end of file; the socket left blocking.
  controlReads: ["front", " says", " hell", "o", "<0>"],
  controlStaysBlocking: true,
};

/**
 * The shell puts a pipe holding "A\r\nB\r\n" (then end of file) on fd 4
 * and runs its arguments. SIGPIPE has its default action, as the front
 * leaves it for the runtime (Node's spawn resets every signal).
 */
const PIPE_ON_FD4 = `printf 'A\\r\\nB\\r\\n' | exec "$@" 4<&0 </dev/null`;

interface Run {
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** What the driver wrote on fd 6 and on the control socket. */
  readonly fd6: Buffer;
  readonly fd7: Buffer;
}

/** Runs the driver (`runtime... driver`) as `driver 7 NAME`, with the descriptors platform-driver.ts expects. */
function runDriver(driver: readonly string[], name: string): Promise<Run> {
  const child = spawn("/bin/sh", ["-c", PIPE_ON_FD4, "sh", ...driver, String(CONTROL_FD), name], {
    stdio: ["ignore", "pipe", "pipe", "pipe", "ignore", "pipe", "pipe", "pipe", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", DENO_NO_PROMPT: "1" },
  });
  const socket = (fd: number) => child.stdio[fd] as Socket;
  const collect = (fd: number) => {
    const chunks: Buffer[] = [];
    socket(fd).on("data", (chunk: Buffer) => chunks.push(chunk));
    return chunks;
  };
  const [stdout, stderr, fd6, fd7] = [collect(1), collect(2), collect(6), collect(7)];
  socket(3).write(ON_FD3);
  socket(8).write(ON_FD8);
  socket(9).destroy();
  // The front answers once it has the runtime's whole message, then closes.
  let received = 0;
  socket(7).on("data", (chunk: Buffer) => {
    received += chunk.length;
    if (received === LARGE_LENGTH) socket(7).end(FRONT_ANSWER);
  });
  return new Promise((done, fail) => {
    child.on("error", fail);
    child.on("close", (status, signal) =>
      done({
        status,
        signal,
        stdout: Buffer.concat(stdout).toString("latin1"),
        stderr: Buffer.concat(stderr).toString("latin1"),
        fd6: Buffer.concat(fd6),
        fd7: Buffer.concat(fd7),
      }),
    );
  });
}

/** The large writes' bytes: byte i is i % 251. */
function large(): Buffer {
  const bytes = Buffer.alloc(LARGE_LENGTH);
  for (let i = 0; i < LARGE_LENGTH; i++) bytes[i] = i % 251;
  return bytes;
}

const work = mkdtempSync(join(tmpdir(), "qmail-popup-platforms-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** How each runtime runs the driver (Node: the bundle beforeAll makes). */
const PLATFORMS: readonly { readonly name: string; readonly driver: readonly string[] }[] = [
  { name: "node", driver: [process.execPath, join(work, "platform-driver.mjs")] },
  { name: "bun", driver: [join(BIN, "bun"), DRIVER] },
  { name: "deno", driver: [join(BIN, "deno"), "run", "-A", "--no-config", DRIVER] },
];

beforeAll(async () => {
  // As the Makefile bundles the Node runtime; bun.ts's import of bun:ffi stays in a chunk Node never loads.
  await build({
    entryPoints: [DRIVER],
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    external: ["bun:ffi"],
    outdir: work,
    outExtension: { ".js": ".mjs" },
    logLevel: "warning",
  });
});

describe.each(PLATFORMS)("$name", ({ name, driver }) => {
  let run: Run;
  let results: { table: unknown; timings: { idleLinePartMs: number; idleReadMs: number } };

  beforeAll(async () => {
    run = await runDriver(driver, name);
    if (run.status !== RESULTS_STATUS) throw new Error(`the driver ended with status ${run.status}, signal ${run.signal}:\n${run.stderr}`);
    results = JSON.parse(run.stdout);
  }, 20_000);

  it("reports the contract's table", () => {
    expect(results.table).toEqual(EXPECTED_TABLE);
  });

  it("exit(42) ends the process with status 42, after the results were written whole", () => {
    expect(run.status).toBe(RESULTS_STATUS);
    expect(run.stdout.endsWith("}\n")).toBe(true);
  });

  it("write: every byte, in order, a write larger than the socket's buffer too", () => {
    expect(run.fd6.subarray(0, 7).toString("latin1")).toBe("hello\r\n");
    expect(run.fd6.length).toBe(7 + LARGE_LENGTH);
    expect(run.fd6.subarray(7).equals(large())).toBe(true);
  });

  it("writeControl: the whole message on a blocking socket, the front reading as it comes", () => {
    expect(run.fd7.length).toBe(LARGE_LENGTH);
    expect(run.fd7.equals(large())).toBe(true);
  });

  it(`a read whose deadline passes ends "timeout" at the deadline, not much after`, () => {
    for (const elapsed of [results.timings.idleLinePartMs, results.timings.idleReadMs]) {
      expect(elapsed).toBeGreaterThanOrEqual(IDLE_DEADLINE_MS - 10);
      expect(elapsed).toBeLessThan(IDLE_DEADLINE_MS + 1000);
    }
  });
});
