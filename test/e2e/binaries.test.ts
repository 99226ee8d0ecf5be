// The release binaries of `make dist` (issue #3): what each one is (ELF class,
// machine, OS/ABI, interpreter), that it holds the compiled program and not a
// plain runtime, that the ones this host can run (directly, or under qemu-user
// where it is installed) greet, that they need no Node/Bun/Deno on the host,
// and that nothing in the working directory or the environment loads code into
// them.
//
// `make test` builds the CI part of the matrix (make dist-ci): dist/qmail-popup,
// dist/qmail-popup-bun-freebsd-x64 and this host's Node SEA; those must exist.
// The rest (make dist) is checked where it has been built.

import { spawn, spawnSync, type SpawnSyncReturns } from "node:child_process";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer, connect, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, tempDir } from "./harness.ts";

const VERSION = /export const VERSION = "([^"]+)";/.exec(readFileSync(join(ROOT, "src/version.ts"), "utf8"))![1]!;
const HOST_ARCH = process.arch;
const DIST = join(ROOT, "dist");

type Arch = "x64" | "arm64";
interface Artifact {
  readonly name: string;
  readonly arch: Arch;
  readonly os: "linux" | "freebsd";
  readonly interpreter: string;
  /** `make dist-ci` builds it, so `make test` requires it. */
  readonly ci: boolean;
}

const INTERPRETER = {
  "linux-x64": "/lib64/ld-linux-x86-64.so.2",
  "linux-arm64": "/lib/ld-linux-aarch64.so.1",
  "linux-x64-musl": "/lib/ld-musl-x86_64.so.1",
  "linux-arm64-musl": "/lib/ld-musl-aarch64.so.1",
  freebsd: "/libexec/ld-elf.so.1",
};

const MATRIX: readonly Artifact[] = [
  { name: "qmail-popup", arch: "x64", os: "linux", interpreter: INTERPRETER["linux-x64"], ci: true },
  { name: "qmail-popup-bun-linux-x64", arch: "x64", os: "linux", interpreter: INTERPRETER["linux-x64"], ci: false },
  { name: "qmail-popup-bun-linux-x64-baseline", arch: "x64", os: "linux", interpreter: INTERPRETER["linux-x64"], ci: false },
  { name: "qmail-popup-bun-linux-x64-musl", arch: "x64", os: "linux", interpreter: INTERPRETER["linux-x64-musl"], ci: false },
  { name: "qmail-popup-bun-linux-arm64", arch: "arm64", os: "linux", interpreter: INTERPRETER["linux-arm64"], ci: false },
  { name: "qmail-popup-bun-linux-arm64-musl", arch: "arm64", os: "linux", interpreter: INTERPRETER["linux-arm64-musl"], ci: false },
  { name: "qmail-popup-bun-freebsd-x64", arch: "x64", os: "freebsd", interpreter: INTERPRETER.freebsd, ci: true },
  { name: "qmail-popup-bun-freebsd-arm64", arch: "arm64", os: "freebsd", interpreter: INTERPRETER.freebsd, ci: false },
  { name: "qmail-popup-node-linux-x64", arch: "x64", os: "linux", interpreter: INTERPRETER["linux-x64"], ci: HOST_ARCH === "x64" },
  { name: "qmail-popup-node-linux-arm64", arch: "arm64", os: "linux", interpreter: INTERPRETER["linux-arm64"], ci: HOST_ARCH === "arm64" },
];

/** The variables scripts/harden-bun-runtime.mjs disables in the runtime the Bun binaries are built from. */
const DISABLED_BUN_VARIABLES = ["BUN_OPTIONS", "BUN_BE_BUN", "BUN_INSPECT", "BUN_INSPECT_CONNECT_TO", "BUN_INSPECT_PRELOAD"];

const HOST_BINARY = join(DIST, "qmail-popup");
const HOST_SEA = join(DIST, `qmail-popup-node-linux-${HOST_ARCH}`);

const pathOf = (artifact: Artifact) => join(DIST, artifact.name);
const built = (artifact: Artifact) => existsSync(pathOf(artifact));

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

function tool(name: string): boolean {
  return run("/bin/sh", ["-c", `command -v ${name}`]).status === 0;
}

/** The newest source the binaries are built from. */
const NEWEST_SOURCE = Math.max(
  ...run("find", [join(ROOT, "src"), join(ROOT, "package.json"), "-type", "f"]).stdout.trim().split("\n").map((file) => statSync(file).mtimeMs),
);

/** How this host runs an artifact: directly, under qemu-user, or not at all (and why). */
function launcher(artifact: Artifact): { prefix: string[] } | { reason: string } {
  if (artifact.os !== "linux") return { reason: "FreeBSD binary" };
  // make dist-ci rebuilds the CI ones; an older build of the others is not compared.
  if (!artifact.ci && built(artifact) && statSync(pathOf(artifact)).mtimeMs < NEWEST_SOURCE) return { reason: "older than src/ (make dist)" };
  if (artifact.interpreter.includes("musl")) return { reason: "musl binary: needs musl's libstdc++ and libgcc (Alpine), not on Debian" };
  if (artifact.arch === HOST_ARCH) return { prefix: [] };
  if (artifact.arch === "arm64" && tool("qemu-aarch64") && existsSync("/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1")) {
    if (artifact.name.includes("-node-") && !existsSync("/usr/aarch64-linux-gnu/lib/libatomic.so.1"))
      return { reason: "no arm64 libatomic (libatomic1-arm64-cross)" };
    return { prefix: ["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"] };
  }
  return { reason: "no qemu-user for this architecture (make dist-emulators)" };
}

const table = new Map<string, { size: number; ran: string }>();
afterAll(() => {
  if (table.size === 0) return;
  const ordered = MATRIX.flatMap((artifact) => (table.has(artifact.name) ? [[artifact.name, table.get(artifact.name)!] as const] : []));
  const rows = ordered.map(([name, { size, ran }]) => `  ${name.padEnd(36)} ${(size / 1e6).toFixed(1).padStart(7)} MB  ${ran}`);
  console.log(`release binaries in dist/ (qmail-popup ${VERSION}):\n${rows.join("\n")}`);
});

/** Dialogues on a pipe: CAPA and QUIT; a login the subprogram refuses; one it accepts (spawn, fd 3). */
const DIALOGUES: readonly (readonly [input: string, subprogram: string])[] = [
  ["CAPA\r\nQUIT\r\n", "/bin/true"],
  ["USER alice\r\nPASS wonderland\r\n", "/bin/false"],
  ["USER alice\r\nPASS wonderland\r\n", "/bin/true"],
];
/** What dist/qmail-popup answers to each dialogue: the reference for every other binary. */
const references = new Map<number, { stdout: string; status: number | null }>();
function reference(index: number): { stdout: string; status: number | null } {
  if (!references.has(index)) {
    const [input, subprogram] = DIALOGUES[index]!;
    const result = run(HOST_BINARY, ["mail.test", subprogram], { input });
    references.set(index, { stdout: result.stdout, status: result.status });
  }
  return references.get(index)!;
}

describe("the CI part of the matrix is built", () => {
  for (const artifact of MATRIX.filter((a) => a.ci)) {
    it(`dist/${artifact.name} exists (make dist-ci)`, () => {
      expect(built(artifact), `dist/${artifact.name} is missing: run make dist-ci`).toBe(true);
    });
  }
});

describe.each(MATRIX.map((artifact) => [artifact.name, artifact] as const))("dist/%s", (_name, artifact) => {
  const path = pathOf(artifact);
  const present = built(artifact);

  it.skipIf(!present)("is a 64-bit ELF executable for its machine and OS, with its interpreter", () => {
    const header = run("readelf", ["-h", path]).stdout;
    expect(header).toMatch(/Class:\s+ELF64/);
    expect(header).toMatch(/Type:\s+EXEC/);
    expect(header).toMatch(artifact.arch === "x64" ? /Machine:\s+Advanced Micro Devices X86-64/ : /Machine:\s+AArch64/);
    expect(header).toMatch(artifact.os === "freebsd" ? /OS\/ABI:\s+UNIX - FreeBSD/ : /OS\/ABI:\s+UNIX - (System V|GNU)/);
    const description = run("file", ["-b", path]).stdout;
    expect(description).toMatch(artifact.arch === "x64" ? /x86-64/ : /aarch64/);
    if (artifact.os === "freebsd") expect(description).toMatch(/for FreeBSD \d+/);
    else expect(description).not.toMatch(/FreeBSD/);
    const segments = run("readelf", ["-l", "-W", path]).stdout;
    expect(segments).toContain(`[Requesting program interpreter: ${artifact.interpreter}]`);
  });

  it.skipIf(!present)(`holds the compiled program (strings finds "qmail-popup ${VERSION}"), not a plain runtime`, () => {
    const found = run("/bin/sh", ["-c", 'strings -a -n 12 "$1" | grep -F -e "$2" -e "$3" | sort -u', "sh", path, `qmail-popup ${VERSION}`, "-ERR usage: qmail-popup hostname subprogram"]).stdout;
    expect(found).toContain(`/*! qmail-popup ${VERSION} */`);
    expect(found).toContain("-ERR usage: qmail-popup hostname subprogram [args...] (qmail-popup ");
    const size = statSync(path).size;
    // A runtime and a 20 kB program: anything much smaller is not a compiled binary.
    expect(size).toBeGreaterThan(50e6);
    table.set(artifact.name, { size, ran: table.get(artifact.name)?.ran ?? "" });
  });

  if (!artifact.name.includes("-node-")) it.skipIf(!present)("is built from the hardened runtime: it looks up none of BUN_OPTIONS, BUN_BE_BUN, BUN_INSPECT*", () => {
    const binary = readFileSync(path);
    for (const name of DISABLED_BUN_VARIABLES) {
      expect(binary.indexOf(`\0${name}\0`), `${name} is looked up`).toBe(-1);
      // The patched name is there: the runtime is the pinned one, patched, not another.
      expect(binary.indexOf(`\0\0${name.slice(1)}\0`), `${name} patched`).toBeGreaterThan(-1);
    }
  });

  const how = launcher(artifact);
  it.skipIf(!present || !("prefix" in how))(`greets and answers like dist/qmail-popup (${"prefix" in how ? (how.prefix[0] ?? "directly") : how.reason})`, () => {
    const prefix = "prefix" in how ? how.prefix : [];
    const [command, ...args] = [...prefix, path];
    for (const [index, [input, subprogram]] of DIALOGUES.entries()) {
      const result = run(command!, [...args, "mail.test", subprogram], { input });
      // Nothing on stderr: a rejected V8 code cache, for one, warns there.
      expect(result.stderr).toBe("");
      expect(result.stdout.startsWith("+OK\r\n")).toBe(true);
      expect({ stdout: result.stdout, status: result.status }).toEqual(reference(index));
    }
    expect(reference(0)).toMatchObject({ status: 0 });
    expect(reference(0).stdout.endsWith("+OK \r\n")).toBe(true);
    expect(reference(1).stdout).toMatch(/^-ERR .*authorization failed\r\n$/m);
    expect(reference(1).status).toBe(1);
    expect(reference(2).status).toBe(0);
    const usage = run(command!, args);
    expect(usage.status).toBe(1);
    expect(usage.stdout).toBe(`-ERR usage: qmail-popup hostname subprogram [args...] (qmail-popup ${VERSION})\r\n`);
    const entry = table.get(artifact.name);
    if (entry) entry.ran = prefix.length ? `ran under ${prefix[0]}` : "ran here";
  }, 240_000);
  if (present && !("prefix" in how) && !table.has(artifact.name)) {
    table.set(artifact.name, { size: statSync(path).size, ran: `not run: ${how.reason}` });
  }

  if (artifact.name === "qmail-popup-bun-linux-x64-baseline") {
    const emulated = present && HOST_ARCH === "x64" && tool("qemu-x86_64");
    it.skipIf(!emulated)("runs on a CPU without AVX (qemu-x86_64 -cpu Nehalem)", () => {
      const [input, subprogram] = DIALOGUES[0]!;
      const result = run("qemu-x86_64", ["-cpu", "Nehalem", path, "mail.test", subprogram], { input });
      expect({ stdout: result.stdout, status: result.status }).toEqual(reference(0));
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
 * binary with fd 0 and 1 on a socket and an environment of PATH alone.
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

async function greetWithoutRuntimes(binary: string): Promise<{ received: string; status: number | null; stderr: string }> {
  const [theirs, ours] = await socketPair();
  const child = spawn("unshare", ["--mount", "--", "/bin/sh", "-c", NO_RUNTIME_SCRIPT, "sh", binary], {
    stdio: [theirs, theirs, "pipe"],
    env: { PATH: "/usr/bin:/bin" },
  });
  theirs.destroy();
  let stderr = "";
  child.stderr!.setEncoding("latin1");
  child.stderr!.on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((done) => child.on("close", (code) => done(code)));
  let received = "";
  let waiter: (() => void) | undefined;
  const wake = () => waiter?.();
  ours.setEncoding("latin1");
  ours.on("data", (chunk: string) => {
    received += chunk;
    wake();
  });
  ours.on("error", () => {});
  const closed = new Promise<void>((done) => ours.on("close", () => (done(), wake())));
  child.on("close", wake);
  const until = (predicate: () => boolean) =>
    new Promise<void>((done, fail) => {
      const timer = setTimeout(() => fail(new Error(`timed out; received ${JSON.stringify(received)}; stderr ${stderr}`)), 20_000);
      waiter = () => {
        if (predicate()) {
          clearTimeout(timer);
          waiter = undefined;
          done();
        }
      };
      waiter();
    });
  await until(() => received.includes("\r\n") || child.exitCode !== null);
  if (received === "+OK\r\n") ours.write("QUIT\r\n");
  const status = await exited;
  ours.end();
  await closed;
  return { received, status, stderr };
}

describe("on a host without Node, Bun or Deno", () => {
  for (const binary of [HOST_BINARY, HOST_SEA]) {
    const name = binary.slice(DIST.length + 1);
    it.skipIf(!existsSync(binary))(`dist/${name} greets on a socket with PATH=/usr/bin:/bin and no runtime`, async () => {
      const { received, status, stderr } = await greetWithoutRuntimes(binary);
      expect(stderr).toContain("command -v node, bun, deno all fail");
      expect(received).toBe("+OK\r\n+OK \r\n");
      expect(status).toBe(0);
    });
  }

  it("the check finds a runtime when one is on PATH (it can fail)", () => {
    const fake = tempDir("qmail-popup-fake-runtime-");
    writeFileSync(join(fake, "deno"), "#!/bin/sh\n", { mode: 0o755 });
    const result = run("unshare", ["--mount", "--", "/bin/sh", "-c", NO_RUNTIME_SCRIPT, "sh", "/bin/true"], { env: { PATH: `/usr/bin:/bin:${fake}` } });
    expect(result.stderr).toContain(`still on PATH: ${fake}/deno`);
    expect(result.status).toBe(98);
  });
});

// --- nothing in the working directory or the environment loads code -------------

/** A directory with a hostile .env, .env.local and bunfig.toml, and evil.js that leaves a marker. */
function hostileDirectory(): { dir: string; evil: string; marker: string } {
  const dir = tempDir("qmail-popup-hostile-");
  const evil = join(dir, "evil.js");
  const marker = join(dir, "marker");
  writeFileSync(evil, `require("fs").appendFileSync(${JSON.stringify(marker)}, "loaded " + process.argv.join(" ") + "\\n");\n`);
  const dotenv = [`NODE_OPTIONS=--require ${evil}`, `BUN_OPTIONS=--preload ${evil}`, "POP3AUTH=+apop", ""].join("\n");
  writeFileSync(join(dir, ".env"), dotenv);
  writeFileSync(join(dir, ".env.local"), dotenv);
  writeFileSync(join(dir, ".env.production"), dotenv);
  writeFileSync(join(dir, "bunfig.toml"), `preload = [${JSON.stringify(evil)}]\n\n[run]\npreload = [${JSON.stringify(evil)}]\n`);
  // What `bun mail.test` would run if the binary turned into bun (BUN_BE_BUN=1).
  writeFileSync(join(dir, "mail.test"), `require(${JSON.stringify(evil)});\n`);
  return { dir, evil, marker };
}

function runHostile(binary: string, env: (evil: string) => Record<string, string>): { greeting: string; marker: string | undefined } {
  const { dir, evil, marker } = hostileDirectory();
  const result = run(binary, ["mail.test", "/bin/true"], { input: "QUIT\r\n", cwd: dir, env: { PATH: "/usr/bin:/bin", ...env(evil) } });
  return { greeting: result.stdout, marker: existsSync(marker) ? readFileSync(marker, "latin1") : undefined };
}

type HostileEnvironment = [name: string, env: (evil: string) => Record<string, string>];
const BUN_OPTIONS_PRELOAD: HostileEnvironment = ["BUN_OPTIONS=--preload", (evil) => ({ BUN_OPTIONS: `--preload ${evil}` })];
// The binary would turn into the bun CLI and run ./mail.test (the host name argument).
const BUN_BE_BUN: HostileEnvironment = ["BUN_BE_BUN=1", () => ({ BUN_BE_BUN: "1" })];
const HOSTILE_ENVIRONMENTS: HostileEnvironment[] = [
  ["none (only the hostile .env and bunfig.toml in the working directory)", () => ({})],
  ["NODE_OPTIONS=--require", (evil) => ({ NODE_OPTIONS: `--require ${evil}` })],
  ["NODE_OPTIONS=--import", (evil) => ({ NODE_OPTIONS: `--import ${evil}` })],
  ["BUN_OPTIONS=--smol with NODE_OPTIONS=--require", (evil) => ({ BUN_OPTIONS: "--smol", NODE_OPTIONS: `--require ${evil}` })],
  BUN_OPTIONS_PRELOAD,
  // Both together, as the issue puts it.
  ["NODE_OPTIONS=--require and BUN_OPTIONS=--preload", (evil) => ({ NODE_OPTIONS: `--require ${evil}`, BUN_OPTIONS: `--preload ${evil}` })],
  BUN_BE_BUN,
  ["BUN_INSPECT_PRELOAD", (evil) => ({ BUN_INSPECT_PRELOAD: evil })],
  // The hardened runtime looks those names up as "": an entry with an empty name must not answer.
  ["an entry with an empty name, =--preload", (evil) => ({ "": `--preload ${evil}` })],
  ["an entry with an empty name, =1", () => ({ "": "1" })],
];

/** A TCP port nothing listens on (it was free a moment ago). */
async function unusedPort(): Promise<number> {
  const { server, port } = await listenOnLoopback();
  await new Promise<void>((closed) => server.close(() => closed()));
  return port;
}

/** Whether a TCP connection to 127.0.0.1:port is accepted (false: refused). */
function accepts(port: number): Promise<boolean> {
  return new Promise((answer) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => (socket.destroy(), answer(true)));
    socket.once("error", () => answer(false));
  });
}

/**
 * Starts binary with BUN_INSPECT (or another variable) asking for a debugger that the program waits
 * for (?wait=1). A runtime that honours it listens on the port and runs
 * nothing until a debugger connects; a hardened one greets. After the
 * greeting, the port must refuse connections; then QUIT ends the session.
 */
async function greetUnderBunInspect(binary: string, variable: string): Promise<{ greeting: string; debuggerListening: boolean; status: number | null }> {
  const port = await unusedPort();
  const child = spawn(binary, ["mail.test", "/bin/true"], {
    env: { PATH: "/usr/bin:/bin", [variable]: `127.0.0.1:${port}/qmail-popup?wait=1` },
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise<number | null>((done) => child.on("close", (code) => done(code)));
  child.stdout!.setEncoding("latin1");
  let received = "";
  await new Promise<void>((greeted) =>
    child.stdout!.on("data", (chunk: string) => {
      received += chunk;
      if (received.includes("\r\n")) greeted();
    }),
  );
  const debuggerListening = await accepts(port);
  child.stdin!.end("QUIT\r\n");
  const status = await exited;
  return { greeting: received, debuggerListening, status };
}

describe("a hostile working directory and environment load no code", () => {
  it("the probe works: plain node loads evil.js from NODE_OPTIONS (it can fail)", () => {
    const { dir, evil, marker } = hostileDirectory();
    run(process.execPath, ["-e", "0"], { cwd: dir, env: { PATH: "/usr/bin:/bin", NODE_OPTIONS: `--require ${evil}` } });
    expect(existsSync(marker)).toBe(true);
  });

  describe.skipIf(!existsSync(HOST_SEA))(`the Node SEA, dist/qmail-popup-node-linux-${HOST_ARCH}`, () => {
    for (const [name, env] of HOSTILE_ENVIRONMENTS) {
      it(name, () => {
        const { greeting, marker } = runHostile(HOST_SEA, env);
        expect(marker).toBeUndefined();
        expect(greeting).toBe("+OK\r\n+OK \r\n");
      });
    }
  });

  describe.skipIf(!existsSync(HOST_BINARY))("the Bun binary, dist/qmail-popup", () => {
    for (const [name, env] of HOSTILE_ENVIRONMENTS) {
      it(name, () => {
        const { greeting, marker } = runHostile(HOST_BINARY, env);
        expect(marker).toBeUndefined();
        expect(greeting).toBe("+OK\r\n+OK \r\n");
      });
    }
    for (const variable of ["BUN_INSPECT", ""]) {
      it(`${variable || "an entry with an empty name"}=127.0.0.1:PORT/…?wait=1: greets at once, and no debugger listens`, async () => {
        expect(await greetUnderBunInspect(HOST_BINARY, variable)).toEqual({ greeting: "+OK\r\n+OK \r\n", debuggerListening: false, status: 0 });
      });
    }
  });

  // The same program built from the runtime as npm ships it: the tests above
  // would fail on it. Why the build hardens the runtime.
  describe("the probe works: qmail-popup compiled from the unhardened runtime loads code (it can fail)", () => {
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
