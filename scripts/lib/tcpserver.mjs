// @ts-check
// tcpserver on loopback, driven by its own -v lines, freePort(), and the one
// until() everything here waits with: the end-to-end tests' (test/e2e/: the
// harness, the launchers', HAProxy's and the binaries' suites) and the
// benchmark's (scripts/bench.mjs). Plain JavaScript with JSDoc types:
// the benchmark runs on the system's Node, which runs no TypeScript, and the
// tests import it typed (tsconfig's allowJs, and the @ts-check above).
//
// What tcpserver -v says on fd 2, and what is read from it:
//   tcpserver: status: 0/250                      bound (and again after each end)
//   tcpserver: pid 1234 from 127.0.0.1
//   tcpserver: ok 1234 localhost:127.0.0.1:PORT :127.0.0.1::CLIENTPORT
//   tcpserver: end 1234 status 256                the raw wait status
// Everything else on fd 2 is the programs' own (qmail-popup's lines).

import { spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { createServer } from "node:net";

/** The checkout: scripts/lib/ is two levels down. */
export const ROOT = resolve(import.meta.dirname, "../..");

/** This process's resident's socket, in a directory of root's (the resident refuses any other). */
export const RESIDENT_SOCKET = `/run/qmail-popup-test-${process.pid}/resident`;

/**
 * The installed layout, each runtime behind a copy of the front
 * (src/front/qmail-popup.c): dist/qmail-popup next to dist/qmail-popup-runtime,
 * and `make variants`' dist/variants/NAME/qmail-popup for the other runtimes.
 * @type {readonly { name: string, command: readonly string[], resident?: string, env?: Record<string, string> }[]}
 */
export const FRONT_VARIANTS = [
  { name: "bun-compiled", command: [join(ROOT, "dist/qmail-popup")] },
  ...["node-sea", "node", "bun-source", "deno"].map((name) => ({ name, command: [join(ROOT, `dist/variants/${name}/qmail-popup`)] })),
  // Resident mode: the same front, handing each connection to a resident
  // Bun runtime (startResident, one per process that imports this file)
  // and never starting its own (QMAIL_POPUP_RESIDENT_ONLY).
  {
    name: "resident",
    command: [join(ROOT, "dist/qmail-popup")],
    resident: RESIDENT_SOCKET,
    env: { QMAIL_POPUP_RESIDENT: RESIDENT_SOCKET, QMAIL_POPUP_RESIDENT_ONLY: "1" },
  },
];

/** @type {Map<string, Promise<ServerProcess>>} */
const residents = new Map();

/**
 * The resident at socket (`qmail-popup --resident SOCKET 2`), started on
 * first use and ended with this process: SIGKILL to its group at exit, and
 * SIGTERM (setpriv --pdeathsig) if this process is killed, on which the
 * resident stops its workers (a resident killed leaves its workers running:
 * their exec as the account clears the death signal); resolves once
 * a worker listens there (/proc/net/unix shows the socket accepting), so
 * that no front falls back.
 * @param {string} socket
 * @param {string} [front]
 * @param {Record<string, string>} [env]
 * @param {number} [workers]
 * @returns {Promise<ServerProcess>}
 */
export function startResident(socket = RESIDENT_SOCKET, front = join(ROOT, "dist/qmail-popup"), env = { PATH: "/usr/bin:/bin" }, workers = 2) {
  let started = residents.get(socket);
  if (started === undefined) {
    started = (async () => {
      mkdirSync(dirname(socket), { recursive: true, mode: 0o755 });
      const server = new ServerProcess(spawnClosingFds(["/usr/bin/setpriv", "--pdeathsig", "TERM", front, "--resident", socket, String(workers)], { env, group: true }), true);
      process.on("exit", () => server.killNow());
      const listening = () => readFileSync("/proc/net/unix", "latin1").split("\n").some((line) => line.endsWith(` ${socket}`) && / 00010000 0001 01 /.test(line));
      const deadline = Date.now() + 20_000;
      while (!listening() && !server.exited && Date.now() < deadline) await new Promise((wake) => setTimeout(wake, 10));
      if (!listening()) throw new Error(`the resident did not start: ${server.log}`);
      return server;
    })();
    residents.set(socket, started);
  }
  return started;
}

/** Wake-ups for until(): whoever changes what a predicate reads calls wake(). */
export class Waiters {
  /** @type {(() => void)[]} */
  #pending = [];

  wake() {
    for (const wake of this.#pending.splice(0)) wake();
  }

  /**
   * Resolves true once predicate holds, checked now and on each wake(); false after timeoutMs.
   * @param {() => boolean} predicate
   * @param {number} [timeoutMs]
   * @returns {Promise<boolean>}
   */
  until(predicate, timeoutMs = 20_000) {
    return new Promise((done) => {
      const deadline = setTimeout(() => done(false), timeoutMs);
      const check = () => {
        if (predicate()) {
          clearTimeout(deadline);
          done(true);
        } else this.#pending.push(check);
      };
      check();
    });
  }
}

/**
 * A port nothing listens on at host now (a race with others remains: tcpserver's start retries).
 * @param {string} [host]
 */
export function freePort(host = "127.0.0.1") {
  return /** @type {Promise<number>} */ (
    new Promise((done, reject) => {
      const server = createServer();
      server.on("error", reject);
      server.listen(0, host, () => {
        const address = server.address();
        server.close(() => done(typeof address === "object" && address ? address.port : 0));
      });
    })
  );
}

/** Python closes every descriptor but 0-2 and 5, then execs its arguments. */
const CLOSE_FDS_AND_EXEC = "import os, sys; os.closerange(3, 5); os.closerange(6, 1024); os.execvp(sys.argv[1], sys.argv[1:])";

/**
 * @typedef {object} SpawnOptions
 * @property {Record<string, string>} env  the whole environment
 * @property {string} [fd5]  a file opened for appending on fd 5 (tcpserver … 5>>file)
 * @property {boolean} [group]  a process group of its own: stop() ends it whole
 */

/**
 * Starts argv through python3, which closes every descriptor but 0-2 and 5:
 * none of the caller's open descriptors reaches the server and its children.
 * fd 2 is a pipe to the caller; 0 and 1 are /dev/null.
 * @param {readonly string[]} argv
 * @param {SpawnOptions} options
 */
export function spawnClosingFds(argv, { env, fd5, group = false }) {
  /** @type {("ignore" | "pipe" | number)[]} */
  const stdio = ["ignore", "ignore", "pipe"];
  const log = fd5 === undefined ? undefined : openSync(fd5, "a");
  if (log !== undefined) stdio.push("ignore", "ignore", log);
  try {
    return spawn("/usr/bin/python3", ["-c", CLOSE_FDS_AND_EXEC, ...argv], { stdio, env, detached: group });
  } finally {
    if (log !== undefined) closeSync(log);
  }
}

/**
 * A server process (tcpserver -v, or anything that logs on fd 2) and what it said.
 */
export class ServerProcess {
  /** Everything written on fd 2: tcpserver's lines and the programs'. */
  log = "";
  port = 0;
  /** Connections tcpserver started ("ok") and reaped ("end"). */
  oks = 0;
  ends = 0;
  /** fd 2 lines that are not tcpserver's own -v lines: their count and the first 20. */
  otherCount = 0;
  /** @type {string[]} */
  otherLines = [];
  bound = false;
  bindFailed = false;
  #partial = "";
  /** @type {Map<number, number>} client port -> pid, the latest connection from that port */
  #pids = new Map();
  /** @type {Map<number, number>} pid -> raw wait status */
  #ended = new Map();
  #waiters = new Waiters();
  #group;

  /**
   * @param {import("node:child_process").ChildProcess} child  with fd 2 a pipe
   * @param {boolean} [group]  whether child leads a process group of its own
   */
  constructor(child, group = false) {
    this.child = child;
    this.#group = group;
    child.stderr?.setEncoding("latin1");
    child.stderr?.on("data", (/** @type {string} */ chunk) => this.#take(chunk));
    child.on("exit", () => this.#waiters.wake());
    child.on("error", () => this.#waiters.wake());
  }

  /**
   * tcpserver -v -R -H -l localhost at a free port of host, ready once it
   * says it is bound; another port if that one was taken meanwhile.
   * @param {object} options
   * @param {readonly string[]} options.command  the program and its arguments
   * @param {Record<string, string>} [options.env]  default: PATH=/usr/bin:/bin only
   * @param {string} [options.fd5]
   * @param {boolean} [options.group]
   * @param {number} [options.maxConnections]  tcpserver -c
   * @param {string} [options.host]  default: 127.0.0.1
   * @param {readonly string[]} [options.flags]  more of tcpserver's options (-x rules.cdb)
   */
  static async tcpserver({ command, env = { PATH: "/usr/bin:/bin" }, fd5, group = false, maxConnections = 250, host = "127.0.0.1", flags = [] }) {
    for (let attempt = 0; ; attempt++) {
      const port = await freePort(host);
      const argv = ["tcpserver", "-v", "-R", "-H", "-l", "localhost", "-c", String(maxConnections), ...flags, host, String(port), ...command];
      const server = new ServerProcess(spawnClosingFds(argv, { env, fd5, group }), group);
      server.port = port;
      await server.until(() => server.bound || server.bindFailed || server.exited);
      if (server.bound) return server;
      await server.stop();
      if (!server.bindFailed || attempt >= 4) throw new Error(`tcpserver did not start: ${server.log}`);
    }
  }

  get pid() {
    return this.child.pid;
  }

  get exited() {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** @param {string} chunk */
  #take(chunk) {
    this.log += chunk;
    const lines = (this.#partial + chunk).split("\n");
    this.#partial = lines.pop() ?? "";
    for (const line of lines) this.#line(line);
    this.#waiters.wake();
  }

  /** @param {string} line */
  #line(line) {
    let match;
    if ((match = /^tcpserver: ok (\d+) .*:(\d+)$/.exec(line))) {
      this.oks++;
      this.#pids.set(Number(match[2]), Number(match[1]));
    } else if ((match = /^tcpserver: end (\d+) status (\d+)$/.exec(line))) {
      this.ends++;
      this.#ended.set(Number(match[1]), Number(match[2]));
    } else if (/^tcpserver: status: \d+\/\d+$/.test(line)) {
      this.bound = true;
    } else if (!/^tcpserver: pid \d+ from /.test(line)) {
      if (/unable to bind/.test(line)) this.bindFailed = true;
      this.otherCount++;
      if (this.otherLines.length < 20) this.otherLines.push(line);
    }
  }

  /**
   * Resolves true once predicate holds (checked on each chunk of fd 2 and at exit), false after timeoutMs.
   * @param {() => boolean} predicate
   * @param {number} [timeoutMs]
   */
  until(predicate, timeoutMs = 20_000) {
    return this.#waiters.until(predicate, timeoutMs);
  }

  /** @param {string} why */
  #failure(why) {
    return new Error(`${why}:\n${this.log.length > 4000 ? `…${this.log.slice(-4000)}` : this.log}`);
  }

  /**
   * The pid tcpserver started for the connection from this client port.
   * @param {number} clientPort
   * @param {number} [timeoutMs]
   * @returns {Promise<number>}
   */
  async pidFor(clientPort, timeoutMs = 20_000) {
    if (!(await this.until(() => this.#pids.has(clientPort), timeoutMs))) throw this.#failure(`no connection from port ${clientPort}`);
    return /** @type {number} */ (this.#pids.get(clientPort));
  }

  /**
   * Waits until tcpserver reports the end of that pid; resolves its raw wait status.
   * @param {number} pid
   * @param {number} [timeoutMs]
   * @returns {Promise<number>}
   */
  async endOf(pid, timeoutMs = 20_000) {
    if (!(await this.until(() => this.#ended.has(pid), timeoutMs))) throw this.#failure(`pid ${pid} did not end`);
    return /** @type {number} */ (this.#ended.get(pid));
  }

  /** How many connections ended with each raw wait status. */
  endStatuses() {
    /** @type {Map<number, number>} */
    const counts = new Map();
    for (const status of this.#ended.values()) counts.set(status, (counts.get(status) ?? 0) + 1);
    return counts;
  }

  /**
   * Waits until fd 2 holds text; resolves all of fd 2.
   * @param {string} text
   */
  async logged(text) {
    if (!(await this.until(() => this.log.includes(text)))) throw this.#failure(`fd 2 never said ${JSON.stringify(text)}`);
    return this.log;
  }

  /**
   * Waits until tcpserver has reaped every connection it started, and forgets
   * the client ports seen so far (they are reused).
   * @param {number} [timeoutMs]
   */
  quiesce(timeoutMs = 20_000) {
    this.#pids.clear();
    return this.until(() => this.ends >= this.oks, timeoutMs);
  }

  #groupAlive() {
    try {
      process.kill(-(this.pid ?? 0), 0);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Ends the server: SIGTERM, SIGKILL after 3 s, and waits for its exit; with
   * a group of its own, the whole group, until the group is empty.
   */
  async stop() {
    const pid = this.pid;
    if (pid === undefined) return;
    if (!this.#group) {
      if (this.exited) return;
      const exited = new Promise((done) => this.child.on("exit", done));
      this.child.kill();
      // One that does not end on SIGTERM within 3 s (the test sslserver once did not, in a CI run) is killed.
      const late = setTimeout(() => this.child.kill("SIGKILL"), 3000);
      await exited;
      clearTimeout(late);
      return;
    }
    for (const signal of /** @type {const} */ (["SIGTERM", "SIGKILL"])) {
      try {
        process.kill(-pid, signal);
      } catch {}
      for (let waited = 0; this.#groupAlive() && waited < 3000; waited += 20) await new Promise((done) => setTimeout(done, 20));
      if (!this.#groupAlive()) return;
    }
  }

  /** For process exit, where nothing can wait: SIGKILL to the server (its group, if it has one). */
  killNow() {
    try {
      if (this.pid !== undefined) process.kill(this.#group ? -this.pid : this.pid, "SIGKILL");
    } catch {}
  }
}
