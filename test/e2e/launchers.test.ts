// The service definitions of packaging/services under real launchers
// (issue #12): each launcher started on 127.0.0.1 and a private port, with
// the shipped file adapted only in its port and paths (and the test
// checkpassword and pop3d); python's poplib logs in and fetches a message,
// and the fd-5 log line must name the client as that launcher gives it.
// make test-deps installs the launchers. The front per connection only, as the
// shipped files run it: resident mode's service files (the resident under
// svscan and systemd) are resident.test.ts's.

import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { FIXTURES, makeHomes, ROOT, tempDir, waitForLine } from "./harness.ts";
import { adapted, Launched, listening, pop3Session, PORT_TAKEN, run, SERVICES, SESSION_PRINTED } from "./launcher-processes.ts";

const QMAIL_POPUP = join(ROOT, "dist/qmail-popup");
const LOGFILE_WRAPPER = join(SERVICES, "qmail-popup-logfile");
/** The log line of alice's login. */
const aliceAccepted = (pid: string, proto: string, client: string) => `qmail-popup: pid ${pid} Accept::AUTH::User P:${proto} S:${client} ?= 'alice'`;

/** The log line of alice's login as a pattern, the pid its group; prefix (a pattern) before it. */
function aliceAcceptedPattern(proto: string, client: string, prefix = ""): RegExp {
  return new RegExp(`^${prefix}${literally(aliceAccepted("PID", proto, client)).replace("PID", "(\\d+)")}$`);
}

/**
 * Once a launcher said whether it listens: the launcher if it does; else it
 * is stopped, and undefined where it lost the port (listening tries another), an error otherwise.
 */
async function listens(launcher: Launched, ready: boolean, said: string): Promise<Launched | undefined> {
  if (ready && launcher.running) return launcher;
  await launcher.stop();
  if (PORT_TAKEN.test(said)) return undefined;
  throw new Error(`${launcher.name} did not start:\n${said}`);
}

/** A pattern that matches text and nothing else. */
function literally(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * The installed paths the shipped files name, and the test's programs in
 * their place; with log, qmail-popup-logfile and its file too (first: the
 * wrapper's path begins with qmail-popup's).
 */
function programs(log?: string): [string, string][] {
  const logging: [string, string][] = log === undefined ? [] : [["/var/qmail/bin/qmail-popup-logfile", LOGFILE_WRAPPER], ["/var/log/qmail-popup.log", log]];
  return [
    ...logging,
    ["/var/qmail/bin/qmail-popup", QMAIL_POPUP],
    ["/var/qmail/bin/qmail-pop3d", join(FIXTURES, "pop3d")],
    ["/bin/checkpassword", join(FIXTURES, "checkpassword")],
  ];
}

let homes: string;
let environment: Record<string, string>;
beforeAll(() => {
  homes = makeHomes(["alice"]);
  environment = { PATH: "/usr/bin:/bin", CHECKPASSWORD_HOMES: homes };
});

describe("systemd", () => {
  it("systemd-analyze verify finds nothing to say about qmail-pop3d.socket and qmail-pop3d@.service", async () => {
    const units = tempDir("qmail-popup-units-");
    for (const unit of ["qmail-pop3d.socket", "qmail-pop3d@.service"]) writeFileSync(join(units, unit), readFileSync(join(SERVICES, "systemd", unit)));
    const verified = await run("systemd-analyze", ["verify", join(units, "qmail-pop3d.socket"), join(units, "qmail-pop3d@.service")]);
    expect(verified).toEqual({ code: 0, printed: "" });
  });

  // systemd itself cannot run here (it is not process 1, and a user manager
  // takes over the machine's cgroups): systemd-socket-activate runs the
  // service's ExecStart the way Accept=yes and StandardInput=socket do. It
  // sets no REMOTE_ADDR (systemd does, see the unit tests): the log says unknown.
  it("systemd-socket-activate --accept --inetd runs qmail-pop3d@.service's ExecStart; the log line goes to fd 2", async () => {
    const execStart = /^ExecStart=\/bin\/sh -c '([^']*)'$/m.exec(readFileSync(join(SERVICES, "systemd/qmail-pop3d@.service"), "latin1"));
    expect(execStart).not.toBeNull();
    const script = programs().reduce((text, [from, to]) => text.split(from).join(to), execStart![1]!);
    const { launcher, port } = await listening(async (port) => {
      const args = ["-l", `127.0.0.1:${port}`, "--accept", "--inetd", "-E", `CHECKPASSWORD_HOMES=${homes}`, "/bin/sh", "-c", script];
      const launcher = Launched.start("systemd-socket-activate", args, { PATH: "/usr/bin:/bin" });
      const ready = `Listening on 127.0.0.1:${port} as 3.`;
      await launcher.until(() => launcher.output.includes(ready) || !launcher.running);
      return listens(launcher, launcher.output.includes(ready), launcher.output);
    });
    try {
      expect(await pop3Session(port)).toEqual({ code: 0, printed: SESSION_PRINTED });
      const pid = (await launcher.expectOutput(/^Spawned \/bin\/sh [^\n]* as PID (\d+)\.$/m))[1]!;
      expect((await launcher.expectOutput(/^qmail-popup: [^\n]*$/m))[0]).toBe(aliceAccepted(pid, "POP3", "unknown:unknown"));
    } finally {
      await launcher.stop();
    }
  });
});

describe("xinetd", () => {
  it("runs xinetd/qmail-pop3d (dual-stack): REMOTE_HOST ::ffff:127.0.0.1 is logged as 127.0.0.1, in qmail-popup-logfile's file", async () => {
    const dir = tempDir("qmail-popup-xinetd-");
    const log = join(dir, "qmail-popup.log");
    const services = join(dir, "xinetd-services.log");
    const { launcher, port } = await listening(async (port) => {
      const config = join(dir, `xinetd-${port}.conf`);
      const xinetdLog = join(dir, `xinetd-${port}.log`);
      // Not in /etc/services under this port: UNLISTED, with its own port, on the IPv4-mapped
      // loopback; xinetd's own line for each connection (with the pid) in a file.
      const place = `{\n\ttype = UNLISTED\n\tport = ${port}\n\tbind = ::ffff:127.0.0.1\n\tlog_type = FILE ${services}\n\tlog_on_success = PID HOST\n`;
      writeFileSync(config, adapted("xinetd/qmail-pop3d", [["{\n", place], ...programs(log)]));
      const launcher = Launched.start("/usr/sbin/xinetd", ["-dontfork", "-f", config, "-filelog", xinetdLog], environment);
      const started = await launcher.fileLine(xinetdLog, /Started working|Exiting/);
      const said = existsSync(xinetdLog) ? readFileSync(xinetdLog, "latin1") : launcher.output;
      return listens(launcher, started?.includes("Started working: 1 available service") ?? false, said);
    });
    try {
      expect(await pop3Session(port)).toEqual({ code: 0, printed: SESSION_PRINTED });
      const pid = aliceAcceptedPattern("POP3", "127.0.0.1:unknown").exec(await waitForLine(log, /qmail-popup:/))?.[1];
      expect(pid, readFileSync(log, "latin1")).toBeDefined();
      expect(await waitForLine(services, /START:/)).toMatch(new RegExp(`^\\S+: START: pop3 pid=${pid} from=::ffff:127\\.0\\.0\\.1$`));
    } finally {
      await launcher.stop();
    }
  });
});

describe("socat", () => {
  const socat = async (listen: (port: number) => string, log: string) =>
    listening(async (port) => {
      const exec = [LOGFILE_WRAPPER, log, QMAIL_POPUP, "mail.example.org", join(FIXTURES, "checkpassword"), join(FIXTURES, "pop3d"), "Maildir"].join(" ");
      const launcher = Launched.start("socat", ["-d", "-d", listen(port), `EXEC:${exec}`], environment);
      await launcher.until(() => / listening on /.test(launcher.output) || !launcher.running);
      return listens(launcher, / listening on /.test(launcher.output), launcher.output);
    });

  it("TCP-LISTEN,fork with EXEC: SOCAT_PEERADDR is logged", async () => {
    const log = join(tempDir("qmail-popup-socat-"), "qmail-popup.log");
    const { launcher, port } = await socat((port) => `TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork`, log);
    try {
      expect(launcher.output).toContain(`listening on AF=2 127.0.0.1:${port}`);
      expect(await pop3Session(port)).toEqual({ code: 0, printed: SESSION_PRINTED });
      // The process socat starts execs qmail-popup-logfile, which execs qmail-popup: one pid.
      const pid = (await launcher.expectOutput(/socat\[(\d+)\] N execvp'ing /))[1]!;
      expect(await waitForLine(log, /qmail-popup:/)).toBe(aliceAccepted(pid, "POP3", "127.0.0.1:unknown"));
    } finally {
      await launcher.stop();
    }
  });

  it("TCP6-LISTEN: socat's [0000:…:ffff:7f00:0001] is logged as 127.0.0.1", async () => {
    const log = join(tempDir("qmail-popup-socat6-"), "qmail-popup.log");
    const { launcher, port } = await socat((port) => `TCP6-LISTEN:${port},bind=[::ffff:127.0.0.1],reuseaddr,fork`, log);
    try {
      expect(launcher.output).toContain(`listening on AF=10 [0000:0000:0000:0000:0000:ffff:7f00:0001]:${port}`);
      expect(await pop3Session(port)).toEqual({ code: 0, printed: SESSION_PRINTED });
      const pid = (await launcher.expectOutput(/socat\[(\d+)\] N execvp'ing /))[1]!;
      expect(await waitForLine(log, /qmail-popup:/)).toBe(aliceAccepted(pid, "POP3", "127.0.0.1:unknown"));
    } finally {
      await launcher.stop();
    }
  });
});

describe("stunnel", () => {
  it("runs stunnel/qmail-pop3s.conf (exec mode, POP3S=1): the client speaks TLS, the log says P:POP3S and REMOTE_HOST", async () => {
    const dir = tempDir("qmail-popup-stunnel-");
    const made = spawnSync(join(ROOT, "test/ucspi-tls/make-cert.sh"), [join(dir, "cert")], { encoding: "latin1" });
    expect(made.status).toBe(0);
    const cert = join(dir, "cert/cert.pem");
    const log = join(dir, "qmail-popup.log");
    const { launcher, port } = await listening(async (port) => {
      const config = join(dir, `stunnel-${port}.conf`);
      // In front of the service: stay in the foreground, no pid file, say where it listens (debug = info).
      const settings = "foreground = yes\npid =\ndebug = info\n";
      const service = adapted("stunnel/qmail-pop3s.conf", [
        ["accept = 995", `accept = 127.0.0.1:${port}`],
        ["/etc/ssl/qmail-popup/cert.pem", cert],
        ["/etc/ssl/qmail-popup/key.pem", join(dir, "cert/key.pem")],
        ...programs(log),
      ]);
      writeFileSync(config, settings + service);
      const launcher = Launched.start("stunnel4", [config], environment);
      const ready = new RegExp(`Service \\[pop3s\\] \\(FD=\\d+\\) bound to 127\\.0\\.0\\.1:${port}\n`);
      await launcher.until(() => ready.test(launcher.output) || !launcher.running);
      return listens(launcher, ready.test(launcher.output), launcher.output);
    });
    try {
      expect(await pop3Session(port, cert)).toEqual({ code: 0, printed: SESSION_PRINTED });
      expect(await waitForLine(log, /qmail-popup:/)).toMatch(aliceAcceptedPattern("POP3S", "127.0.0.1:unknown"));
      await launcher.expectOutput(/Service \[pop3s\] accepted connection from 127\.0\.0\.1:\d+/);
    } finally {
      await launcher.stop();
    }
  });
});

describe("daemontools", () => {
  /**
   * A scratch directory for svscan holding daemontools/qmail-pop3d: its run
   * adapted (port, programs, and replacements), its log/run with multilog
   * as nobody, into a directory of the test.
   */
  function serviceDirectory(
    port: number,
    replacements: readonly [string, string][],
    substitutes: readonly [string, string][],
  ): { scan: string; current: string } {
    const scan = tempDir("qmail-popup-svscan-");
    const logs = tempDir("qmail-popup-multilog-");
    chmodSync(logs, 0o755);
    mkdirSync(join(scan, "qmail-pop3d/log"), { recursive: true });
    mkdirSync(join(logs, "qmail-pop3d"));
    const nobody = spawnSync("id", ["-u", "nobody"], { encoding: "latin1" }).stdout.trim();
    chownSync(join(logs, "qmail-pop3d"), Number(nobody), 0);
    const runScript = adapted("daemontools/qmail-pop3d/run", [
      ["tcpserver -v -R -H -l 0 0 110", `tcpserver -v -R -H -l 0 127.0.0.1 ${port}`],
      ...replacements,
      ...substitutes,
    ]);
    const logScript = adapted("daemontools/qmail-pop3d/log/run", [
      ["setuidgid qmaill", "setuidgid nobody"],
      ["/var/log/qmail/qmail-pop3d", join(logs, "qmail-pop3d")],
    ]);
    writeFileSync(join(scan, "qmail-pop3d/run"), runScript, { mode: 0o755 });
    writeFileSync(join(scan, "qmail-pop3d/log/run"), logScript, { mode: 0o755 });
    return { scan, current: join(logs, "qmail-pop3d/current") };
  }

  /** svscan on such a directory, once tcpserver says (through multilog) that it listens. */
  async function svscan(
    replacements: readonly [string, string][],
    { substitutes = programs(), extraEnvironment = {} }: { substitutes?: readonly [string, string][]; extraEnvironment?: Record<string, string> } = {},
  ): Promise<{ launcher: Launched; port: number; scan: string; current: string }> {
    let made = { scan: "", current: "" };
    const { launcher, port } = await listening(async (port) => {
      made = serviceDirectory(port, replacements, substitutes);
      const launcher = Launched.start("svscan", [made.scan], { ...environment, ...extraEnvironment }, { group: true });
      const said = await launcher.fileLine(made.current, /tcpserver: |error/);
      if (said?.includes("tcpserver: status: 0/40")) return launcher;
      await stopSupervised(launcher, made.scan);
      if (PORT_TAKEN.test(said ?? "")) return undefined;
      throw new Error(`tcpserver did not start: ${said}`);
    });
    return { launcher, port, ...made };
  }

  /**
   * svscan first (it would start supervise again), then down and exit for
   * both services, waiting until each supervise has let go of its lock
   * (setlock blocks until then); the group is ended last, whatever is left.
   */
  async function stopSupervised(launcher: Launched, scan: string): Promise<void> {
    await launcher.stop();
    const services = [join(scan, "qmail-pop3d"), join(scan, "qmail-pop3d/log")];
    await run("svc", ["-dx", ...services]);
    for (const service of services) await run("setlock", [join(service, "supervise/lock"), "true"]);
    launcher.endGroup();
  }

  const TAI64N = "@[0-9a-f]{24}";


  // The Python test programs (checkpassword, pop3d) need some 15 MB of address
  // space, and the login program runs under the run script's limits: the
  // limit is raised here; the next tests keep the shipped one, and Life with qmail's.
  it("svscan runs daemontools/qmail-pop3d (run and log/run): the log line, with tcpserver's, is in multilog's current", async () => {
    const { launcher, port, scan, current } = await svscan([["softlimit -m 3000000", "softlimit -m 100000000"]]);
    try {
      expect(await pop3Session(port)).toEqual({ code: 0, printed: SESSION_PRINTED });
      const line = await waitForLine(current, /qmail-popup:/);
      const pid = aliceAcceptedPattern("POP3", "127.0.0.1:unknown", `${TAI64N} `).exec(line)?.[1];
      expect(pid, line).toBeDefined();
      expect(await waitForLine(current, new RegExp(`tcpserver: ok ${pid} `))).toMatch(new RegExp(`^${TAI64N} tcpserver: ok ${pid} 0:127\\.0\\.0\\.1:${port} :127\\.0\\.0\\.1::\\d+$`));
      expect(await waitForLine(current, new RegExp(`tcpserver: end ${pid} `))).toMatch(new RegExp(`^${TAI64N} tcpserver: end ${pid} status 0$`));
    } finally {
      await stopSupervised(launcher, scan);
    }
  });

  /** The static stand-ins of make test-fixtures: they load under a run script's limit, as a static checkpassword would. */
  const STATIC_PROGRAMS: [string, string][] = programs().map(([path, program]) => [
    path,
    path.endsWith("/qmail-pop3d") ? join(ROOT, "dist/test-fixtures/pop3d") : path.endsWith("/checkpassword") ? join(ROOT, "dist/test-fixtures/checkpassword") : program,
  ]);

  /** poplib logs in as alice and asks STAT (the static pop3d's mailbox is empty). */
  const loginAndStat = (port: number) =>
    run("/usr/bin/python3", [
      "-c",
      "import poplib, sys\np = poplib.POP3('127.0.0.1', int(sys.argv[1]), timeout=20)\np.user('alice'); p.pass_('wonderland')\nprint(p.stat()); print(p.quit().decode())",
      String(port),
    ]);

  /** The soft limits the login program had: (address space, data, stack) from its /proc/self/limits. */
  function softMemoryLimits(record: string): string[] {
    const limits = readFileSync(record, "latin1");
    return ["Max address space", "Max data size", "Max stack size"].map((name) => new RegExp(`^${name}\\s+(\\S+)`, "m").exec(limits)?.[1] ?? `no ${name}`);
  }

  // The run script as shipped, softlimit -m 3000000 around tcpserver: qmail-popup
  // starts its runtime, a right password logs in, and the login program runs
  // under the administrator's limits, not the runtime's raised ones.
  it.each([
    ["the shipped run script, softlimit -m 3000000 around tcpserver", [] as [string, string][], "3000000"],
    // Life with qmail's -m 2000000: Debian 12's tcpserver cannot load under it, so it bounds qmail-popup alone.
    [
      "Life with qmail's softlimit -m 2000000 on qmail-popup",
      [
        ["exec softlimit -m 3000000 \\\n  tcpserver", "exec tcpserver"],
        ["\n  /var/qmail/bin/qmail-popup mail.example.org", "\n  softlimit -m 2000000 /var/qmail/bin/qmail-popup mail.example.org"],
      ] as [string, string][],
      "2000000",
    ],
  ])("%s: a login, the Accept line in multilog's current, the login program under that limit", async (_name, replacements, limit) => {
    const record = join(tempDir("qmail-popup-limits-"), "limits");
    const { launcher, port, scan, current } = await svscan(replacements, { substitutes: STATIC_PROGRAMS, extraEnvironment: { CHECKPASSWORD_RECORD: record } });
    try {
      expect(await loginAndStat(port)).toEqual({ code: 0, printed: "(0, 0)\n+OK \n" });
      const line = await waitForLine(current, /qmail-popup:/);
      expect(line).toMatch(aliceAcceptedPattern("POP3", "127.0.0.1:unknown", `${TAI64N} `));
      expect(softMemoryLimits(record)).toEqual([limit, limit, limit]);
    } finally {
      await stopSupervised(launcher, scan);
    }
  });
});
