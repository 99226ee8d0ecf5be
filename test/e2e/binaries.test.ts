// The release binaries of `make dist` (issue #3), installed as a pair:
// qmail-popup, the front (src/front/qmail-popup.c, static C), and next to it
// qmail-popup-runtime, a Bun-compiled binary or a Node SEA, which the front
// starts with an empty environment and one argument, its control socket.
//
// What each file is (ELF class, machine, OS/ABI, interpreter or none); that
// a front is small and static, that a runtime holds the compiled program and
// not a plain runtime; that every runtime this host can run (directly, or an
// arm64 one under qemu-aarch64) answers behind a front of its architecture
// exactly as dist/qmail-popup does, and alone says one line and exits 111;
// that the pair needs no Node/Bun/Deno on the host; and that nothing in the
// working directory or the environment changes what the binaries run, load
// or write (issue: "no environment variable changes what the binary runs,
// loads or writes"), each case next to a probe that shows it would act.
//
// `make test` builds the whole matrix (make dist-ci): every file must exist.
// The musl and FreeBSD runtimes cannot run on this Debian host: they get the
// static checks only, and the table printed at the end says so.

import { spawn, spawnSync, type SpawnSyncReturns } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, realpathSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, connect, type Server, type Socket } from "node:net";
import { basename, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Waiters, freePort } from "../../scripts/lib/tcpserver.mjs";
import { ROOT, tempDir } from "./harness.ts";
import { listenerWithin, onlyChildOf } from "./proc.ts";

const VERSION = /export const VERSION = "([^"]+)";/.exec(readFileSync(join(ROOT, "src/version.ts"), "utf8"))![1]!;
const HOST_ARCH = process.arch;
const DIST = join(ROOT, "dist");

type Arch = "x64" | "arm64";
interface Artifact {
  readonly name: string;
  readonly kind: "front" | "bun" | "node";
  readonly arch: Arch;
  readonly os: "linux" | "freebsd";
  /** The dynamic loader it asks for; undefined for a static front. */
  readonly interpreter: string | undefined;
}

const INTERPRETER = {
  "linux-x64": "/lib64/ld-linux-x86-64.so.2",
  "linux-arm64": "/lib/ld-linux-aarch64.so.1",
  "linux-x64-musl": "/lib/ld-musl-x86_64.so.1",
  "linux-arm64-musl": "/lib/ld-musl-aarch64.so.1",
  freebsd: "/libexec/ld-elf.so.1",
};

const MATRIX: readonly Artifact[] = [
  { name: "qmail-popup-front-linux-x64", kind: "front", arch: "x64", os: "linux", interpreter: undefined },
  { name: "qmail-popup-front-linux-arm64", kind: "front", arch: "arm64", os: "linux", interpreter: undefined },
  { name: "qmail-popup-bun-linux-x64", kind: "bun", arch: "x64", os: "linux", interpreter: INTERPRETER["linux-x64"] },
  { name: "qmail-popup-bun-linux-x64-baseline", kind: "bun", arch: "x64", os: "linux", interpreter: INTERPRETER["linux-x64"] },
  { name: "qmail-popup-bun-linux-x64-musl", kind: "bun", arch: "x64", os: "linux", interpreter: INTERPRETER["linux-x64-musl"] },
  { name: "qmail-popup-bun-linux-arm64", kind: "bun", arch: "arm64", os: "linux", interpreter: INTERPRETER["linux-arm64"] },
  { name: "qmail-popup-bun-linux-arm64-musl", kind: "bun", arch: "arm64", os: "linux", interpreter: INTERPRETER["linux-arm64-musl"] },
  { name: "qmail-popup-bun-freebsd-x64", kind: "bun", arch: "x64", os: "freebsd", interpreter: INTERPRETER.freebsd },
  { name: "qmail-popup-bun-freebsd-arm64", kind: "bun", arch: "arm64", os: "freebsd", interpreter: INTERPRETER.freebsd },
  { name: "qmail-popup-node-linux-x64", kind: "node", arch: "x64", os: "linux", interpreter: INTERPRETER["linux-x64"] },
  { name: "qmail-popup-node-linux-arm64", kind: "node", arch: "arm64", os: "linux", interpreter: INTERPRETER["linux-arm64"] },
];

/** The variables scripts/harden-bun-runtime.mjs disables in the runtime the Bun binaries are built from. */
const DISABLED_BUN_VARIABLES = ["BUN_OPTIONS", "BUN_BE_BUN", "BUN_INSPECT", "BUN_INSPECT_CONNECT_TO", "BUN_INSPECT_PRELOAD"];

/** What a runtime started without a front says on fd 2 (src/serve.ts), before it exits 111. */
const ALONE_LINE = "qmail-popup: this is qmail-popup's runtime: run qmail-popup, the program next to it\n";
const USAGE = `-ERR usage: qmail-popup hostname subprogram [args...] (qmail-popup ${VERSION})\r\n`;
/** A front that could not start its runtime answers the client this. */
const TEMPORARY_REPLY = "-ERR [SYS/TEMP] unable to run qmail-popup\r\n";
/** A front must start under `softlimit -m 2000000`, with room to spare. */
const FRONT_SIZE_LIMIT = 2_000_000;

/** This host's pair, as installed: the front, and the Bun runtime for this host (make all). */
const HOST_FRONT = join(DIST, "qmail-popup");
const HOST_RUNTIME = join(DIST, "qmail-popup-runtime");
const HOST_LIBC_IS_MUSL = (process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header.glibcVersionRuntime === undefined;
const HOST_BUN_TARGET = `linux-${HOST_ARCH}${HOST_LIBC_IS_MUSL ? "-musl" : ""}`;
const HOST_SEA = join(DIST, `qmail-popup-node-linux-${HOST_ARCH}`);
const SEA_BUILDER = join(ROOT, `node_modules/.cache/qmail-popup-runtimes/node-linux-${HOST_ARCH}/bin/node`);

const pathOf = (artifact: Artifact) => join(DIST, artifact.name);
const frontFor = (arch: Arch) => MATRIX.find((artifact) => artifact.kind === "front" && artifact.arch === arch)!;

function run(command: string, args: readonly string[], options: { input?: string; env?: Record<string, string>; cwd?: string } = {}): SpawnSyncReturns<string> {
  const result = spawnSync(command, args, {
    input: options.input ?? "",
    env: options.env ?? { PATH: "/usr/bin:/bin" },
    cwd: options.cwd,
    encoding: "latin1",
    timeout: 120_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error) throw result.error;
  return result;
}

// --- how this host runs a binary ------------------------------------------------

const QEMU_AARCH64 = ["/usr/bin/qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"];
/** A CPU without AVX, for the baseline x64 runtime. */
const QEMU_NEHALEM = ["/usr/bin/qemu-x86_64", "-cpu", "Nehalem"];

/**
 * How this host runs an artifact: the command before it (none, or
 * qemu-aarch64 on an x64 host: make test installs it, make dist-emulators),
 * or why it cannot run here at all.
 */
function launcher(artifact: Artifact): { prefix: readonly string[] } | { reason: string } {
  if (artifact.os === "freebsd") return { reason: "FreeBSD binary: runs on FreeBSD only" };
  if (artifact.interpreter?.includes("musl")) return { reason: "musl binary: needs musl's libstdc++ and libgcc (Alpine), not on Debian" };
  if (artifact.arch === HOST_ARCH) return { prefix: [] };
  if (artifact.arch === "arm64") return { prefix: QEMU_AARCH64 };
  return { reason: `an ${artifact.arch} binary on an ${HOST_ARCH} host` };
}

/** Fails with what to install where an emulator a command needs is missing. */
function expectEmulator(prefix: readonly string[]): void {
  if (prefix.length === 0) return;
  expect(existsSync(prefix[0]!), `${prefix[0]} is missing: make dist-emulators`).toBe(true);
  if (prefix === QEMU_AARCH64) {
    expect(existsSync("/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1"), "arm64 C library missing: make dist-emulators").toBe(true);
    expect(existsSync("/usr/aarch64-linux-gnu/lib/libatomic.so.1"), "arm64 libatomic missing (the Node SEA needs it): make dist-emulators").toBe(true);
  }
}

/**
 * A directory as `make install` leaves one: `qmail-popup`, a copy of the
 * front, and `qmail-popup-runtime`, a link to the runtime; where the runtime
 * needs an emulator, a script that starts it under one instead (the kernel
 * runs an arm64 file only where binfmt_misc hands it to qemu: not counted on). The
 * front starts the runtime with an empty environment: the script names
 * everything by its full path. Returns the front's path.
 */
function pair(front: string, runtime: string, emulator: readonly string[] = []): string {
  const dir = tempDir("qmail-popup-pair-");
  copyFileSync(front, join(dir, "qmail-popup"));
  if (emulator.length === 0) symlinkSync(runtime, join(dir, "qmail-popup-runtime"));
  else {
    // What a run script runs lies beside it: the front's Landlock rules let the runtime read its own directory.
    const copy = join(dir, basename(runtime));
    copyFileSync(runtime, copy);
    writeFileSync(join(dir, "qmail-popup-runtime"), `#!/bin/sh\nexec ${[...emulator, copy].join(" ")} "$@"\n`, { mode: 0o755 });
  }
  return join(dir, "qmail-popup");
}

const table = new Map<string, { size: number; ran: string }>();
function record(artifact: Artifact, ran: string): void {
  const entry = table.get(artifact.name) ?? { size: statSync(pathOf(artifact)).size, ran: "" };
  entry.ran = entry.ran && entry.ran !== ran ? `${entry.ran}; ${ran}` : ran;
  table.set(artifact.name, entry);
}
afterAll(() => {
  if (table.size === 0) return;
  const rows = MATRIX.filter((artifact) => table.has(artifact.name)).map((artifact) => {
    const { size, ran } = table.get(artifact.name)!;
    return `  ${artifact.name.padEnd(36)} ${(size / 1e6).toFixed(1).padStart(7)} MB  ${ran}`;
  });
  console.log(`release binaries in dist/ (qmail-popup ${VERSION}):\n${rows.join("\n")}`);
});

// --- the dialogues -------------------------------------------------------------

/** Dialogues on a pipe: CAPA and QUIT; a login the subprogram refuses; one it accepts (fd 3). */
const DIALOGUES: readonly (readonly [input: string, subprogram: string])[] = [
  ["CAPA\r\nQUIT\r\n", "/bin/true"],
  ["USER alice\r\nPASS wonderland\r\n", "/bin/false"],
  ["USER alice\r\nPASS wonderland\r\n", "/bin/true"],
];
/** What dist/qmail-popup answers to each dialogue: the reference for every other pair. */
const references = new Map<number, { stdout: string; stderr: string; status: number | null }>();
function reference(index: number): { stdout: string; stderr: string; status: number | null } {
  if (!references.has(index)) {
    const [input, subprogram] = DIALOGUES[index]!;
    const result = run(HOST_FRONT, ["mail.test", subprogram], { input });
    references.set(index, { stdout: result.stdout, stderr: result.stderr, status: result.status });
  }
  return references.get(index)!;
}

describe("the matrix is built (make dist-ci), and dist/qmail-popup is this host's pair", () => {
  for (const artifact of MATRIX) {
    it(`dist/${artifact.name} exists`, () => {
      expect(existsSync(pathOf(artifact)), `dist/${artifact.name} is missing: run make dist-ci`).toBe(true);
    });
  }

  it(`dist/qmail-popup is dist/qmail-popup-front-linux-${HOST_ARCH}, dist/qmail-popup-runtime is dist/qmail-popup-bun-${HOST_BUN_TARGET}, byte for byte`, () => {
    expect(readFileSync(HOST_FRONT).equals(readFileSync(join(DIST, `qmail-popup-front-linux-${HOST_ARCH}`)))).toBe(true);
    expect(readFileSync(HOST_RUNTIME).equals(readFileSync(join(DIST, `qmail-popup-bun-${HOST_BUN_TARGET}`)))).toBe(true);
  });

  it("dist/qmail-popup answers the dialogues: the reference the other pairs are held to", () => {
    const [capa, refused, accepted] = [reference(0), reference(1), reference(2)];
    expect(capa.stdout.startsWith("+OK\r\n+OK capability list follows\r\n")).toBe(true);
    expect(capa.stdout.endsWith("\r\nUSER\r\nSASL PLAIN LOGIN\r\n.\r\n+OK \r\n")).toBe(true);
    expect(capa).toMatchObject({ stderr: "", status: 0 });
    expect(refused).toEqual({ stdout: "+OK\r\n+OK \r\n-ERR [AUTH] authorization failed\r\n", stderr: "", status: 1 });
    expect(accepted).toEqual({ stdout: "+OK\r\n+OK \r\n", stderr: "", status: 0 });
  });
});

// --- each file ------------------------------------------------------------------

function expectElfHeader(path: string, artifact: Artifact): void {
  const header = run("readelf", ["-h", path]).stdout;
  expect(header).toMatch(/Class:\s+ELF64/);
  expect(header).toMatch(/Type:\s+EXEC/);
  expect(header).toMatch(artifact.arch === "x64" ? /Machine:\s+Advanced Micro Devices X86-64/ : /Machine:\s+AArch64/);
  expect(header).toMatch(artifact.os === "freebsd" ? /OS\/ABI:\s+UNIX - FreeBSD/ : /OS\/ABI:\s+UNIX - (System V|GNU)/);
  const description = run("file", ["-b", path]).stdout;
  expect(description).toMatch(artifact.arch === "x64" ? /x86-64/ : /aarch64/);
  if (artifact.os === "freebsd") expect(description).toMatch(/for FreeBSD \d+/);
  else expect(description).not.toMatch(/FreeBSD/);
}

/** The lines of the binary's strings that contain any of the needles, sorted, once each. */
function stringsWith(path: string, needles: readonly string[]): string[] {
  const grep = needles.flatMap((needle) => ["-e", needle]);
  const found = run("/bin/sh", ["-c", 'file=$1; shift; strings -a -n 8 "$file" | grep -F "$@" | sort -u', "sh", path, ...grep]).stdout;
  return found.split("\n").filter((line) => line !== "");
}

describe.each(MATRIX.filter((artifact) => artifact.kind === "front").map((artifact) => [artifact.name, artifact] as const))("the front dist/%s", (_name, artifact) => {
  const path = pathOf(artifact);

  it("is a static 64-bit ELF executable for its machine: no interpreter, no dynamic section", () => {
    expectElfHeader(path, artifact);
    expect(run("file", ["-b", path]).stdout).toMatch(/, statically linked,/);
    const segments = run("readelf", ["-l", "-W", path]).stdout;
    expect(segments).toMatch(/Program Headers:/);
    expect(segments).not.toMatch(/\bINTERP\b|Requesting program interpreter|\bDYNAMIC\b/);
    expect(run("readelf", ["-d", path]).stdout.trim()).toBe("There is no dynamic section in this file.");
  });

  it(`holds "qmail-popup ${VERSION}", not the runtime's program, and is under ${FRONT_SIZE_LIMIT / 1e6} MB`, () => {
    expect(stringsWith(path, ["qmail-popup "])).toContain(`qmail-popup ${VERSION}`);
    // Not the runtime's program (its banner); the usage line is the front's own, as it answers usage errors.
    expect(stringsWith(path, ["/*! qmail-popup"])).toEqual([]);
    expect(stringsWith(path, ["-ERR usage:"])).toEqual([`-ERR usage: qmail-popup hostname subprogram [args...] (qmail-popup ${VERSION})`]);
    const size = statSync(path).size;
    expect(size).toBeLessThan(FRONT_SIZE_LIMIT);
    table.set(artifact.name, { size, ran: table.get(artifact.name)?.ran ?? "" });
  });

  const how = launcher(artifact);
  if ("prefix" in how) {
    it(`alone, with no runtime next to it: says why on fd 2 and answers ${JSON.stringify(TEMPORARY_REPLY)} (${how.prefix[0] ?? "directly"})`, () => {
      expectEmulator(how.prefix);
      const dir = tempDir("qmail-popup-front-alone-");
      copyFileSync(path, join(dir, "qmail-popup"));
      const [command, ...args] = [...how.prefix, join(dir, "qmail-popup")];
      const result = run(command!, [...args, "mail.test", "/bin/true"], { input: "QUIT\r\n" });
      expect({ stdout: result.stdout, stderr: result.stderr, status: result.status }).toEqual({
        stdout: TEMPORARY_REPLY,
        stderr:
          `qmail-popup: unable to run ${dir}/qmail-popup-runtime: No such file or directory\n` +
          `qmail-popup: the runtime ${dir}/qmail-popup-runtime ended with status 111 before its version: it is not qmail-popup-runtime ${VERSION} or it is damaged: install qmail-popup and qmail-popup-runtime from one release\n`,
        status: 1,
      });
    });
  } else {
    table.set(artifact.name, { size: statSync(path).size, ran: `not run: ${how.reason}` });
  }
});

describe.each(MATRIX.filter((artifact) => artifact.kind !== "front").map((artifact) => [artifact.name, artifact] as const))("the runtime dist/%s", (_name, artifact) => {
  const path = pathOf(artifact);

  it("is a 64-bit ELF executable for its machine and OS, with its interpreter", () => {
    expectElfHeader(path, artifact);
    const segments = run("readelf", ["-l", "-W", path]).stdout;
    expect(segments).toContain(`[Requesting program interpreter: ${artifact.interpreter}]`);
  });

  it(`holds the compiled program (strings finds "qmail-popup ${VERSION}"), not a plain runtime`, () => {
    const found = stringsWith(path, [`qmail-popup ${VERSION}`, "-ERR usage: qmail-popup hostname subprogram"]);
    expect(found.some((line) => line.includes(`/*! qmail-popup ${VERSION} */`))).toBe(true);
    expect(found.some((line) => line.includes("-ERR usage: qmail-popup hostname subprogram [args...] (qmail-popup "))).toBe(true);
    const size = statSync(path).size;
    // A runtime and a 30 kB program: anything much smaller is not a compiled binary.
    expect(size).toBeGreaterThan(50e6);
    table.set(artifact.name, { size, ran: table.get(artifact.name)?.ran ?? "" });
  });

  if (artifact.kind === "bun") {
    it("is built from the hardened runtime: it looks up none of BUN_OPTIONS, BUN_BE_BUN, BUN_INSPECT*", () => {
      const binary = readFileSync(path);
      for (const name of DISABLED_BUN_VARIABLES) {
        expect(binary.indexOf(`\0${name}\0`), `${name} is looked up`).toBe(-1);
        // The patched name is there: the runtime is the pinned one, patched, not another.
        expect(binary.indexOf(`\0\0${name.slice(1)}\0`), `${name} patched`).toBeGreaterThan(-1);
      }
    });
  }

  const how = launcher(artifact);
  if (!("prefix" in how)) {
    table.set(artifact.name, { size: statSync(path).size, ran: `not run: ${how.reason}` });
    return;
  }
  const front = frontFor(artifact.arch);
  const frontHow = launcher(front) as { prefix: readonly string[] };
  const where = how.prefix.length ? `under ${how.prefix[0]!.replace(/.*\//, "")}` : "here";

  it(`started alone (no front): nothing on stdout, one line on stderr, status 111 (${where})`, () => {
    expectEmulator(how.prefix);
    const [command, ...args] = [...how.prefix, path];
    const result = run(command!, [...args, "mail.test", "/bin/true"], { input: "QUIT\r\n" });
    expect({ stdout: result.stdout, stderr: result.stderr, status: result.status }).toEqual({ stdout: "", stderr: ALONE_LINE, status: 111 });
  }, 120_000);

  it(`behind dist/${front.name}, answers the dialogues exactly as dist/qmail-popup does (${where})`, () => {
    expectEmulator(frontHow.prefix);
    expectEmulator(how.prefix);
    const [command, ...args] = [...frontHow.prefix, pair(pathOf(front), path, how.prefix)];
    for (const [index, [input, subprogram]] of DIALOGUES.entries()) {
      const result = run(command!, [...args, "mail.test", subprogram], { input });
      // stderr is empty as the reference's: a rejected V8 code cache, for one, warns there.
      expect({ stdout: result.stdout, stderr: result.stderr, status: result.status }).toEqual(reference(index));
    }
    const usage = run(command!, args);
    expect({ stdout: usage.stdout, stderr: usage.stderr, status: usage.status }).toEqual({
      stdout: USAGE,
      stderr: "qmail-popup: usage: qmail-popup hostname subprogram [args...]: no hostname and no subprogram\n",
      status: 1,
    });
    record(artifact, `ran ${where}`);
    record(front, `ran ${where}`);
  }, 240_000);

  if (artifact.name === "qmail-popup-bun-linux-x64-baseline") {
    it("runs on a CPU without AVX (qemu-x86_64 -cpu Nehalem), behind the x64 front", () => {
      expectEmulator(QEMU_NEHALEM);
      const [input, subprogram] = DIALOGUES[0]!;
      const result = run(pair(pathOf(front), path, QEMU_NEHALEM), ["mail.test", subprogram], { input });
      expect({ stdout: result.stdout, stderr: result.stderr, status: result.status }).toEqual(reference(0));
      record(artifact, "ran under qemu-x86_64 -cpu Nehalem");
    }, 240_000);
  }
});

// --- no Node, Bun or Deno on the host; fd 0 and 1 a socket ----------------------

/** A TCP server on 127.0.0.1, on a port the system picks. */
async function listenOnLoopback(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  await new Promise<void>((listening) => server.listen(0, "127.0.0.1", listening));
  return { server, port: (server.address() as { port: number }).port };
}

/** A connected pair of loopback sockets: [the end given to the child, ours]. */
async function socketPair(): Promise<[Socket, Socket]> {
  const { server, port } = await listenOnLoopback();
  const accepted = new Promise<Socket>((done) => server.once("connection", done));
  const ours = connect(port, "127.0.0.1");
  await new Promise<void>((connected) => ours.once("connect", connected));
  const theirs = await accepted;
  server.close();
  return [theirs, ours];
}

/**
 * In a private mount namespace, hides whatever node/bun/deno/nodejs /usr/bin
 * and /bin hold (this machine's own Node.js among them), checks with
 * `command -v` under PATH=/usr/bin:/bin that none is left, then execs the
 * front with fd 0 and 1 on a socket and an environment of PATH alone.
 */
const NO_RUNTIME_SCRIPT = `
for name in node nodejs bun deno; do
  for dir in /usr/bin /bin; do
    if [ -e "$dir/$name" ]; then mount --bind /dev/null "$dir/$name" || exit 97; fi
  done
done
command -v sh >/dev/null || exit 96
for name in node bun deno; do
  if command -v "$name" >/dev/null 2>&1; then echo "still on PATH: $(command -v "$name")" >&2; exit 98; fi
done
echo "PATH=$PATH: command -v node, bun, deno all fail" >&2
exec "$1" mail.test /bin/true
`;

/** Collects what a stream says, and waits for it to say something. */
class Heard {
  text = "";
  private readonly waiters = new Waiters();
  constructor(stream: NodeJS.ReadableStream, ends: NodeJS.EventEmitter) {
    stream.setEncoding("latin1");
    stream.on("data", (chunk: string) => ((this.text += chunk), this.waiters.wake()));
    ends.on("close", () => this.waiters.wake());
  }
  /** Resolves once predicate holds; fails after 20 s with what was heard. */
  async until(predicate: () => boolean, what: string): Promise<void> {
    if (!(await this.waiters.until(predicate))) throw new Error(`timed out waiting for ${what}; heard ${JSON.stringify(this.text)}`);
  }
}

async function greetWithoutRuntimes(front: string): Promise<{ received: string; status: number | null; stderr: string }> {
  const [theirs, ours] = await socketPair();
  const child = spawn("unshare", ["--mount", "--", "/bin/sh", "-c", NO_RUNTIME_SCRIPT, "sh", front], {
    stdio: [theirs, theirs, "pipe"],
    env: { PATH: "/usr/bin:/bin" },
  });
  theirs.destroy();
  const stderr = new Heard(child.stderr!, child);
  const exited = new Promise<number | null>((done) => child.on("close", (code) => done(code)));
  ours.on("error", () => {});
  const closed = new Promise<void>((done) => ours.on("close", () => done()));
  const received = new Heard(ours, ours);
  await received.until(() => received.text.includes("\r\n") || child.exitCode !== null, "the greeting");
  if (received.text === "+OK\r\n") ours.write("QUIT\r\n");
  const status = await exited;
  ours.end();
  await closed;
  return { received: received.text, status, stderr: stderr.text };
}

describe("on a host without Node, Bun or Deno", () => {
  const pairs: readonly (readonly [name: string, front: () => string])[] = [
    ["dist/qmail-popup (the front with dist/qmail-popup-runtime, Bun)", () => HOST_FRONT],
    [`the front with dist/qmail-popup-node-linux-${HOST_ARCH} (the Node SEA)`, () => pair(HOST_FRONT, HOST_SEA)],
  ];
  for (const [name, front] of pairs) {
    it(`${name} greets on a socket with PATH=/usr/bin:/bin and no runtime`, async () => {
      const { received, status, stderr } = await greetWithoutRuntimes(front());
      expect(stderr).toBe("PATH=/usr/bin:/bin: command -v node, bun, deno all fail\n");
      expect(received).toBe("+OK\r\n+OK \r\n");
      expect(status).toBe(0);
    });
  }

  it("the check finds a runtime when one is on PATH (it can fail)", () => {
    const fake = tempDir("qmail-popup-fake-runtime-");
    writeFileSync(join(fake, "deno"), "#!/bin/sh\n", { mode: 0o755 });
    const result = run("unshare", ["--mount", "--", "/bin/sh", "-c", NO_RUNTIME_SCRIPT, "sh", "/bin/true"], { env: { PATH: `/usr/bin:/bin:${fake}` } });
    expect(result.stderr).toBe(`still on PATH: ${fake}/deno\n`);
    expect(result.status).toBe(98);
  });
});

// --- nothing in the working directory or the environment acts on the binaries -----

/**
 * A shared library whose constructor appends "loaded into EXE" to ./marker
 * (the working directory is the hostile one), for LD_PRELOAD. Built once.
 */
let markerLibrary: string | undefined;
function preloadLibrary(): string {
  if (markerLibrary === undefined) {
    const dir = tempDir("qmail-popup-preload-");
    const source = join(dir, "marker.c");
    writeFileSync(
      source,
      `#include <fcntl.h>
#include <string.h>
#include <unistd.h>
__attribute__((constructor)) static void mark(void)
{
  char line[4200] = "loaded into ";
  size_t n = strlen(line);
  ssize_t got = readlink("/proc/self/exe", line + n, 4096);
  if (got > 0) n += (size_t)got;
  line[n++] = '\\n';
  int fd = open("marker", O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd >= 0) { if (write(fd, line, n)) {} close(fd); }
}
`,
    );
    const library = join(dir, "marker.so");
    const built = run("gcc", ["-shared", "-fPIC", "-O2", "-o", library, source]);
    expect(built.stderr).toBe("");
    expect(built.status).toBe(0);
    markerLibrary = library;
  }
  return markerLibrary;
}

interface Hostile {
  readonly dir: string;
  /** A script that appends "loaded ARGV" to marker. */
  readonly evil: string;
  readonly marker: string;
  /** An empty directory that the variables naming a directory point at. */
  readonly out: string;
  /** preloadLibrary(). */
  readonly library: string;
}

/** A directory with a hostile .env, .env.local and bunfig.toml, evil.js that leaves a marker, and out/. */
function hostileDirectory(): Hostile {
  const dir = tempDir("qmail-popup-hostile-");
  const evil = join(dir, "evil.js");
  const marker = join(dir, "marker");
  const out = join(dir, "out");
  mkdirSync(out);
  writeFileSync(evil, `require("fs").appendFileSync(${JSON.stringify(marker)}, "loaded " + process.argv.join(" ") + "\\n");\n`);
  const dotenv = [`NODE_OPTIONS=--require ${evil}`, `BUN_OPTIONS=--preload ${evil}`, "POP3AUTH=+apop", ""].join("\n");
  writeFileSync(join(dir, ".env"), dotenv);
  writeFileSync(join(dir, ".env.local"), dotenv);
  writeFileSync(join(dir, ".env.production"), dotenv);
  writeFileSync(join(dir, "bunfig.toml"), `preload = [${JSON.stringify(evil)}]\n\n[run]\npreload = [${JSON.stringify(evil)}]\n`);
  // What `bun mail.test` would run if the binary turned into bun (BUN_BE_BUN=1).
  writeFileSync(join(dir, "mail.test"), `require(${JSON.stringify(evil)});\n`);
  return { dir, evil, marker, out, library: preloadLibrary() };
}

interface HostileResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly status: number | null;
  /** What was appended to marker (by evil.js or the preloaded library), if anything. */
  readonly marker: string | undefined;
  /** The names in out/. */
  readonly written: readonly string[];
}

/** Runs binary mail.test /bin/true on QUIT in a hostile directory, with PATH and env. */
function runHostile(binary: string, env: (hostile: Hostile) => Record<string, string>): HostileResult {
  const hostile = hostileDirectory();
  const result = run(binary, ["mail.test", "/bin/true"], { input: "QUIT\r\n", cwd: hostile.dir, env: { PATH: "/usr/bin:/bin", ...env(hostile) } });
  return {
    stdout: result.stdout,
    stderr: result.stderr,
    status: result.status,
    marker: existsSync(hostile.marker) ? readFileSync(hostile.marker, "latin1") : undefined,
    written: readdirSync(hostile.out).sort(),
  };
}

/** A session that noticed nothing: greeted, answered QUIT, said nothing on fd 2, loaded and wrote nothing. */
const UNMOVED: HostileResult = { stdout: "+OK\r\n+OK \r\n", stderr: "", status: 0, marker: undefined, written: [] };
/** A runtime alone that noticed nothing: its one line, 111, nothing loaded or written. */
const UNMOVED_ALONE: HostileResult = { stdout: "", stderr: ALONE_LINE, status: 111, marker: undefined, written: [] };

type HostileEnvironment = readonly [name: string, env: (hostile: Hostile) => Record<string, string>];
const NODE_OPTIONS_REQUIRE: HostileEnvironment = ["NODE_OPTIONS=--require", (h) => ({ NODE_OPTIONS: `--require ${h.evil}` })];
const BUN_OPTIONS_PRELOAD: HostileEnvironment = ["BUN_OPTIONS=--preload", (h) => ({ BUN_OPTIONS: `--preload ${h.evil}` })];
// The binary would turn into the bun CLI and run ./mail.test (the host name argument).
const BUN_BE_BUN: HostileEnvironment = ["BUN_BE_BUN=1", () => ({ BUN_BE_BUN: "1" })];
/** What the runtimes themselves are hardened against (the Bun runtime patched, the SEA's execArgvExtension "none"). */
const HARDENED_AGAINST: readonly HostileEnvironment[] = [
  ["none (only the hostile .env and bunfig.toml in the working directory)", () => ({})],
  NODE_OPTIONS_REQUIRE,
  ["NODE_OPTIONS=--import", (h) => ({ NODE_OPTIONS: `--import ${h.evil}` })],
  ["BUN_OPTIONS=--smol with NODE_OPTIONS=--require", (h) => ({ BUN_OPTIONS: "--smol", NODE_OPTIONS: `--require ${h.evil}` })],
  BUN_OPTIONS_PRELOAD,
  // Both together, as the issue puts it.
  ["NODE_OPTIONS=--require and BUN_OPTIONS=--preload", (h) => ({ NODE_OPTIONS: `--require ${h.evil}`, BUN_OPTIONS: `--preload ${h.evil}` })],
  BUN_BE_BUN,
  ["BUN_INSPECT_PRELOAD", (h) => ({ BUN_INSPECT_PRELOAD: h.evil })],
  // The hardened runtime looks those names up as "": an entry with an empty name must not answer.
  ["an entry with an empty name, =--preload", (h) => ({ "": `--preload ${h.evil}` })],
  ["an entry with an empty name, =1", () => ({ "": "1" })],
];
// What acts on a runtime that gets it: only the front's empty environment keeps them out.
const BUN_JSC_SAMPLING_PROFILER: HostileEnvironment = [
  "BUN_JSC_useSamplingProfiler=1 BUN_JSC_samplingProfilerPath=out",
  (h) => ({ BUN_JSC_useSamplingProfiler: "1", BUN_JSC_samplingProfilerPath: h.out }),
];
const BUN_JSC_UNKNOWN: HostileEnvironment = ["BUN_JSC_foo=1 (an option JavaScriptCore does not have)", () => ({ BUN_JSC_foo: "1" })];
const NODE_V8_COVERAGE: HostileEnvironment = ["NODE_V8_COVERAGE=out", (h) => ({ NODE_V8_COVERAGE: h.out })];
const NODE_COMPILE_CACHE: HostileEnvironment = ["NODE_COMPILE_CACHE=out", (h) => ({ NODE_COMPILE_CACHE: h.out })];
const NODE_DEBUG: HostileEnvironment = ["NODE_DEBUG=*", () => ({ NODE_DEBUG: "*" })];
const LD_PRELOAD: HostileEnvironment = ["LD_PRELOAD=marker.so", (h) => ({ LD_PRELOAD: h.library })];
const KEPT_OUT_BY_THE_FRONT: readonly HostileEnvironment[] = [BUN_JSC_SAMPLING_PROFILER, BUN_JSC_UNKNOWN, NODE_V8_COVERAGE, NODE_COMPILE_CACHE, NODE_DEBUG, LD_PRELOAD];
const ALL_HOSTILE = [...HARDENED_AGAINST, ...KEPT_OUT_BY_THE_FRONT];

/** Whether a TCP connection to 127.0.0.1:port is accepted (false: refused). */
function accepts(port: number): Promise<boolean> {
  return new Promise((answer) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => (socket.destroy(), answer(true)));
    socket.once("error", () => answer(false));
  });
}

/**
 * Starts the pair with BUN_INSPECT (or another variable) asking for a
 * debugger that the program waits for (?wait=1). A runtime that got it
 * would listen on the port and run nothing until a debugger connects. After
 * the greeting, the port must refuse connections; then QUIT ends the session.
 */
async function greetUnderBunInspect(front: string, variable: string): Promise<{ greeting: string; debuggerListening: boolean; status: number | null }> {
  // Nothing listens on it (it was free a moment ago).
  const port = await freePort();
  const child = spawn(front, ["mail.test", "/bin/true"], {
    env: { PATH: "/usr/bin:/bin", [variable]: `127.0.0.1:${port}/qmail-popup?wait=1` },
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise<number | null>((done) => child.on("close", (code) => done(code)));
  const stdout = new Heard(child.stdout!, child);
  await stdout.until(() => stdout.text.includes("\r\n"), "the greeting");
  const debuggerListening = await accepts(port);
  child.stdin!.end("QUIT\r\n");
  const status = await exited;
  return { greeting: stdout.text, debuggerListening, status };
}

describe("a hostile working directory and environment act on no binary behind the front", () => {
  describe("dist/qmail-popup (the front with dist/qmail-popup-runtime, Bun)", () => {
    for (const [name, env] of ALL_HOSTILE) {
      it(name, () => {
        expect(runHostile(HOST_FRONT, env)).toEqual(UNMOVED);
      });
    }
    for (const variable of ["BUN_INSPECT", ""]) {
      it(`${variable || "an entry with an empty name"}=127.0.0.1:PORT/…?wait=1: greets at once, and no debugger listens`, async () => {
        expect(await greetUnderBunInspect(HOST_FRONT, variable)).toEqual({ greeting: "+OK\r\n+OK \r\n", debuggerListening: false, status: 0 });
      });
    }
  });

  describe(`the front with dist/qmail-popup-node-linux-${HOST_ARCH} (the Node SEA)`, () => {
    let front = "";
    beforeAll(() => {
      front = pair(HOST_FRONT, HOST_SEA);
    });
    for (const [name, env] of ALL_HOSTILE) {
      it(name, () => {
        expect(runHostile(front, env)).toEqual(UNMOVED);
      });
    }
  });
});

describe("the probes: the same variables act on a runtime started without the front (they can fail)", () => {
  it(`${BUN_JSC_SAMPLING_PROFILER[0]}: the Bun runtime writes a sampling profile into out/`, () => {
    const result = runHostile(HOST_RUNTIME, BUN_JSC_SAMPLING_PROFILER[1]);
    expect(result).toMatchObject({ stdout: "", stderr: ALONE_LINE, status: 111, marker: undefined });
    expect(result.written).toHaveLength(1);
    expect(result.written[0]).toMatch(/^SamplingProfile\.[0-9.]+\.txt$/);
  });

  it(`${BUN_JSC_UNKNOWN[0]}: the Bun runtime refuses to start, before any of the program runs`, () => {
    const result = runHostile(HOST_RUNTIME, BUN_JSC_UNKNOWN[1]);
    expect(result).toMatchObject({ stdout: "", status: 1, marker: undefined, written: [] });
    expect(result.stderr.startsWith("error: invalid JSC environment variable\n\n    BUN_JSC_foo=1\n")).toBe(true);
  });

  it(`${NODE_V8_COVERAGE[0]}: the SEA writes its coverage into out/`, () => {
    const result = runHostile(HOST_SEA, NODE_V8_COVERAGE[1]);
    expect(result).toMatchObject({ stdout: "", stderr: ALONE_LINE, status: 111, marker: undefined });
    expect(result.written).toHaveLength(1);
    expect(result.written[0]).toMatch(/^coverage-\d+-\d+-\d+\.json$/);
  });

  it(`${NODE_COMPILE_CACHE[0]}: the SEA makes its compile cache in out/`, () => {
    const result = runHostile(HOST_SEA, NODE_COMPILE_CACHE[1]);
    expect(result).toMatchObject({ stdout: "", stderr: ALONE_LINE, status: 111, marker: undefined });
    expect(result.written).toHaveLength(1);
    expect(result.written[0]).toMatch(new RegExp(`^v\\d+\\.\\d+\\.\\d+-${HOST_ARCH}-[0-9a-f]+-\\d+$`));
  });

  it(`${NODE_DEBUG[0]}: the SEA writes debug lines on fd 2`, () => {
    const result = runHostile(HOST_SEA, NODE_DEBUG[1]);
    expect(result).toMatchObject({ stdout: "", status: 111, marker: undefined, written: [] });
    expect(result.stderr).toMatch(/^(MODULE \d+: load built-in module \S+\n)+/);
    expect(result.stderr.replace(/^(MODULE \d+: load built-in module \S+\n)+/, "")).toBe(ALONE_LINE);
  });

  for (const runtime of [HOST_RUNTIME, HOST_SEA]) {
    it(`${LD_PRELOAD[0]}: ${runtime.slice(DIST.length + 1)} loads the library`, () => {
      expect(runHostile(runtime, LD_PRELOAD[1])).toEqual({ ...UNMOVED_ALONE, marker: `loaded into ${realpathSync(runtime)}\n` });
    });
  }

  it("NODE_OPTIONS=--require: plain node loads evil.js", () => {
    const result = runHostile(process.execPath, NODE_OPTIONS_REQUIRE[1]);
    expect(result.marker).toMatch(/^loaded /);
  });

  // The same program built from the runtime as npm ships it: the hardening's tests
  // would fail on it. Why the build hardens the runtime.
  describe("qmail-popup's runtime compiled from the unhardened Bun loads code", () => {
    let unhardened = "";
    beforeAll(() => {
      unhardened = join(tempDir("qmail-popup-unhardened-"), "qmail-popup");
      const flags = ["--compile", "--format=esm", "--no-compile-autoload-dotenv", "--no-compile-autoload-bunfig"];
      const build = spawnSync(join(ROOT, "node_modules/.bin/bun"), ["build", ...flags, `--outfile=${unhardened}`, join(ROOT, "src/entry/bun.ts")], { encoding: "latin1" });
      expect(build.status, build.stderr).toBe(0);
    }, 120_000);
    for (const [name, env] of [BUN_OPTIONS_PRELOAD, BUN_BE_BUN]) {
      it(name, () => {
        expect(runHostile(unhardened, env).marker).toMatch(/^loaded /);
      });
    }
    it("its runtime looks these variables up", () => {
      const binary = readFileSync(unhardened);
      for (const name of DISABLED_BUN_VARIABLES) expect(binary.indexOf(`\0${name}\0`), name).toBeGreaterThan(-1);
    });
  });
});

// Defence in depth: what the runtimes are hardened against, they resist alone too.
describe("a runtime started without the front is still hardened: it says its one line, loads and writes nothing", () => {
  for (const runtime of [HOST_RUNTIME, HOST_SEA]) {
    describe(runtime.slice(DIST.length + 1), () => {
      for (const [name, env] of HARDENED_AGAINST) {
        it(name, () => {
          expect(runHostile(runtime, env)).toEqual(UNMOVED_ALONE);
        });
      }
    });
  }
});

// --- SIGUSR1 and the SEA's inspector ---------------------------------------------

/** How long the tests watch for the inspector after SIGUSR1; the probe sees it far sooner. */
const INSPECTOR_WINDOW_MS = 3000;
const INSPECTOR_PORT = 9229;

/**
 * Starts the pair, and once it has greeted, sends SIGUSR1 to its runtime
 * (the front's one child) and watches for INSPECTOR_WINDOW_MS whether the
 * runtime opens a listening socket; then whether 127.0.0.1:9229 accepts a
 * connection; then QUIT.
 */
async function signalRuntime(front: string, runtime: string): Promise<{ listening: string[]; accepted: boolean; stdout: string; stderr: string; status: number | null }> {
  const child = spawn(front, ["mail.test", "/bin/true"], { env: { PATH: "/usr/bin:/bin" }, stdio: ["pipe", "pipe", "pipe"] });
  const exited = new Promise<number | null>((done) => child.on("close", (code) => done(code)));
  const stdout = new Heard(child.stdout!, child);
  const stderr = new Heard(child.stderr!, child);
  await stdout.until(() => stdout.text.includes("\r\n"), "the greeting");
  const runtimePid = onlyChildOf(child.pid!);
  expect(readlinkSync(`/proc/${runtimePid}/exe`)).toBe(realpathSync(runtime));
  process.kill(runtimePid, "SIGUSR1");
  const listening = await listenerWithin(runtimePid, INSPECTOR_WINDOW_MS);
  const accepted = await accepts(INSPECTOR_PORT);
  child.stdin!.end("QUIT\r\n");
  const status = await exited;
  return { listening, accepted, stdout: stdout.text, stderr: stderr.text, status };
}

describe(`SIGUSR1 opens no inspector in the Node SEA, dist/qmail-popup-node-linux-${HOST_ARCH} (--disable-sigusr1)`, () => {
  it("behind the front: after kill -USR1 on the runtime, no socket listens, 9229 refuses, the session goes on", async () => {
    expect(await signalRuntime(pair(HOST_FRONT, HOST_SEA), HOST_SEA)).toEqual({
      listening: [],
      accepted: false,
      stdout: "+OK\r\n+OK \r\n",
      stderr: "",
      status: 0,
    });
  }, 30_000);

  /**
   * The SEA with its protections taken away one by one: without
   * --disable-sigusr1 and without the entry's own SIGUSR1 listener (the
   * bundle's only protection on a Node without the flag).
   */
  function seaWithout(flag: boolean, listener: boolean): string {
    const dir = tempDir("qmail-popup-sigusr1-");
    const buildSea = readFileSync(join(ROOT, "scripts/build-sea"), "latin1");
    const script = flag ? buildSea.replace('"--disable-sigusr1", ', "") : buildSea;
    expect(script !== buildSea).toBe(flag);
    writeFileSync(join(dir, "build-sea"), script);
    const bundle = readFileSync(join(DIST, ".build/qmail-popup-node.cjs"), "latin1");
    const main = listener ? bundle.replace('process.on("SIGUSR1", () => {\n});\n', "") : bundle;
    expect(main !== bundle).toBe(listener);
    writeFileSync(join(dir, "main.cjs"), main);
    const sea = join(dir, "qmail-popup-runtime");
    const built = run("sh", [join(dir, "build-sea"), SEA_BUILDER, SEA_BUILDER, join(dir, "main.cjs"), sea, "true"]);
    expect(built.stderr).toBe("");
    expect(built.status).toBe(0);
    return sea;
  }

  it("without --disable-sigusr1, the entry's own listener alone keeps the inspector shut (the bundle's case)", async () => {
    const sea = seaWithout(true, false);
    expect(await signalRuntime(pair(HOST_FRONT, sea), sea)).toEqual({ listening: [], accepted: false, stdout: "+OK\r\n+OK \r\n", stderr: "", status: 0 });
  }, 120_000);

  it("without the flag and without the listener, the front's confinement (no socket) keeps the inspector shut", async () => {
    const sea = seaWithout(true, true);
    const { listening, accepted, stdout, status } = await signalRuntime(pair(HOST_FRONT, sea), sea);
    expect({ listening, accepted, stdout, status }).toEqual({ listening: [], accepted: false, stdout: "+OK\r\n+OK \r\n", status: 0 });
  }, 120_000);

  // Behind the front built without the runtime's confinement (a test fixture, never installed).
  it("the probe: without the flag, the listener and the confinement, SIGUSR1 opens 127.0.0.1:9229 (it can fail)", async () => {
    const sea = seaWithout(true, true);
    const { listening, accepted, stdout, stderr, status } = await signalRuntime(pair(join(DIST, "test-fixtures/qmail-popup-unconfined"), sea), sea);
    expect(listening).toEqual([`0100007F:${INSPECTOR_PORT.toString(16).toUpperCase().padStart(4, "0")}`]);
    expect(accepted).toBe(true);
    expect(stderr).toMatch(new RegExp(`^Debugger listening on ws://127\\.0\\.0\\.1:${INSPECTOR_PORT}/[0-9a-f-]+\\n`));
    expect({ stdout, status }).toEqual({ stdout: "+OK\r\n+OK \r\n", status: 0 });
  }, 120_000);
});
