#!/usr/bin/env node
// qmail-popup benchmark (issue #7): `make bench`, or `node scripts/bench.mjs`
// after `make all` (and `make test-deps` for tcpserver).
//
// One tcpserver on 127.0.0.1 per variant, each started as the e2e harness
// starts it (-v -R -H -l localhost, environment PATH only, fd 5 on /dev/null),
// synchronised on tcpserver's own -v lines: "status: 0/N" once bound,
// "ok PID ... :127.0.0.1::CLIENTPORT" per connection, "end PID status N".
// Per variant it measures:
//   greeting   connect -> first CRLF (process.hrtime.bigint() around net.connect),
//              then QUIT (the floor: a half-close) and wait for the server's close;
//   session    connect -> USER -> PASS -> STAT -> QUIT -> "+OK " of the QUIT,
//              with a fast checkpassword and post-login stand-in (scripts/bench-fixtures/:
//              C compiled here with cc into dist/bench/fixtures/, or the sh twins
//              with BENCH_FIXTURES=sh); the floor has no session: n/a;
//   rate       sustained greeting+QUIT connections per second at concurrency 8;
//   cpu        user+system CPU per connection: tcpserver's cutime+cstime (its
//              reaped children, /proc/PID/stat) over the greeting and session phases;
//   memory     PSS, Private_Dirty (and RSS) from /proc/PID/smaps_rollup of the pid
//              tcpserver reports, with 20 connections idle after the greeting and
//              with 20 sessions logged in (then also the post-login child's);
//   size       of the file that runs (for the Node and Deno bundles the runtime is extra).
// Greeting and session timings are interleaved round by round, one connection per
// variant per round, in an order rotated each round, so that drift hits all variants
// alike; the rate runs in 1 s slices, variant after variant, round after round. Every
// timing is also given as a ratio to the floor baseline of the same run: /usr/bin/printf
// '+OK\r\n' under the same tcpserver (a program that starts, greets and exits).
//
// Output: a plain table on stdout, everything (raw samples too) in
// dist/bench/bench-<UTC time>.json and dist/bench/latest.json.
//
// Variants (a missing artifact is skipped with a note; those from dist/ run from
// copies in dist/bench/run/, so that a build in the same checkout cannot swap them mid-run):
//   floor   /usr/bin/printf '+OK\r\n'
//   bun     dist/qmail-popup                    (bun build --compile)
//   node    node dist/qmail-popup-node.mjs      (the node that runs this script)
//   deno    deno run -A --no-config --quiet dist/qmail-popup-deno.mjs
//   sea     dist/qmail-popup-node-linux-<arch>  (Node single executable, if built)
//   bun-hello, node-hello, deno-hello   runtime floors: scripts/bench-fixtures/hello.mjs
//           (greet, one read, exit) under bun, node and deno run: what the runtime
//           costs before any of qmail-popup; greeting, rate and idle memory only.
//           BENCH_RUNTIME_FLOORS=0 leaves them out.
//   ref     a C qmail-popup, run as `qmail-popup hostname subprogram`: $QMAIL_POPUP_REF,
//           else the first of dist/bench/ref/{var/qmail/bin,usr/sbin,usr/bin,}/qmail-popup.
//           Debian would give one with
//             apt-get download qmail && dpkg -x qmail_*.deb dist/bench/ref
//           but no Debian release on deb.debian.org packages qmail/netqmail any more
//           (bookworm, bullseye, trixie, sid: no candidate; buster is archived), so
//           put a qmail-popup built from netqmail/notqmail there, or name it in
//           QMAIL_POPUP_REF.
//
// Environment (defaults in brackets):
//   BENCH_QUICK=1          a short run (under a minute): 40 rounds, 2 s of rate, 5 held connections
//   BENCH_GREETINGS [300]  greeting rounds      BENCH_SESSIONS [200]  session rounds
//   BENCH_WARMUP [10]      untimed rounds first BENCH_RATE_SECONDS [10] rate time per variant
//   BENCH_RATE_SLICE [1]   seconds per slice    BENCH_CONCURRENCY [8]
//   BENCH_HELD [20]        connections held for the memory measurement
//   BENCH_SETTLE_MS [500]  wait before reading smaps of held connections
//   BENCH_VARIANTS         a comma list of ids to run (floor is always run)
//   BENCH_FIXTURES [c]     c, or sh (c needs cc; without cc, sh)
//   BENCH_OUT              the JSON file [dist/bench/bench-<time>.json]
//   QMAIL_POPUP_REF        a C qmail-popup to compare with
//
// All tcpservers run in their own process group and are killed with all their
// children at the end, on an error and on Ctrl-C (SIGINT/SIGTERM/SIGHUP).

import { spawn, spawnSync, execFileSync } from "node:child_process";
import {
  chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync,
  realpathSync, statSync, writeFileSync,
} from "node:fs";
import { createServer, connect } from "node:net";
import { arch, cpus, loadavg, release } from "node:os";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const DIST = join(ROOT, "dist");
const OUT_DIR = join(DIST, "bench");
const FIXTURE_SRC = join(ROOT, "scripts/bench-fixtures");
const HOSTNAME = "bench.example.org";

// --- configuration ---------------------------------------------------------------

const env = process.env;
const quick = env.BENCH_QUICK !== undefined && env.BENCH_QUICK !== "" && env.BENCH_QUICK !== "0";
function intEnv(name, normal, short) {
  const raw = env[name];
  if (raw === undefined || raw === "") return quick ? short : normal;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name}=${raw}: not a number`);
  return value;
}
const config = {
  quick,
  greetings: intEnv("BENCH_GREETINGS", 300, 40),
  sessions: intEnv("BENCH_SESSIONS", 200, 40),
  warmup: intEnv("BENCH_WARMUP", 10, 3),
  rateSeconds: intEnv("BENCH_RATE_SECONDS", 10, 2),
  rateSlice: intEnv("BENCH_RATE_SLICE", 1, 1),
  concurrency: intEnv("BENCH_CONCURRENCY", 8, 8),
  held: intEnv("BENCH_HELD", 20, 5),
  settleMs: intEnv("BENCH_SETTLE_MS", 500, 300),
  connectionTimeoutMs: intEnv("BENCH_TIMEOUT_MS", 30_000, 30_000),
  fixtures: env.BENCH_FIXTURES || "c",
  runtimeFloors: env.BENCH_RUNTIME_FLOORS !== "0",
  variants: env.BENCH_VARIANTS ? env.BENCH_VARIANTS.split(",").map((s) => s.trim()).filter(Boolean) : undefined,
};

// --- small helpers ---------------------------------------------------------------

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));
const nsToMs = (ns) => Number(ns) / 1e6;
const mib = (kb) => kb / 1024;

function stats(samples) {
  if (samples.length === 0) return undefined;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = (p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
  return {
    n: sorted.length,
    median: sorted.length % 2 ? sorted[(sorted.length - 1) / 2] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2,
    p99: rank(0.99),
    mean: sorted.reduce((a, b) => a + b, 0) / sorted.length,
    min: sorted[0],
    max: sorted[sorted.length - 1],
  };
}

function median(values) {
  return stats(values)?.median;
}

function fileSize(path) {
  try {
    return statSync(realpathSync(path)).size;
  } catch {
    return undefined;
  }
}

function mtimeOf(path) {
  try {
    return statSync(path).mtime.toISOString();
  } catch {
    return undefined;
  }
}

function commandOutput(file, args) {
  try {
    return execFileSync(file, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 20_000 }).trim();
  } catch {
    return undefined;
  }
}

function which(name) {
  for (const dir of (env.PATH ?? "/usr/bin:/bin").split(":")) {
    const path = join(dir || ".", name);
    try {
      if (statSync(path).isFile()) return path;
    } catch {}
  }
  return undefined;
}

const CLK_TCK = Number(commandOutput("getconf", ["CLK_TCK"])) || 100;

/** /proc/PID/stat, the fields after "(comm)": [state, ppid, ...]. */
function procStat(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "latin1");
    return text.slice(text.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/** CPU time (ms) of a process's reaped children: cutime + cstime. */
function childrenCpuMs(pid) {
  const fields = procStat(pid);
  if (fields === undefined) return undefined;
  // stat fields 16 and 17 (1-based, comm is 2): index 13 and 14 after the comm.
  return ((Number(fields[13]) + Number(fields[14])) * 1000) / CLK_TCK;
}

/** ppid -> [pid] over the whole of /proc. */
function childrenTable() {
  const table = new Map();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = procStat(entry);
    if (fields === undefined) continue;
    const ppid = Number(fields[1]);
    if (!table.has(ppid)) table.set(ppid, []);
    table.get(ppid).push(Number(entry));
  }
  return table;
}

/** Rss, Pss, Private_Dirty, ... (kB) from /proc/PID/smaps_rollup. */
function smapsRollup(pid) {
  let text;
  try {
    text = readFileSync(`/proc/${pid}/smaps_rollup`, "latin1");
  } catch {
    return undefined;
  }
  const values = {};
  for (const match of text.matchAll(/^(\w+):\s+(\d+) kB$/gm)) values[match[1]] = Number(match[2]);
  return values;
}

function commOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/comm`, "latin1").trim();
  } catch {
    return undefined;
  }
}

async function freePort() {
  return new Promise((done, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

// --- tcpserver -------------------------------------------------------------------

const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : undefined;
// Closes every descriptor but 0-2 and 5, so that nothing of ours reaches the variant.
const CLOSE_FDS_AND_EXEC = "import os, sys; os.closerange(3, 5); os.closerange(6, 1024); os.execvp(sys.argv[1], sys.argv[1:])";
const servers = new Set();

class TcpServer {
  constructor(variant) {
    this.variant = variant;
    this.port = 0;
    this.child = undefined;
    this.buffer = "";
    this.bound = false;
    this.bindFailed = false;
    this.pids = new Map(); // client port -> pid
    this.pidWaiters = new Map(); // client port -> resolve
    this.oks = 0;
    this.ends = 0;
    this.statuses = new Map(); // "exit N" / "signal N" -> count
    this.otherLines = []; // fd 2 of the variant, and anything else tcpserver said
    this.otherCount = 0;
    this.waiters = [];
  }

  async start() {
    for (let attempt = 0; attempt < 5; attempt++) {
      this.port = await freePort();
      this.buffer = "";
      this.bound = false;
      this.bindFailed = false;
      const devnull = openSync("/dev/null", "r+");
      const tcpserver = ["tcpserver", "-v", "-R", "-H", "-l", "localhost", "-c", String(Math.max(64, config.held + config.concurrency + 8)), "127.0.0.1", String(this.port), ...this.variant.argv];
      const [file, args] = PYTHON ? [PYTHON, ["-c", CLOSE_FDS_AND_EXEC, ...tcpserver]] : [which("tcpserver"), tcpserver.slice(1)];
      const child = spawn(file, args, {
        stdio: ["ignore", "ignore", "pipe", "ignore", "ignore", devnull],
        env: { PATH: "/usr/bin:/bin" },
        detached: true, // its own process group: stop() kills tcpserver and all its children
      });
      closeSync(devnull);
      this.child = child;
      servers.add(this);
      child.stderr.setEncoding("latin1");
      child.stderr.on("data", (chunk) => this.onData(chunk));
      child.on("exit", () => this.wake());
      child.on("error", () => this.wake());
      await this.until(() => this.bound || this.bindFailed || child.exitCode !== null || child.signalCode !== null, 20_000);
      if (this.bound) return;
      await this.stop();
      if (!this.bindFailed) throw new Error(`tcpserver for ${this.variant.id} did not start: ${this.otherLines.join("\n")}`);
    }
    throw new Error(`tcpserver for ${this.variant.id}: no free port after 5 tries`);
  }

  onData(chunk) {
    this.buffer += chunk;
    let newline;
    while ((newline = this.buffer.indexOf("\n")) >= 0) {
      const line = this.buffer.slice(0, newline);
      this.buffer = this.buffer.slice(newline + 1);
      this.onLine(line);
    }
    this.wake();
  }

  onLine(line) {
    let match;
    if ((match = /^tcpserver: ok (\d+) .*:(\d+)$/.exec(line))) {
      this.oks++;
      const pid = Number(match[1]);
      const clientPort = Number(match[2]);
      const waiter = this.pidWaiters.get(clientPort);
      if (waiter) {
        this.pidWaiters.delete(clientPort);
        waiter(pid);
      } else this.pids.set(clientPort, pid);
    } else if ((match = /^tcpserver: end \d+ status (\d+)$/.exec(line))) {
      this.ends++;
      const raw = Number(match[1]);
      const key = (raw & 0x7f) === 0 ? `exit ${raw >> 8}` : `signal ${raw & 0x7f}`;
      this.statuses.set(key, (this.statuses.get(key) ?? 0) + 1);
    } else if (/^tcpserver: status: \d+\/\d+$/.test(line)) {
      this.bound = true;
    } else if (/^tcpserver: pid \d+ from /.test(line)) {
      // the connection's pid, again in the ok line
    } else {
      if (/unable to bind/.test(line)) this.bindFailed = true;
      this.otherCount++;
      if (this.otherLines.length < 20) this.otherLines.push(line);
    }
  }

  wake() {
    for (const wake of this.waiters.splice(0)) wake();
  }

  until(predicate, timeoutMs) {
    return new Promise((done) => {
      const deadline = setTimeout(() => done(false), timeoutMs);
      const check = () => {
        if (predicate()) {
          clearTimeout(deadline);
          done(true);
        } else this.waiters.push(check);
      };
      check();
    });
  }

  /** The pid tcpserver started for the connection from this client port. */
  pidFor(clientPort, timeoutMs = 20_000) {
    const known = this.pids.get(clientPort);
    if (known !== undefined) {
      this.pids.delete(clientPort);
      return Promise.resolve(known);
    }
    return new Promise((done, reject) => {
      const deadline = setTimeout(() => {
        this.pidWaiters.delete(clientPort);
        reject(new Error(`${this.variant.id}: tcpserver reported no connection from port ${clientPort}`));
      }, timeoutMs);
      this.pidWaiters.set(clientPort, (pid) => {
        clearTimeout(deadline);
        done(pid);
      });
    });
  }

  /** Waits until tcpserver has reaped every connection it started. */
  async quiesce(timeoutMs = 20_000) {
    this.pids.clear();
    return this.until(() => this.ends >= this.oks, timeoutMs);
  }

  childrenCpuMs() {
    return this.child?.pid === undefined ? undefined : childrenCpuMs(this.child.pid);
  }

  groupAlive() {
    try {
      process.kill(-this.child.pid, 0);
      return true;
    } catch {
      return false;
    }
  }

  /** SIGTERM to the whole process group, SIGKILL after 3 s; waits until it is empty. */
  async stop() {
    const child = this.child;
    if (child?.pid === undefined) return;
    const signalGroup = (signal) => {
      try {
        process.kill(-child.pid, signal);
      } catch {}
    };
    signalGroup("SIGTERM");
    for (let waited = 0; this.groupAlive() && waited < 3000; waited += 20) await sleep(20);
    if (this.groupAlive()) signalGroup("SIGKILL");
    for (let waited = 0; this.groupAlive() && waited < 3000; waited += 20) await sleep(20);
    servers.delete(this);
  }

  /** For process exit: no waiting, only signals. */
  killNow() {
    if (this.child?.pid === undefined) return;
    try {
      process.kill(-this.child.pid, "SIGKILL");
    } catch {}
  }
}

async function stopAll() {
  await Promise.all([...servers].map((server) => server.stop()));
}

let interrupted = false;
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`\nbench: ${signal}: stopping the servers\n`);
    for (const socket of sockets) socket.destroy();
    stopAll().finally(() => process.exit(130));
  });
}
process.on("exit", () => {
  for (const server of servers) server.killNow();
});

// --- the client ------------------------------------------------------------------

const sockets = new Set();

/** A client connection that reads CRLF lines; nothing is timed here. */
class LineClient {
  constructor(socket) {
    this.socket = socket;
    this.buffer = "";
    this.lines = [];
    this.closed = false;
    this.error = undefined;
    this.waiters = [];
    socket.setEncoding("latin1");
    socket.on("data", (chunk) => {
      this.buffer += chunk;
      let newline;
      while ((newline = this.buffer.indexOf("\n")) >= 0) {
        this.lines.push(this.buffer.slice(0, newline + 1));
        this.buffer = this.buffer.slice(newline + 1);
      }
      this.wake();
    });
    socket.on("close", () => {
      this.closed = true;
      sockets.delete(socket);
      this.wake();
    });
    socket.on("error", (error) => {
      this.error ??= error;
    });
  }

  static connect(port, timeoutMs = config.connectionTimeoutMs) {
    return new Promise((done, reject) => {
      const socket = connect({ port, host: "127.0.0.1", noDelay: true });
      sockets.add(socket);
      const fail = (error) => {
        clearTimeout(deadline);
        socket.destroy();
        reject(error);
      };
      const deadline = setTimeout(() => fail(new Error("connect timed out")), timeoutMs);
      socket.once("error", fail);
      socket.once("connect", () => {
        clearTimeout(deadline);
        socket.off("error", fail);
        done(new LineClient(socket));
      });
    });
  }

  get localPort() {
    return this.socket.localPort;
  }

  wake() {
    for (const wake of this.waiters.splice(0)) wake();
  }

  until(predicate, what, timeoutMs = config.connectionTimeoutMs) {
    return new Promise((done, reject) => {
      const deadline = setTimeout(() => reject(new Error(`timed out waiting for ${what}; pending ${JSON.stringify(this.buffer)}`)), timeoutMs);
      const check = () => {
        if (predicate()) {
          clearTimeout(deadline);
          done();
        } else this.waiters.push(check);
      };
      check();
    });
  }

  async line(what) {
    await this.until(() => this.lines.length > 0 || this.closed, what);
    if (this.lines.length === 0) throw new Error(`connection closed before ${what}${this.error ? ` (${this.error.code ?? this.error.message})` : ""}; pending ${JSON.stringify(this.buffer)}`);
    return this.lines.shift();
  }

  send(text) {
    if (!this.socket.destroyed) this.socket.write(text, "latin1");
  }

  async whenClosed() {
    await this.until(() => this.closed, "the server to close");
  }

  destroy() {
    this.socket.destroy();
  }
}

function expectOk(line, what) {
  if (!line.startsWith("+OK")) throw new Error(`${what}: ${JSON.stringify(line)}`);
}

/** connect -> first CRLF, timed; then QUIT (or, for the floor, a half-close) and the server's close. */
function greetingOnce(variant, port) {
  return new Promise((done, reject) => {
    let greetedNs;
    let buffer = "";
    const start = process.hrtime.bigint();
    const socket = connect({ port, host: "127.0.0.1", noDelay: true });
    sockets.add(socket);
    const deadline = setTimeout(() => {
      socket.destroy();
      reject(new Error(greetedNs === undefined ? "no greeting in time" : "no close in time"));
    }, config.connectionTimeoutMs);
    socket.setEncoding("latin1");
    socket.on("data", (chunk) => {
      if (greetedNs !== undefined) return;
      buffer += chunk;
      if (!buffer.includes("\r\n")) return;
      greetedNs = process.hrtime.bigint() - start;
      if (!buffer.startsWith("+OK")) {
        clearTimeout(deadline);
        socket.destroy();
        reject(new Error(`greeting ${JSON.stringify(buffer)}`));
        return;
      }
      if (variant.floor) socket.end();
      else socket.write("QUIT\r\n");
    });
    socket.on("error", (error) => {
      // After the greeting a reset (the floor is gone before our half-close) is no failure.
      if (greetedNs !== undefined) return;
      clearTimeout(deadline);
      socket.destroy();
      reject(error);
    });
    socket.on("close", () => {
      sockets.delete(socket);
      clearTimeout(deadline);
      if (greetedNs === undefined) reject(new Error(`closed before the greeting: ${JSON.stringify(buffer)}`));
      else done(nsToMs(greetedNs));
    });
  });
}

/** connect -> greeting, USER, PASS, STAT, QUIT -> "+OK " of the QUIT, timed; then the server's close. */
async function sessionOnce(port) {
  const start = process.hrtime.bigint();
  const client = await LineClient.connect(port);
  try {
    expectOk(await client.line("the greeting"), "greeting");
    client.send("USER bench\r\n");
    expectOk(await client.line("the USER reply"), "USER");
    client.send("PASS secret\r\n");
    expectOk(await client.line("the PASS reply"), "PASS");
    client.send("STAT\r\n");
    const stat = await client.line("the STAT reply");
    if (stat !== "+OK 0 0\r\n") throw new Error(`STAT: ${JSON.stringify(stat)}`);
    client.send("QUIT\r\n");
    expectOk(await client.line("the QUIT reply"), "QUIT");
    const elapsed = process.hrtime.bigint() - start;
    await client.whenClosed();
    return nsToMs(elapsed);
  } finally {
    client.destroy();
  }
}

// --- the variants ----------------------------------------------------------------

function fixtures() {
  const dir = join(OUT_DIR, "fixtures");
  if (config.fixtures === "c") {
    const cc = which("cc") ?? which("gcc");
    if (cc !== undefined) {
      mkdirSync(dir, { recursive: true });
      for (const name of ["checkpassword", "pop3d"]) {
        const made = spawnSync(cc, ["-O2", "-Wall", "-o", join(dir, name), join(FIXTURE_SRC, `${name}.c`)], { encoding: "utf8" });
        if (made.status !== 0) throw new Error(`cc ${name}.c failed:\n${made.stderr}`);
      }
      return { kind: "c", checkpassword: join(dir, "checkpassword"), pop3d: join(dir, "pop3d") };
    }
    process.stderr.write("bench: no cc: using the sh fixtures\n");
  } else if (config.fixtures !== "sh") throw new Error(`BENCH_FIXTURES=${config.fixtures}: c or sh`);
  return { kind: "sh", checkpassword: join(FIXTURE_SRC, "checkpassword"), pop3d: join(FIXTURE_SRC, "pop3d") };
}

function referenceBinary() {
  if (env.QMAIL_POPUP_REF) return resolve(env.QMAIL_POPUP_REF);
  for (const candidate of ["var/qmail/bin/qmail-popup", "usr/sbin/qmail-popup", "usr/bin/qmail-popup", "qmail-popup"]) {
    const path = join(OUT_DIR, "ref", candidate);
    if (existsSync(path)) return path;
  }
  return undefined;
}

function defineVariants(fx) {
  const subprogram = [fx.checkpassword, fx.pop3d];
  const args = [HOSTNAME, ...subprogram];
  const deno = join(ROOT, "node_modules/.bin/deno");
  const hostArch = arch() === "arm64" ? "arm64" : "x64";
  const sea = join(DIST, `qmail-popup-node-linux-${hostArch}`);
  const ref = referenceBinary();
  const bun = join(ROOT, "node_modules/.bin/bun");
  const hello = join(FIXTURE_SRC, "hello.mjs");
  const all = [
    { id: "floor", floor: true, label: "floor: printf '+OK\\r\\n'", argv: ["/usr/bin/printf", "+OK\\r\\n"], runs: "/usr/bin/printf" },
    { id: "bun", label: "dist/qmail-popup (bun --compile)", argv: [join(DIST, "qmail-popup"), ...args], runs: join(DIST, "qmail-popup") },
    { id: "node", label: "node dist/qmail-popup-node.mjs", argv: [process.execPath, join(DIST, "qmail-popup-node.mjs"), ...args], runs: join(DIST, "qmail-popup-node.mjs"), runtime: process.execPath },
    { id: "deno", label: "deno run dist/qmail-popup-deno.mjs", argv: [deno, "run", "-A", "--no-config", "--quiet", join(DIST, "qmail-popup-deno.mjs"), ...args], runs: join(DIST, "qmail-popup-deno.mjs"), runtime: deno },
    { id: "sea", label: `dist/qmail-popup-node-linux-${hostArch} (SEA)`, argv: [sea, ...args], runs: sea },
    { id: "ref", label: `C qmail-popup ${ref ? relative(ROOT, ref) || ref : ""}`, argv: ref ? [ref, HOSTNAME, ...subprogram] : [], runs: ref },
    // What each runtime costs before qmail-popup's code: greet, one read, exit.
    { id: "bun-hello", hello: true, label: "runtime floor: bun hello.mjs", argv: [bun, hello], runs: hello, runtime: bun },
    { id: "node-hello", hello: true, label: "runtime floor: node hello.mjs", argv: [process.execPath, hello], runs: hello, runtime: process.execPath },
    { id: "deno-hello", hello: true, label: "runtime floor: deno run hello.mjs", argv: [deno, "run", "-A", "--no-config", "--quiet", hello], runs: hello, runtime: deno },
  ];
  const chosen = [];
  const skipped = [];
  for (const variant of all) {
    if (config.variants && !variant.floor && !config.variants.includes(variant.id)) continue;
    if (variant.hello && !config.runtimeFloors && !config.variants?.includes(variant.id)) continue;
    const missing = [variant.runs, variant.runtime].filter((path) => path !== undefined).find((path) => !existsSync(path));
    if (variant.runs === undefined) skipped.push({ id: variant.id, why: "no C qmail-popup: set QMAIL_POPUP_REF or put one in dist/bench/ref/" });
    else if (missing !== undefined) skipped.push({ id: variant.id, why: `${relative(ROOT, missing) || missing} is missing${variant.id === "sea" ? "" : " (make all)"}` });
    else chosen.push(variant);
  }
  // The artifacts of dist/ are run from copies: another build in the same checkout
  // may replace them while the benchmark runs ("text busy", or two builds mixed).
  const runDir = join(OUT_DIR, "run");
  mkdirSync(runDir, { recursive: true });
  for (const variant of chosen) {
    if (variant.runs === undefined || dirname(variant.runs) !== DIST) continue;
    const copy = join(runDir, basename(variant.runs));
    copyFileSync(variant.runs, copy);
    chmodSync(copy, statSync(variant.runs).mode & 0o7777);
    variant.argv = variant.argv.map((arg) => (arg === variant.runs ? copy : arg));
  }
  return { chosen, skipped };
}

function versions(variants) {
  const out = { node_bench: process.version };
  const ids = new Set(variants.map((v) => v.id));
  if (ids.has("node")) out.node = commandOutput(process.execPath, ["--version"]);
  if (ids.has("deno")) out.deno = commandOutput(join(ROOT, "node_modules/.bin/deno"), ["--version"])?.split("\n")[0];
  if (ids.has("bun")) out.bun = commandOutput(join(ROOT, "node_modules/.bin/bun"), ["--version"]);
  if (ids.has("sea")) {
    const pinned = join(ROOT, `node_modules/.cache/qmail-popup-runtimes/node-linux-${arch() === "arm64" ? "arm64" : "x64"}/bin/node`);
    if (existsSync(pinned)) out.sea_node = commandOutput(pinned, ["--version"]);
  }
  out.tcpserver = which("tcpserver");
  return out;
}

// --- the phases ------------------------------------------------------------------

function rotated(list, by) {
  const k = by % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}

function progress(text) {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${text}`);
}

function progressDone(text) {
  if (interrupted) return;
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K`);
  process.stderr.write(`${text}\n`);
}

/** Round by round, one connection per variant per round; the first rounds untimed. */
async function interleaved(name, runs, rounds, once) {
  const samples = new Map(runs.map((run) => [run.variant.id, []]));
  const errors = new Map(runs.map((run) => [run.variant.id, []]));
  const cpuBefore = new Map();
  const endsBefore = new Map();
  for (const run of runs) {
    await run.server.quiesce();
    cpuBefore.set(run.variant.id, run.server.childrenCpuMs());
    endsBefore.set(run.variant.id, run.server.ends);
  }
  const total = config.warmup + rounds;
  const started = Date.now();
  for (let round = 0; round < total; round++) {
    if (interrupted) return {};
    if (round % 10 === 0) progress(`${name}: round ${round}/${total}`);
    for (const run of rotated(runs, round)) {
      try {
        const ms = await once(run);
        if (round >= config.warmup) samples.get(run.variant.id).push(ms);
      } catch (error) {
        errors.get(run.variant.id).push(String(error.message ?? error));
      }
    }
  }
  const cpu = new Map();
  for (const run of runs) {
    await run.server.quiesce();
    const connections = run.server.ends - endsBefore.get(run.variant.id);
    const used = run.server.childrenCpuMs() - cpuBefore.get(run.variant.id);
    cpu.set(run.variant.id, connections > 0 ? used / connections : undefined);
  }
  progressDone(`${name}: ${total} rounds in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { samples, errors, cpu };
}

/** concurrency clients doing greeting+QUIT for sliceMs; completed connections per second. */
async function rateSlice(run, sliceMs) {
  const start = process.hrtime.bigint();
  const stopAt = start + BigInt(sliceMs) * 1_000_000n;
  let completed = 0;
  const errors = [];
  let last = start;
  const worker = async () => {
    while (process.hrtime.bigint() < stopAt && !interrupted) {
      try {
        await greetingOnce(run.variant, run.server.port);
        completed++;
        last = process.hrtime.bigint();
      } catch (error) {
        errors.push(String(error.message ?? error));
      }
    }
  };
  await Promise.all(Array.from({ length: config.concurrency }, worker));
  return { completed, seconds: nsToMs(last - start) / 1000, errors };
}

async function ratePhase(runs) {
  const slices = Math.max(1, Math.round(config.rateSeconds / config.rateSlice));
  const totals = new Map(runs.map((run) => [run.variant.id, { completed: 0, seconds: 0, errors: [], sliceRates: [] }]));
  const started = Date.now();
  for (let round = 0; round < slices; round++) {
    if (interrupted) return totals;
    progress(`rate: slice ${round + 1}/${slices}`);
    for (const run of rotated(runs, round)) {
      await run.server.quiesce();
      const slice = await rateSlice(run, config.rateSlice * 1000);
      const total = totals.get(run.variant.id);
      total.completed += slice.completed;
      total.seconds += slice.seconds;
      total.errors.push(...slice.errors);
      total.sliceRates.push(slice.seconds > 0 ? slice.completed / slice.seconds : 0);
    }
  }
  for (const run of runs) await run.server.quiesce();
  progressDone(`rate: ${slices} slices of ${config.rateSlice} s at concurrency ${config.concurrency} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return totals;
}

function summarise(samples) {
  const list = samples.map((s) => s.kB).filter((s) => s !== undefined);
  if (list.length === 0) return undefined;
  const pick = (key) => list.map((s) => s[key] ?? 0);
  return {
    n: list.length,
    pss_kB: median(pick("Pss")),
    private_dirty_kB: median(pick("Private_Dirty")),
    rss_kB: median(pick("Rss")),
    pss_sum_kB: pick("Pss").reduce((a, b) => a + b, 0),
    comm: [...new Set(samples.map((s) => s.comm).filter(Boolean))],
  };
}

/** held connections, idle after the greeting or logged in; smaps of each pid (and its child). */
async function memoryOf(run, loggedIn) {
  const clients = [];
  const result = { errors: [] };
  try {
    for (let i = 0; i < config.held; i++) {
      const client = await LineClient.connect(run.server.port);
      clients.push(client);
      const pid = await run.server.pidFor(client.localPort);
      client.pid = pid;
      expectOk(await client.line("the greeting"), "greeting");
      if (loggedIn) {
        client.send("USER bench\r\n");
        expectOk(await client.line("the USER reply"), "USER");
        client.send("PASS secret\r\n");
        expectOk(await client.line("the PASS reply"), "PASS");
      }
    }
    await sleep(config.settleMs);
    const table = loggedIn ? childrenTable() : undefined;
    const own = [];
    const children = [];
    for (const client of clients) {
      own.push({ kB: smapsRollup(client.pid), comm: commOf(client.pid) });
      if (table) {
        const kids = table.get(client.pid) ?? [];
        if (kids.length !== 1) result.errors.push(`pid ${client.pid} has ${kids.length} children`);
        for (const kid of kids) children.push({ kB: smapsRollup(kid), comm: commOf(kid) });
      }
    }
    result.self = summarise(own);
    if (table) result.child = summarise(children);
  } catch (error) {
    result.errors.push(String(error.message ?? error));
  } finally {
    for (const client of clients) client.send("QUIT\r\n");
    await Promise.race([Promise.all(clients.map((client) => client.whenClosed().catch(() => {}))), sleep(10_000)]);
    for (const client of clients) client.destroy();
    await run.server.quiesce();
  }
  return result;
}

// --- output ----------------------------------------------------------------------

function table(headers, rows) {
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => String(row[i]).length)));
  const line = (cells) => cells.map((cell, i) => (i === 0 ? String(cell).padEnd(widths[i]) : String(cell).padStart(widths[i]))).join("  ");
  return [line(headers), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

const fmt = (value, digits = 2) => (value === undefined || value === null || Number.isNaN(value) ? "n/a" : value.toFixed(digits));
const ratio = (value, floor) => (value === undefined || floor === undefined || floor === 0 ? "n/a" : `${(value / floor).toFixed(1)}x`);
const mb = (kB, digits = 1) => (kB === undefined ? "n/a" : mib(kB).toFixed(digits));
const size = (bytes) => (bytes === undefined ? "n/a" : bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`);

// --- main ------------------------------------------------------------------------

async function main() {
  if (which("tcpserver") === undefined) throw new Error("tcpserver is missing: make test-deps (Debian's ucspi-tcp)");
  mkdirSync(OUT_DIR, { recursive: true });
  const fx = fixtures();
  const { chosen, skipped } = defineVariants(fx);
  for (const skip of skipped) process.stderr.write(`bench: skipping ${skip.id}: ${skip.why}\n`);
  const estimate = (config.warmup + config.greetings) * chosen.length * 0.04 + (config.warmup + config.sessions) * chosen.filter((v) => !v.floor && !v.hello).length * 0.06 + config.rateSeconds * chosen.length + 2 * chosen.length * (config.held * 0.1 + config.settleMs / 1000);
  process.stderr.write(`bench: ${chosen.map((v) => v.id).join(", ")}; ${config.fixtures === "c" && fx.kind === "c" ? "C" : "sh"} fixtures; about ${Math.ceil(estimate / 10) * 10} s\n`);

  const loadBefore = loadavg();
  if (loadBefore[0] > cpus().length / 2) process.stderr.write(`bench: the machine is busy (load ${loadBefore.map((l) => l.toFixed(2)).join(" ")}): absolute numbers will be noisy\n`);
  const runs = [];
  for (const variant of chosen) {
    const server = new TcpServer(variant);
    await server.start();
    runs.push({ variant, server });
  }
  // Each variant must greet; one with a broken greeting is dropped with its reason.
  const working = [];
  for (const run of runs) {
    try {
      await greetingOnce(run.variant, run.server.port);
      working.push(run);
    } catch (error) {
      skipped.push({ id: run.variant.id, why: `greeting failed: ${error.message}; stderr: ${run.server.otherLines.join(" | ")}` });
      process.stderr.write(`bench: dropping ${run.variant.id}: ${error.message}\n`);
      await run.server.stop();
    }
  }
  const results = new Map(working.map((run) => [run.variant.id, { id: run.variant.id, label: run.variant.label, argv: run.variant.argv }]));

  const greeting = await interleaved("greeting", working, config.greetings, (run) => greetingOnce(run.variant, run.server.port));
  const sessionRuns = working.filter((run) => !run.variant.floor && !run.variant.hello);
  const session = sessionRuns.length ? await interleaved("session", sessionRuns, config.sessions, (run) => sessionOnce(run.server.port)) : undefined;
  const rate = config.rateSeconds > 0 ? await ratePhase(working) : undefined;
  const memory = new Map();
  if (config.held > 0) {
    for (const run of working.filter((run) => !run.variant.floor)) {
      if (interrupted) break;
      progress(`memory: ${run.variant.id}`);
      const idle = await memoryOf(run, false);
      memory.set(run.variant.id, run.variant.hello ? { idle } : { idle, loggedIn: await memoryOf(run, true) });
    }
    progressDone(`memory: ${config.held} connections held per variant`);
  }
  if (interrupted) return;

  for (const run of working) {
    const id = run.variant.id;
    const result = results.get(id);
    const g = greeting.samples?.get(id);
    result.greeting = { ...stats(g), cpu_ms_per_connection: greeting.cpu?.get(id), errors: greeting.errors?.get(id), samples_ms: g };
    if (session?.samples?.has(id)) {
      const s = session.samples.get(id);
      result.session = { ...stats(s), cpu_ms_per_session: session.cpu.get(id), errors: session.errors.get(id), samples_ms: s };
    }
    if (rate?.has(id)) {
      const r = rate.get(id);
      result.rate = { per_second: r.seconds > 0 ? r.completed / r.seconds : undefined, median_slice_per_second: median(r.sliceRates), completed: r.completed, seconds: r.seconds, concurrency: config.concurrency, slice_rates: r.sliceRates, errors: r.errors };
    }
    if (memory.has(id)) result.memory = memory.get(id);
    result.size = { runs: run.variant.runs, bytes: fileSize(run.variant.runs), built: mtimeOf(run.variant.runs), runtime: run.variant.runtime, runtime_bytes: run.variant.runtime ? fileSize(run.variant.runtime) : undefined };
    result.exit_statuses = Object.fromEntries(run.server.statuses);
    result.other_stderr = { count: run.server.otherCount, first: run.server.otherLines };
  }

  await stopAll();

  // --- report
  const floor = results.get("floor");
  const rows = [...results.values()];
  const timing = table(
    ["variant", "greet med ms", "x", "greet p99 ms", "x", "session med ms", "session p99 ms", "conn/s @" + config.concurrency, "x", "CPU ms/greet", "CPU ms/session"],
    rows.map((r) => [
      r.label,
      fmt(r.greeting?.median), ratio(r.greeting?.median, floor?.greeting?.median),
      fmt(r.greeting?.p99), ratio(r.greeting?.p99, floor?.greeting?.p99),
      r.session ? fmt(r.session.median) : "n/a",
      r.session ? fmt(r.session.p99) : "n/a",
      fmt(r.rate?.per_second, 0), r.rate && floor?.rate ? `${(r.rate.per_second / floor.rate.per_second).toFixed(2)}x` : "n/a",
      fmt(r.greeting?.cpu_ms_per_connection, 1),
      r.session ? fmt(r.session.cpu_ms_per_session, 1) : "n/a",
    ]),
  );
  const memoryTable = table(
    ["variant", "idle PSS", "idle PrivDirty", "login: pid runs", "login PSS", "login PrivDirty", "child PSS", "child PrivDirty", "file that runs", "runtime (extra)"],
    rows.map((r) => [
      r.label,
      mb(r.memory?.idle?.self?.pss_kB), mb(r.memory?.idle?.self?.private_dirty_kB),
      r.memory?.loggedIn?.self?.comm?.join(",") ?? "n/a",
      mb(r.memory?.loggedIn?.self?.pss_kB), mb(r.memory?.loggedIn?.self?.private_dirty_kB),
      mb(r.memory?.loggedIn?.child?.pss_kB, 2), mb(r.memory?.loggedIn?.child?.private_dirty_kB, 2),
      size(r.size.bytes), r.size.runtime ? size(r.size.runtime_bytes) : "-",
    ]),
  );
  const cpuModel = cpus()[0]?.model ?? "?";
  const when = new Date();
  const loadAfter = loadavg();
  console.log(`qmail-popup bench ${when.toISOString()}  ${cpus().length} x ${cpuModel}  Linux ${release()}  load ${loadBefore[0].toFixed(2)} before, ${loadAfter[0].toFixed(2)} after`);
  console.log(
    `greeting: ${config.greetings} rounds (+${config.warmup} warm-up); session: ${config.sessions} rounds, ${fx.kind} fixtures; ` +
      `rate: ${config.rateSeconds} s per variant at concurrency ${config.concurrency}; memory: ${config.held} held connections`,
  );
  console.log("");
  console.log(timing);
  console.log("");
  console.log(
    `memory: MiB per process, median over ${config.held} held connections (PSS shares pages among them); "login" is the pid tcpserver ` +
      `reported, once logged in ("pid runs": its command name then), "child" its child, the post-login program`,
  );
  console.log(memoryTable);
  const notes = [];
  for (const r of rows) {
    const errors = [...(r.greeting?.errors ?? []), ...(r.session?.errors ?? []), ...(r.rate?.errors ?? []), ...(r.memory?.idle?.errors ?? []), ...(r.memory?.loggedIn?.errors ?? [])];
    if (errors.length) notes.push(`${r.id}: ${errors.length} errors, first: ${errors[0]}`);
    if (r.other_stderr.count) notes.push(`${r.id}: ${r.other_stderr.count} other stderr lines, first: ${r.other_stderr.first[0]}`);
    // The C qmail-popup ends every session with die(): exit 1.
    const odd = Object.entries(r.exit_statuses).filter(([status]) => status !== "exit 0" && !(r.id === "ref" && status === "exit 1"));
    if (odd.length) notes.push(`${r.id}: exit statuses ${JSON.stringify(r.exit_statuses)}`);
  }
  for (const skip of skipped) notes.push(`${skip.id}: skipped: ${skip.why}`);
  if (notes.length) {
    console.log("");
    for (const note of notes) console.log(`note: ${note}`);
  }

  const report = {
    date: when.toISOString(),
    machine: { cpus: cpus().length, cpu: cpuModel, kernel: release(), arch: arch(), load_before: loadBefore, load_after: loadAfter },
    versions: versions(chosen),
    source: {
      commit: commandOutput("git", ["-C", ROOT, "rev-parse", "HEAD"]),
      // Artifacts in dist/ may be older than the working tree: see each variant's size.built.
      src_changes: commandOutput("git", ["-C", ROOT, "status", "--porcelain", "--", "src"])?.split("\n").filter(Boolean),
    },
    config: { ...config, fixtures: fx.kind, clk_tck: CLK_TCK },
    floor: "floor",
    skipped,
    variants: rows,
  };
  const outFile = env.BENCH_OUT ? resolve(env.BENCH_OUT) : join(OUT_DIR, `bench-${when.toISOString().replace(/[-:]/g, "").replace(/\..*/, "")}.json`);
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, JSON.stringify(report, null, 2) + "\n");
  copyFileSync(outFile, join(OUT_DIR, "latest.json"));
  console.log("");
  console.log(`json: ${relative(process.cwd(), outFile) || outFile}`);
}

main()
  .catch(async (error) => {
    process.stderr.write(`bench: ${error.stack ?? error}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const socket of sockets) socket.destroy();
    await stopAll();
  });
