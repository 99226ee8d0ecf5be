// Resident mode's own promises (issue #19): each side proves itself
// (SO_PEERCRED both ways), faults stay small (absent, impostor, a worker
// killed, replacement after RESTART sessions), and a thousand slow
// clients do not delay another's greeting. The suites that run in every
// variant (protocol, sasl, tls, differential, ...) run in resident mode
// as the variant "resident".

import { spawn, spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { ROOT, ServerProcess, startResident } from "../../scripts/lib/tcpserver.mjs";
import { Client, FIXTURES, TcpServer, converse, makeHomes, standInResident, tempDir } from "./harness.ts";
import { Launched, adapted, run as runLauncher } from "./launcher-processes.ts";
import { memoryCounts } from "./hostile-helpers.ts";

const FRONT = join(ROOT, "dist/qmail-popup");
const HERE = `/run/qmail-popup-test-${process.pid}`;
const NOBODY = 65534;
const homes = makeHomes();
const servers: { stop(): Promise<void> }[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

const variant = (socket: string, only = true) => ({
  name: "resident",
  command: [FRONT],
  env: { QMAIL_POPUP_RESIDENT: socket, ...(only ? { QMAIL_POPUP_RESIDENT_ONLY: "1" } : {}) },
});

async function server(socket: string, only = true, env: Record<string, string> = {}): Promise<TcpServer> {
  const started = await TcpServer.start({ variant: variant(socket, only), homes, env });
  servers.push(started);
  return started;
}

/** The processes whose parent is pid. */
function children(pid: number): number[] {
  const found = spawnSync("pgrep", ["-P", String(pid)], { encoding: "latin1" }).stdout;
  return found.split("\n").filter(Boolean).map(Number);
}

/** Whether predicate holds within timeoutMs, looked at every 20 ms (a process's end, which nothing announces to us). */
async function eventually(predicate: () => boolean, timeoutMs = 20_000): Promise<boolean> {
  for (const deadline = Date.now() + timeoutMs; !predicate(); await new Promise((wake) => setTimeout(wake, 20)))
    if (Date.now() > deadline) return false;
  return true;
}

/** How many sockets pid holds: each session in a worker adds some (the front's, the client's as 0 and 1). */
function sockets(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith("socket:");
    } catch {
      return false;
    }
  }).length;
}

function run(argv: string[], uid = 0): Promise<{ code: number | null; out: string; err: string }> {
  const full = uid === 0 ? argv : ["/usr/bin/setpriv", `--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", "--", ...argv];
  return new Promise((resolve) => {
    const child = spawn(full[0]!, full.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.setEncoding("latin1").on("data", (c: string) => (out += c));
    child.stderr.setEncoding("latin1").on("data", (c: string) => (err += c));
    child.on("close", (code) => resolve({ code, out, err }));
  });
}

/**
 * A front's hand-over done by hand: connect to SOCKET, send `fds=0,1` with
 * one end of a socket pair as fds 0 and 1, then an introduction. Prints
 * what came back on the control socket and what the "client" end got.
 */
const HAND_OVER = String.raw`
import socket, sys, os, select
path = sys.argv[1]
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    c.connect(path)
except OSError as e:
    print("connect", e.errno); sys.exit(0)
mine, theirs = socket.socketpair()
def ns(b): return str(len(b)).encode() + b":" + b + b","
fds = ns(b"fds=0,1")
try:
    c.sendmsg([fds], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, bytes(memoryview(__import__("array").array("i", [theirs.fileno(), theirs.fileno()]))))])
except OSError as e:
    print("sendmsg", e.errno)
intro = ns(b"version=" + sys.argv[2].encode()) + ns(b"timeout=5") + ns(b"pid=" + str(os.getpid()).encode()) + ns(b"open=0") + ns(b"open=1") + ns(b"arg=mail.test") + ns(b"arg=/bin/true") + ns(b"env=PATH=/bin") + ns(b"end=")
try:
    c.sendall(intro)
except OSError as e:
    print("send", e.errno)
theirs.close()
c.settimeout(10)
try:
    said = c.recv(100)
except OSError as e:
    print("recv", e.errno)
    said = b""
print("control", repr(said))
r, _, _ = select.select([mine], [], [], 5 if said else 0)
print("client", repr(mine.recv(100) if r else b""))
`;

const VERSION = /export const VERSION = "(.*)";/.exec(readFileSync(join(ROOT, "src/version.ts"), "latin1"))![1]!;

describe("resident mode", () => {
  test("a front hands its connection over: the worker greets, the front starts no runtime of its own", async () => {
    const socket = join(HERE, "main");
    const resident = await startResident(socket);
    servers.push(resident);
    const plain = await server(socket);
    const client = await Client.connect(plain.port);
    const pid = await plain.pidFor(client.localPort);
    expect(await client.lines(1)).toBe("+OK\r\n");
    // While the session waits for the client, the front has no child: the session is the resident's.
    expect(children(pid)).toEqual([]);
    expect(children(resident.pid!).length).toBe(2);
    // Each worker confined as a runtime of one connection is (src/front/confine.c): the account, no capabilities, no_new_privs, seccomp, Landlock.
    const account = spawnSync("id", ["-u", "qmailpopup"], { encoding: "latin1" }).stdout.trim();
    for (const worker of children(resident.pid!)) {
      const status = readFileSync(`/proc/${worker}/status`, "latin1");
      expect(/^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$/m.exec(status)?.slice(1)).toEqual([account, account, account, account]);
      expect(status).toMatch(/^CapEff:\s+0+$/m);
      expect(status).toMatch(/^CapBnd:\s+0+$/m);
      expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
      expect(status).toMatch(/^Seccomp:\s+2$/m);
    }
    await client.send("USER alice\r\nPASS wonderland\r\nQUIT\r\n");
    expect(await client.untilClosed()).toContain("+OK \r\n+OK");
    expect(await plain.endOf(pid)).toBe("0");
  });

  test("absent: the front starts its own runtime and says so on fd 2; with QMAIL_POPUP_RESIDENT_ONLY, -ERR [SYS/TEMP]", async () => {
    const socket = join(HERE, "absent");
    const fallback = await server(socket, false);
    expect((await converse(fallback, "QUIT\r\n")).text).toBe("+OK\r\n+OK \r\n");
    expect(await fallback.logged(`qmail-popup: resident ${socket}: not running\n`)).not.toContain("unable to run");
    const only = await server(socket, true);
    const { text, status } = await converse(only, "QUIT\r\n");
    expect(text).toBe("-ERR [SYS/TEMP] unable to run qmail-popup\r\n");
    expect(status).toBe("1");
    await only.logged("qmail-popup: QMAIL_POPUP_RESIDENT_ONLY is set: no runtime of our own\n");
  });

  test("a socket bound first by another account: the front falls back, says so, and hands the impostor nothing", async () => {
    const { socket, said, ended } = await standInResident(join(HERE, "impostor"), NOBODY);
    const front = await server(socket, false);
    expect((await converse(front, "QUIT\r\n")).text).toBe("+OK\r\n+OK \r\n");
    await front.logged(`qmail-popup: resident ${socket}: the process listening there is not the runtime's account: not used\n`);
    await ended;
    // The positive control: the impostor did accept the front's connection; it got not a byte, not a descriptor.
    expect(said()).toContain("took bytes 0 descriptors 0");
  });

  test("the resident serves root only: another account connecting gets nothing (root, the control, gets a session)", async () => {
    const socket = join(HERE, "peer");
    servers.push(await startResident(socket));
    // Past the file's mode (0600, root's), to reach the worker's own check.
    chmodSync(socket, 0o666);
    const script = ["/usr/bin/python3", "-c", HAND_OVER, socket, VERSION];
    const root = await run(script);
    expect(root.out).toContain(`control b'${String(VERSION.length + 8)}:version=${VERSION},`);
    expect(root.out).toContain("client b'+OK\\r\\n'");
    const nobody = await run(script, NOBODY);
    expect(nobody.out).toContain("control b''");
    expect(nobody.out).toContain("client b''");
  });

  test("the resident killed (SIGKILL): its workers end too, and leave nothing listening on its socket", async () => {
    const socket = join(HERE, "orphans");
    const resident = await startResident(socket);
    servers.push(resident);
    const workers = children(resident.pid!);
    // The control: two workers, serving.
    expect(workers.length).toBe(2);
    const front = await server(socket);
    expect((await converse(front, "QUIT\r\n")).text).toBe("+OK\r\n+OK \r\n");
    process.kill(resident.pid!, "SIGKILL");
    expect(await eventually(() => workers.every((pid) => !existsSync(`/proc/${pid}`) || /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "latin1"))))).toBe(true);
  });

  test("a worker killed mid-session: its sessions get -ERR [SYS/TEMP], the others go on", async () => {
    const socket = join(HERE, "killed");
    const resident = await startResident(socket);
    servers.push(resident);
    const front = await server(socket);
    const workers = children(resident.pid!);
    expect(workers.length).toBe(2);
    const before = workers.map(sockets);
    // Sessions until both workers serve some (which worker accepts is the kernel's choice).
    const clients: Client[] = [];
    while (clients.length < 64 && workers.some((w, i) => sockets(w) === before[i])) {
      const client = await Client.connect(front.port);
      expect(await client.lines(1)).toBe("+OK\r\n");
      clients.push(client);
    }
    const victim = workers[0]!;
    expect(sockets(victim)).toBeGreaterThan(before[0]!);
    process.kill(victim, "SIGKILL");
    for (const client of clients) await client.send("CAPA\r\n").catch(() => {});
    await Promise.all(clients.map((client) => client.until(() => client.text.endsWith(".\r\n") || client.text.includes("-ERR"), "CAPA or -ERR")));
    const answers = clients.map((client) => client.text);
    const killed = answers.filter((a) => a === "+OK\r\n-ERR [SYS/TEMP] unable to run qmail-popup\r\n");
    const alive = answers.filter((a) => a.startsWith("+OK\r\n+OK"));
    expect(killed.length).toBeGreaterThan(0);
    expect(alive.length).toBeGreaterThan(0);
    expect(killed.length + alive.length).toBe(clients.length);
    await front.logged("qmail-popup: the resident runtime ended the session without a plan or an end\n");
    for (const client of clients) client.destroy();
    // And the slot is filled again: a new session is served.
    expect((await converse(front, "QUIT\r\n")).text).toBe("+OK\r\n+OK \r\n");
  });

  test("a front killed mid-session: the worker ends that session at once (the client's connection closes)", async () => {
    const socket = join(HERE, "front-killed");
    const resident = await startResident(socket, FRONT, { PATH: "/usr/bin:/bin" }, 1);
    servers.push(resident);
    const front = await server(socket);
    const [worker] = children(resident.pid!);
    const before = sockets(worker!);
    const client = await Client.connect(front.port);
    const pid = await front.pidFor(client.localPort);
    expect(await client.lines(1)).toBe("+OK\r\n");
    expect(sockets(worker!)).toBeGreaterThan(before);
    process.kill(pid, "SIGKILL");
    // Only the worker still held the client's connection: it closes once the session is over.
    expect(await client.untilClosed(10_000)).toBe("+OK\r\n");
    expect(await eventually(() => sockets(worker!) === before)).toBe(true);
  });

  test("a worker is replaced after QMAIL_POPUP_RESIDENT_RESTART sessions, its replacement started before it ends", async () => {
    const socket = join(HERE, "restart");
    const resident = await startResident(socket, FRONT, { PATH: "/usr/bin:/bin", QMAIL_POPUP_RESIDENT_RESTART: "3" }, 1);
    servers.push(resident);
    const front = await server(socket);
    const [first] = children(resident.pid!);
    // Three sessions, the third held open: the first worker has retired but still serves it.
    for (let i = 0; i < 2; i++) expect((await converse(front, "QUIT\r\n")).text).toBe("+OK\r\n+OK \r\n");
    const held = await Client.connect(front.port);
    expect(await held.lines(1)).toBe("+OK\r\n");
    const fourth = await converse(front, "QUIT\r\n");
    expect(fourth.text).toBe("+OK\r\n+OK \r\n");
    expect(existsSync(`/proc/${first}`)).toBe(true);
    await held.send("QUIT\r\n");
    expect(await held.untilClosed()).toBe("+OK\r\n+OK \r\n");
    // It ends once its last session has, and the resident reaps it.
    expect(await eventually(() => !existsSync(`/proc/${first}`))).toBe(true);
    expect(children(resident.pid!).length).toBe(1);
  });

  test("QMAIL_POPUP_RESIDENT_SESSIONS: a full worker serves no more until a session of its ends (the front is told it is full)", async () => {
    const socket = join(HERE, "limit");
    servers.push(await startResident(socket, FRONT, { PATH: "/usr/bin:/bin", QMAIL_POPUP_RESIDENT_SESSIONS: "2" }, 1));
    const front = await server(socket);
    const held = [await Client.connect(front.port), await Client.connect(front.port)];
    for (const client of held) expect(await client.lines(1)).toBe("+OK\r\n");
    // Full: the third front is answered so (QMAIL_POPUP_RESIDENT_ONLY: -ERR [SYS/TEMP]); resident-fallback.test.ts has the fallback.
    const third = await converse(front, "QUIT\r\n");
    expect(third.text).toBe("-ERR [SYS/TEMP] unable to run qmail-popup\r\n");
    await front.logged(`qmail-popup: resident ${socket}: full\n`);
    await held[0]!.send("QUIT\r\n");
    await held[0]!.untilClosed();
    expect((await converse(front, "QUIT\r\n")).text).toBe("+OK\r\n+OK \r\n");
    held[1]!.destroy();
  });

  test("QMAIL_POPUP_RESIDENT_MEMORY: a worker past it retires as a session ends and a new one serves; one under it serves on", async () => {
    // The control: a bound far above a worker's size. Its worker serves on, and tells us a worker's size after a session.
    const under = await startResident(join(HERE, "memory-under"), FRONT, { PATH: "/usr/bin:/bin", QMAIL_POPUP_RESIDENT_MEMORY: "4096" }, 1);
    servers.push(under);
    const roomy = await server(join(HERE, "memory-under"));
    const [steady] = children(under.pid!);
    expect((await converse(roomy, "QUIT\r\n")).text).toBe("+OK\r\n+OK \r\n");
    const size = residentMiB(steady!);
    for (let i = 0; i < 3; i++) expect((await converse(roomy, "QUIT\r\n")).text).toBe("+OK\r\n+OK \r\n");
    expect(children(under.pid!)).toEqual([steady]);
    expect(under.log).not.toContain("retiring");
    // Three quarters of that: past it after a session, far from twice it.
    const bound = Math.floor(size * 0.75);
    const over = await startResident(join(HERE, "memory-over"), FRONT, { PATH: "/usr/bin:/bin", QMAIL_POPUP_RESIDENT_MEMORY: String(bound) }, 1);
    servers.push(over);
    const tight = await server(join(HERE, "memory-over"));
    const [first] = children(over.pid!);
    expect((await converse(tight, "QUIT\r\n")).text).toBe("+OK\r\n+OK \r\n");
    expect(await eventually(() => over.log.includes(`qmail-popup: resident worker ${first}: `))).toBe(true);
    expect(over.log).toMatch(new RegExp(`resident worker ${first}: [0-9]+ MiB, over QMAIL_POPUP_RESIDENT_MEMORY=${bound}: retiring\n`));
    // It had no session left: it ends, a replacement serves.
    expect(await eventually(() => !existsSync(`/proc/${first}`))).toBe(true);
    expect((await converse(tight, "QUIT\r\n")).text).toBe("+OK\r\n+OK \r\n");
    expect(await eventually(() => children(over.pid!).length === 1 && !children(over.pid!).includes(first!))).toBe(true);
    expect(over.log).not.toContain("killed");
  }, 60_000);

  test("a worker growing past twice QMAIL_POPUP_RESIDENT_MEMORY is killed: its sessions get -ERR [SYS/TEMP], a new worker serves", async () => {
    // A worker's size after a session (a roomy resident's), and a bound whose double is 8 MiB above it.
    const roomy = await startResident(join(HERE, "runaway-size"), FRONT, { PATH: "/usr/bin:/bin" }, 1);
    servers.push(roomy);
    expect((await converse(await server(join(HERE, "runaway-size")), "QUIT\r\n")).text).toBe("+OK\r\n+OK \r\n");
    const bound = Math.ceil((residentMiB(children(roomy.pid!)[0]!) + 8) / 2);
    const socket = join(HERE, "runaway");
    const resident = await startResident(socket, FRONT, { PATH: "/usr/bin:/bin", QMAIL_POPUP_RESIDENT_MEMORY: String(bound) }, 1);
    servers.push(resident);
    const [runaway] = children(resident.pid!);
    const tcp = await ServerProcess.tcpserver({
      command: [FRONT, "mail.test", join(FIXTURES, "checkpassword"), join(FIXTURES, "pop3d"), "Maildir"],
      env: { PATH: "/usr/bin:/bin", CHECKPASSWORD_HOMES: homes, QMAIL_POPUP_RESIDENT: socket, QMAIL_POPUP_RESIDENT_ONLY: "1", POP3TIMEOUT: "60" },
      maxConnections: 1600,
    });
    servers.push(tcp);
    // Idle sessions held (none ends, so it never retires itself), twenty at a time, until it grows past twice the bound.
    const held: { socket: Socket; text: string }[] = [];
    while (existsSync(`/proc/${runaway}`) && held.length < 1500) {
      for (let i = 0; i < 20; i++) {
        const one = { socket: connect(tcp.port, "127.0.0.1"), text: "" };
        one.socket.on("error", () => {});
        one.socket.setEncoding("latin1").on("data", (text: string) => (one.text += text));
        held.push(one);
      }
      expect(await tcp.until(() => tcp.oks >= held.length, 20_000)).toBe(true);
      await eventually(() => held.every((one) => one.text.length > 0) || !existsSync(`/proc/${runaway}`), 5000);
    }
    expect(await eventually(() => !existsSync(`/proc/${runaway}`), 5000)).toBe(true);
    expect(await eventually(() => resident.log.includes(`qmail-popup: resident: a worker ${runaway}: `))).toBe(true);
    expect(resident.log).toMatch(new RegExp(`qmail-popup: resident: a worker ${runaway}: [0-9]+ MiB, past twice QMAIL_POPUP_RESIDENT_MEMORY=${bound}: killed\n`));
    // Its sessions end with -ERR [SYS/TEMP] (from their fronts; greeted or not yet); any that reached its replacement go on.
    for (const one of held) one.socket.write("QUIT\r\n");
    const killed = (one: { text: string }) => /^(\+OK\r\n)?-ERR \[SYS\/TEMP\] unable to run qmail-popup\r\n$/.test(one.text);
    expect(await eventually(() => held.every((one) => killed(one) || one.text === "+OK\r\n+OK \r\n"))).toBe(true);
    expect(held.filter(killed).length).toBeGreaterThan(0);
    for (const one of held) one.socket.destroy();
    // ... and a new worker serves.
    expect((await converse(await server(socket), "QUIT\r\n")).text).toBe("+OK\r\n+OK \r\n");
    expect(children(resident.pid!)).not.toContain(runaway);
    // The control: under the default bound, nothing is killed.
    expect(roomy.log).not.toContain("killed");
  }, 240_000);

  test("1000 idle and dripping clients do not delay an active client's greeting", async () => {
    const socket = join(HERE, "crowd");
    servers.push(await startResident(socket));
    const tcp = await ServerProcess.tcpserver({
      command: [FRONT, "mail.test", join(FIXTURES, "checkpassword"), join(FIXTURES, "pop3d"), "Maildir"],
      env: { PATH: "/usr/bin:/bin", CHECKPASSWORD_HOMES: homes, QMAIL_POPUP_RESIDENT: socket, QMAIL_POPUP_RESIDENT_ONLY: "1", POP3TIMEOUT: "60" },
      maxConnections: 1100,
    });
    servers.push(tcp);
    const crowd: Socket[] = [];
    let greeted = 0;
    // Twenty at a time, each batch greeted before the next: tcpserver listens with a backlog of 20.
    for (let batch = 0; batch < 50; batch++) {
      for (let i = 0; i < 20; i++) {
        const s = connect(tcp.port, "127.0.0.1");
        s.on("error", () => {});
        s.once("data", () => greeted++);
        crowd.push(s);
      }
      expect(await tcp.until(() => tcp.oks >= crowd.length, 20_000)).toBe(true);
    }
    // Every one of them greeted by the resident.
    expect(await eventually(() => greeted === 1000)).toBe(true);
    // Half of them drip: a byte of a line each 50 ms, never its end.
    const drip = setInterval(() => {
      for (let i = 0; i < crowd.length; i += 2) crowd[i]!.write("x");
    }, 50);
    try {
      const times: number[] = [];
      for (let i = 0; i < 5; i++) {
        const start = performance.now();
        const client = await Client.connect(tcp.port);
        expect(await client.lines(1)).toBe("+OK\r\n");
        times.push(performance.now() - start);
        await client.send("QUIT\r\n");
        await client.untilClosed();
      }
      times.sort((a, b) => a - b);
      console.log(`resident: an active client's greeting beside 1000 idle and dripping clients: median ${times[2]!.toFixed(1)} ms, worst ${times[4]!.toFixed(1)} ms`);
      expect(times[2]).toBeLessThan(500);
    } finally {
      clearInterval(drip);
      for (const s of crowd) s.destroy();
    }
  }, 240_000);
});

/** A process's resident set in MiB (/proc/PID/statm), as the resident reads it. */
function residentMiB(pid: number): number {
  return Math.floor((Number(readFileSync(`/proc/${pid}/statm`, "latin1").split(" ")[1]) * 4096) / 1048576);
}

/** Whether a process listens on the unix socket at path (/proc/net/unix: flags __SO_ACCEPTCON). */
function listeningAt(path: string): boolean {
  return readFileSync("/proc/net/unix", "latin1").split("\n").some((line) => line.endsWith(` ${path}`) && / 00010000 0001 01 /.test(line));
}

describe("passwords in a worker", () => {
  test("after 1000 logins (USER/PASS and AUTH PLAIN) a scan of the worker finds none of the passwords (and, the control, the name of a session held open)", async () => {
    const socket = join(HERE, "scan");
    const resident = await startResident(socket, FRONT, { PATH: "/usr/bin:/bin" }, 1);
    servers.push(resident);
    const front = await server(socket);
    const tag = Math.random().toString(36).slice(2, 10);
    const names = Array.from({ length: 1000 }, (_, i) => `user${i}n${tag}`);
    const secrets = names.map((_, i) => `pw${i}s${tag}Q`);
    const blobs = names.map((name, i) => Buffer.from(`\0${name}\0${secrets[i]}`).toString("base64"));
    let next = 0;
    const login = async () => {
      for (let i = next++; i < names.length; i = next++) {
        const client = await Client.connect(front.port);
        await client.lines(1);
        await client.send(i % 2 === 0 ? `USER ${names[i]}\r\nPASS ${secrets[i]}\r\n` : `AUTH PLAIN ${blobs[i]}\r\n`);
        expect(await client.untilClosed()).toMatch(/-ERR/);
      }
    };
    await Promise.all(Array.from({ length: 8 }, login));
    // The positive control: a session held open after USER, its name in the worker's memory as the scan runs.
    const held = await Client.connect(front.port);
    await held.lines(1);
    await held.send(`USER held${tag}\r\n`);
    await held.lines(2);
    const [worker] = children(resident.pid!);
    const counts = memoryCounts(worker!, [`held${tag}`, ...secrets, ...blobs]);
    held.destroy();
    expect(counts[`held${tag}`]).toBeGreaterThan(0);
    const found = [...secrets, ...blobs].filter((needle) => (counts[needle] ?? 0) > 0);
    expect(found.length, `found ${found.length} of the passwords, the first: ${found.slice(0, 5).join(" ")}`).toBe(0);
  }, 180_000);
});

describe("the resident's service files", () => {
  test("systemd-analyze verify finds nothing to say about qmail-popup-resident.service", async () => {
    const units = tempDir("qmail-popup-units-");
    writeFileSync(join(units, "qmail-popup-resident.service"), adapted("systemd/qmail-popup-resident.service", [["/var/qmail/bin/qmail-popup", FRONT]]));
    expect(await runLauncher("systemd-analyze", ["verify", join(units, "qmail-popup-resident.service")])).toEqual({ code: 0, printed: "" });
  });

  test("svscan runs daemontools/qmail-popup-resident: fronts are served through its socket; svc -d removes it", async () => {
    const scan = tempDir("qmail-popup-svscan-");
    const logs = tempDir("qmail-popup-multilog-");
    chmodSync(logs, 0o755);
    chownSync(logs, NOBODY, NOBODY);
    const runDirectory = join(HERE, "service");
    const socket = join(runDirectory, "resident");
    mkdirSync(join(scan, "qmail-popup-resident/log"), { recursive: true });
    writeFileSync(join(scan, "qmail-popup-resident/run"), adapted("daemontools/qmail-popup-resident/run", [["/run/qmail-popup", runDirectory], ["/var/qmail/bin/qmail-popup", FRONT]]), { mode: 0o755 });
    writeFileSync(join(scan, "qmail-popup-resident/log/run"), adapted("daemontools/qmail-popup-resident/log/run", [["setuidgid qmaill", "setuidgid nobody"], ["/var/log/qmail/qmail-popup-resident", join(logs, "current-dir")]]), { mode: 0o755 });
    const launcher = Launched.start("svscan", [scan], { PATH: "/usr/bin:/bin:/usr/sbin:/sbin" }, { group: true });
    const services = [join(scan, "qmail-popup-resident"), join(scan, "qmail-popup-resident/log")];
    try {
      expect(await eventually(() => listeningAt(socket))).toBe(true);
      const front = await server(socket);
      const { text, status } = await converse(front, "USER alice\r\nPASS wonderland\r\nQUIT\r\n");
      expect(text).toContain("+OK\r\n+OK \r\n");
      expect(status).toBe("0");
      await runLauncher("svc", ["-d", services[0]!]);
      expect(await eventually(() => !existsSync(socket))).toBe(true);
    } finally {
      await launcher.stop();
      await runLauncher("svc", ["-dx", ...services]);
      for (const service of services) await runLauncher("setlock", [join(service, "supervise/lock"), "true"]);
      launcher.endGroup();
    }
  });
});
