// More than one host: qmail-popup behind real HAProxy (mode tcp,
// send-proxy and send-proxy-v2), as the manual's EXAMPLES set it up.
//
// Two tcpserver backends on 127.0.0.2 and 127.0.0.3 (loopback aliases: on
// Linux all of 127/8 is local) with a tcprules file that sets
// QMAIL_POPUP_PROXY for HAProxy's address, 127.0.0.1, only. The clients
// (curl, python's poplib, fetchmail) connect to HAProxy from 127.0.0.9, so
// the address in the log and in the login program's environment tells the
// client's address (the PROXY header's) from HAProxy's (the socket's).
//
// HAProxy's health checks that wait for the greeting: with the header (inherited
// from send-proxy, or check-send-proxy where the check has its own port) they
// are quiet; without it each is refused on fd 2 and HAProxy marks the servers
// down.
//
// Through HAProxy: the installed pair (bun-compiled) and resident mode.
// Then hostile headers against the binary itself, without HAProxy, in every
// runtime variant: each is refused with nothing sent, exit 1 and one line on
// fd 2; a header followed by commands in the same write leaves them to the
// session.
//
// Synchronisation: tcpserver's -v lines, HAProxy's "Loading success." (its
// master says so once the listeners are bound and the worker runs), the
// connection's close, and files. No sleeps.

import { spawn, spawnSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ServerProcess, freePort, startResident } from "../../scripts/lib/tcpserver.mjs";
import { PROXY, u16, v2 } from "../proxy-headers.ts";
import { Client, FIXTURES, TcpServer, fetchmail, makeHomes, runClient, tempDir, variants, type Variant } from "./harness.ts";

/** The installed pair behind HAProxy, per connection and in resident mode (a client cannot tell them apart). */
const BEHIND_HAPROXY = variants().filter((variant) => variant.name === "bun-compiled" || variant.name === "resident");
const LOGIN_PROGRAM = [join(FIXTURES, "checkpassword"), join(FIXTURES, "pop3d"), "Maildir"];
const BACKENDS = ["127.0.0.2", "127.0.0.3"] as const;
/** HAProxy's address: the one the rules trust. */
const BALANCER = "127.0.0.1";
/** The clients': neither HAProxy's nor a backend's. */
const CLIENT = "127.0.0.9";
/** haproxy is in /usr/sbin. */
const PATH = "/usr/sbin:/usr/bin:/sbin:/bin";

/** Message 1 of make-maildir as curl prints it: CRLF, unstuffed. */
const MESSAGE_1 =
  "From: sender@example.org\r\nTo: alice@example.org\r\nSubject: hello from the test maildir\r\n\r\n" +
  "Hello Alice,\r\n.this line starts with a dot\r\nThe quick brown fox.\r\n";

// --- processes of this file's own ----------------------------------------------------

/**
 * Both backends, each tcpserver -v -R -H -l localhost -x rules.cdb on its own
 * address and a free port of it, running the variant's front with fd 5 on its log.
 */
async function startBackends(variant: Variant, rules: string, logs: readonly string[], env: Record<string, string>): Promise<ServerProcess[]> {
  if (variant.resident !== undefined) await startResident(variant.resident);
  const started = await Promise.allSettled(
    BACKENDS.map((host, i) =>
      ServerProcess.tcpserver({ host, flags: ["-x", rules], command: [...variant.command, "mail.test", ...LOGIN_PROGRAM], env: { PATH: "/usr/bin:/bin", ...env, ...variant.env }, fd5: logs[i] }),
    ),
  );
  const servers = started.flatMap((outcome) => (outcome.status === "fulfilled" ? [outcome.value] : []));
  if (servers.length === BACKENDS.length) return servers;
  // One did not start: stop the other, which nothing else would.
  await Promise.all(servers.map((server) => server.stop()));
  throw (started.find((outcome) => outcome.status === "rejected") as PromiseRejectedResult).reason;
}

/** The balancer: options for each server line (given the backend's port), and extra lines for the backend (health checks). */
interface Balancing {
  readonly server: (port: number) => string;
  readonly backend?: readonly string[];
}

function haproxyConfig(front: number, backends: readonly ServerProcess[], balancing: Balancing): string {
  return [
    "global",
    "    maxconn 64",
    "defaults",
    "    mode tcp",
    "    timeout connect 2s",
    "    timeout client 10s",
    "    timeout server 10s",
    "    timeout check 1s",
    "frontend pop3",
    `    bind ${BALANCER}:${front}`,
    "    default_backend pop3",
    "backend pop3",
    "    balance roundrobin",
    ...(balancing.backend ?? []).map((line) => `    ${line}`),
    ...backends.map(({ port }, i) => `    server pop3-${i + 1} ${BACKENDS[i]}:${port} ${balancing.server(port)}`),
    "",
  ].join("\n");
}

/**
 * haproxy -W -db -f CONFIG: in the foreground, no log, no stats. -W (master
 * and one worker) for its "Loading success.": the master binds the
 * listeners, forks the worker and says so once the worker is ready.
 */
async function startHaproxy(dir: string, backends: readonly ServerProcess[], balancing: Balancing): Promise<{ front: number; haproxy: ServerProcess }> {
  let said = "";
  for (let attempt = 0; attempt < 4; attempt++) {
    const front = await freePort(BALANCER);
    const config = join(dir, "haproxy.cfg");
    writeFileSync(config, haproxyConfig(front, backends, balancing));
    const haproxy = new ServerProcess(spawn("haproxy", ["-W", "-db", "-f", config], { stdio: ["ignore", "ignore", "pipe"], env: { PATH } }));
    await haproxy.until(() => haproxy.log.includes("Loading success.") || haproxy.exited);
    if (haproxy.log.includes("Loading success.") && !haproxy.exited) return { front, haproxy };
    said = haproxy.log;
    await haproxy.stop();
  }
  throw new Error(`haproxy did not start:\n${said}`);
}

/** The tcprules file of the manual's EXAMPLES, for a balancer on 127.0.0.1, compiled. */
function compileRules(dir: string): string {
  const rules = join(dir, "rules");
  writeFileSync(rules, `${BALANCER}:allow,QMAIL_POPUP_PROXY="1"\n:allow\n`);
  const made = spawnSync("tcprules", [`${rules}.cdb`, `${rules}.tmp`], { input: readFileSync(rules), env: { PATH: "/usr/bin:/bin" } });
  if (made.status !== 0) throw new Error(`tcprules failed: ${made.stderr}`);
  return `${rules}.cdb`;
}

/** Connects from one address to another, sends input, resolves all it received once the server closed. */
function talkFrom(local: string, host: string, port: number, input: string): Promise<string> {
  return new Promise((done, reject) => {
    let received = "";
    const socket = connect({ host, port, localAddress: local }, () => socket.write(input));
    const deadline = setTimeout(() => {
      socket.destroy();
      reject(new Error(`${host}:${port} did not close; received ${JSON.stringify(received)}`));
    }, 20_000);
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => (received += chunk));
    socket.on("error", () => {});
    socket.on("close", () => {
      clearTimeout(deadline);
      done(received);
    });
  });
}

/** The fd-5 line of a login through HAProxy from CLIENT. */
const loginLine = (pid: string, method: string) => `qmail-popup: pid ${pid} Accept::AUTH::${method} P:POP3 S:${CLIENT}:unknown ?= 'alice'`;

/** Each tcpserver's "ok PID" pids, in order. */
const served = (server: ServerProcess) => [...server.log.matchAll(/^tcpserver: ok (\d+) /gm)].map((match) => match[1]!);
/** tcpserver prints the raw wait status: an exit code, or the signal that killed it. */
const waitStatus = (raw: number) => ((raw & 0x7f) === 0 ? String(raw >> 8) : `signal ${raw & 0x7f}`);
/** Each tcpserver's "end PID status S" lines, in order: the pid and how it ended. */
const ended = (server: ServerProcess) =>
  [...server.log.matchAll(/^tcpserver: end (\d+) status (\d+)$/gm)].map((match) => [match[1]!, waitStatus(Number(match[2]!))]);

// --- through HAProxy --------------------------------------------------------------------

describe.each(BEHIND_HAPROXY.flatMap((variant) => [{ sendProxy: "send-proxy", variant }, { sendProxy: "send-proxy-v2", variant }]))("HAProxy with $sendProxy, two backends: $variant.name", ({ sendProxy, variant }) => {
  const dir = tempDir("qmail-popup-haproxy-");
  const logs = BACKENDS.map((_, i) => join(dir, `log-${i + 1}`));
  const environment = join(dir, "environment");
  let backends: ServerProcess[] = [];
  let haproxy: ServerProcess | undefined;
  let front = 0;

  beforeAll(async () => {
    for (const log of logs) writeFileSync(log, "");
    const rules = compileRules(dir);
    backends = await startBackends(variant, rules, logs, {
      CHECKPASSWORD_HOMES: makeHomes(["alice"]),
      CHECKPASSWORD_ENV_RECORD: environment,
    });
    ({ front, haproxy } = await startHaproxy(dir, backends, { server: () => sendProxy }));
  });
  afterAll(async () => {
    await haproxy?.stop();
    await Promise.all(backends.map((backend) => backend.stop()));
  });

  // Four logins: round robin gives each backend two.
  test("curl, twice: AUTH PLAIN, message 1", async () => {
    for (let i = 0; i < 2; i++) {
      const { code, out } = await runClient("curl", ["-sS", "--max-time", "20", "--interface", CLIENT, `pop3://alice:wonderland@${BALANCER}:${front}/1`]);
      expect(code, out).toBe(0);
      expect(out).toBe(MESSAGE_1);
    }
  });

  test("python poplib: USER/PASS, STAT, RETR; the login program gets the client's address and HAProxy's", async () => {
    rmSync(environment, { force: true });
    const script = `
import poplib, socket
class FromClient(poplib.POP3):
    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=("${CLIENT}", 0))
p = FromClient("${BALANCER}", ${front}, timeout=20)
print(p.sock.getsockname()[1])
assert p.getwelcome() == b"+OK", p.getwelcome()
p.user("alice"); p.pass_("wonderland")
print(p.stat())
print(p.retr(1)[1][2].decode())
p.quit()`;
    const { code, out } = await runClient("python3", ["-c", script]);
    expect(code, out).toBe(0);
    const [clientPort, ...rest] = out.split("\n");
    expect(rest).toEqual(["(2, 250)", "Subject: hello from the test maildir", ""]);
    // checkpassword wrote it before it ran pop3d, which answered STAT.
    const recorded = new Map(
      readFileSync(environment, "latin1")
        .split("\n")
        .filter((line) => line !== "")
        .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
    );
    expect({
      TCPREMOTEIP: recorded.get("TCPREMOTEIP"),
      TCPREMOTEPORT: recorded.get("TCPREMOTEPORT"),
      TCPLOCALIP: recorded.get("TCPLOCALIP"),
      TCPLOCALPORT: recorded.get("TCPLOCALPORT"),
    }).toEqual({ TCPREMOTEIP: CLIENT, TCPREMOTEPORT: clientPort, TCPLOCALIP: BALANCER, TCPLOCALPORT: String(front) });
    // tcpserver's names for HAProxy's connection are gone (it set TCPLOCALHOST from -l); the rest passes.
    for (const name of ["TCPLOCALHOST", "TCPREMOTEHOST", "TCPREMOTEINFO", "TCP6REMOTEIP", "TCP6LOCALIP"]) expect(recorded.has(name), name).toBe(false);
    expect(recorded.get("PROTO")).toBe("TCP");
    expect(recorded.get("QMAIL_POPUP_PROXY")).toBe("1");
  });

  test("fetchmail (connecting from 127.0.0.9 through tcpclient, its plugin) retrieves both messages", async () => {
    // fetchmail splits the plugin's command at blanks, quotes or not: the relay is a script.
    const relay = join(dir, "relay");
    writeFileSync(relay, "#!/bin/sh\ncat <&6 &\nexec cat >&7\n", { mode: 0o755 });
    const plugin = `plugin "tcpclient -RHl0 -i ${CLIENT} %h %p ${relay}"`;
    const { code, out, mail } = await fetchmail(front, `auth password ${plugin}`, 'sslproto ""');
    expect(code, out).toBe(0);
    const fetched = readFileSync(mail, "latin1");
    expect(fetched).toContain("Subject: hello from the test maildir\n");
    expect(fetched).toContain("Subject: second message\n");
  });

  test("both backends served; every fd-5 line has the client's address, 127.0.0.9; nothing refused", async () => {
    // All four clients are done: every connection has its "ok" line; the "end" line follows the log line.
    for (const backend of backends) {
      expect(await backend.until(() => ended(backend).length === served(backend).length)).toBe(true);
    }
    const pids = backends.map(served);
    expect(pids.map((list) => list.length)).toEqual([2, 2]);
    for (const backend of backends) expect(ended(backend).map(([, status]) => status)).toEqual(["0", "0"]);
    const lines = logs.map((log) => readFileSync(log, "latin1").split("\n").slice(0, -1));
    // Round robin: curl, curl, poplib, fetchmail alternate between the two.
    expect(lines).toEqual([
      [loginLine(pids[0]![0]!, "Plain"), loginLine(pids[0]![1]!, "User")],
      [loginLine(pids[1]![0]!, "Plain"), loginLine(pids[1]![1]!, "User")],
    ]);
    expect(lines.flat().join("\n")).not.toContain(BALANCER);
    // qmail-popup said nothing on fd 2: no header was refused.
    for (const backend of backends) expect(backend.log.split("\n").filter((line) => line.startsWith("qmail-popup:"))).toEqual([]);
  });

  test("the rules: from 127.0.0.1 a header is required; from elsewhere none is read", async () => {
    const [first] = backends;
    expect(await talkFrom(CLIENT, BACKENDS[0], first!.port, "QUIT\r\n")).toBe("+OK\r\n+OK \r\n");
    expect(await talkFrom(BALANCER, BACKENDS[0], first!.port, "QUIT\r\n")).toBe("");
    expect(await first!.until(() => ended(first!).length === 4)).toBe(true);
    expect(ended(first!).slice(2).map(([, status]) => status)).toEqual(["0", "1"]);
    expect(first!.log.split("\n").filter((line) => line.startsWith("qmail-popup:"))).toEqual(["qmail-popup: PROXY header refused: not a PROXY header"]);
  });
});

// --- HAProxy's health checks -----------------------------------------------------------

/** What qmail-popup said on a tcpserver's fd 2. */
const said = (server: ServerProcess) => server.log.split("\n").filter((line) => line.startsWith("qmail-popup:"));

// Checks that wait for the greeting (option tcp-check, expect +OK) get a connection to
// qmail-popup, from the balancer's address: they must carry a header too. Every 200 ms,
// three of them per backend.
const CHECK = ["option tcp-check", "tcp-check expect string +OK"];
const CHECKS = [
  { name: "send-proxy, the header inherited by the checks", server: () => "send-proxy check inter 200ms", header: true },
  { name: "send-proxy-v2 with a check port, and check-send-proxy", server: (port: number) => `send-proxy-v2 check inter 200ms port ${port} check-send-proxy`, header: true },
  { name: "send-proxy with a check port, no check-send-proxy", server: (port: number) => `send-proxy check inter 200ms port ${port}`, header: false },
];
describe.each(BEHIND_HAPROXY.flatMap((variant) => CHECKS.map((check) => ({ ...check, variant }))))("HAProxy's health checks: $name: $variant.name", ({ server, header, variant }) => {
  const dir = tempDir("qmail-popup-haproxy-checks-");
  const logs = BACKENDS.map((_, i) => join(dir, `log-${i + 1}`));
  let backends: ServerProcess[] = [];
  let haproxy: ServerProcess | undefined;
  let front = 0;

  beforeAll(async () => {
    for (const log of logs) writeFileSync(log, "");
    backends = await startBackends(variant, compileRules(dir), logs, { CHECKPASSWORD_HOMES: makeHomes(["alice"]) });
    ({ front, haproxy } = await startHaproxy(dir, backends, { server, backend: CHECK }));
  });
  afterAll(async () => {
    await haproxy?.stop();
    await Promise.all(backends.map((backend) => backend.stop()));
  });

  test(header ? "each check: a header, the greeting, exit 1 at HAProxy's close; nothing on fd 2 or fd 5; the servers up" : "each check refused on fd 2; HAProxy marks the servers down", async () => {
    for (const backend of backends) expect(await backend.until(() => ended(backend).length >= 3)).toBe(true);
    for (const backend of backends) expect(ended(backend).slice(0, 3).map(([, status]) => status)).toEqual(["1", "1", "1"]);
    for (const log of logs) expect(readFileSync(log, "latin1")).toBe("");
    if (header) {
      for (const backend of backends) expect(said(backend)).toEqual([]);
      expect(haproxy!.log).not.toContain("DOWN");
      const { code, out } = await runClient("curl", ["-sS", "--max-time", "20", "--interface", CLIENT, `pop3://alice:wonderland@${BALANCER}:${front}/1`]);
      expect(code, out).toBe(0);
      expect(out).toBe(MESSAGE_1);
    } else {
      for (const backend of backends) {
        expect(said(backend).slice(0, 3)).toEqual(Array(3).fill("qmail-popup: PROXY header refused: the connection ended first"));
      }
      expect(await haproxy!.until(() => BACKENDS.every((_, i) => haproxy!.log.includes(`Server pop3/pop3-${i + 1} is DOWN`)))).toBe(true);
    }
  });
});

// --- hostile headers, no HAProxy -------------------------------------------------------

/** TCP over IPv4, 192.0.2.7:40000 to 198.51.100.1:110. */
const V2_TCP4 = v2(PROXY, 0x11, [192, 0, 2, 7, 198, 51, 100, 1, ...u16(40000), ...u16(110)]);
const V1_TCP4 = "PROXY TCP4 192.0.2.7 198.51.100.1 40000 110\r\n";

interface Refusal {
  readonly name: string;
  readonly bytes: Uint8Array;
  /** The client closes its side after the bytes. */
  readonly end: boolean;
  readonly reason: string;
}

const REFUSALS: readonly Refusal[] = [
  { name: "a v1 header cut short", bytes: Buffer.from(V1_TCP4.slice(0, 30)), end: true, reason: "the connection ended first" },
  { name: "v1 with no CRLF in 107 bytes (120 sent)", bytes: Buffer.from("PROXY UNKNOWN " + "x".repeat(106)), end: false, reason: "v1: no CRLF in 107 bytes" },
  { name: "a wrong v2 signature", bytes: Buffer.concat([Buffer.from("\r\n\r\n\0\r\nQUIX\n"), V2_TCP4.subarray(12)]), end: false, reason: "not a PROXY header" },
  { name: "v2 with a length over the bound (4097)", bytes: v2(PROXY, 0x11, [], 4097), end: false, reason: "v2: length 4097 over 4096" },
  { name: "v2 with the largest length (65535)", bytes: v2(PROXY, 0x11, [], 65535), end: false, reason: "v2: length 65535 over 4096" },
  { name: "v2 TCP4 with a length under its address block (11)", bytes: v2(PROXY, 0x11, new Array<number>(11).fill(0)), end: false, reason: "v2: length 11 under the address block's 12" },
  { name: "v2 TCP6 with a length under its address block (35)", bytes: v2(PROXY, 0x21, new Array<number>(35).fill(0)), end: false, reason: "v2: length 35 under the address block's 36" },
  { name: "a client that closes before sending anything", bytes: Buffer.alloc(0), end: true, reason: "the connection ended first" },
  { name: "POP3 where a header is due", bytes: Buffer.from("USER alice\r\n"), end: false, reason: "not a PROXY header" },
];

/** qmail-popup's lines on fd 2 for connection pid: between tcpserver's "ok PID" and "end PID" (the tests run one at a time). */
function saidFor(server: TcpServer, pid: number): string[] {
  const log = server.log;
  const from = log.indexOf(`tcpserver: ok ${pid} `);
  const to = log.indexOf(`tcpserver: end ${pid} status`);
  return log
    .slice(from, to)
    .split("\n")
    .filter((line) => line.startsWith("qmail-popup:"));
}

/** Connects, sends, maybe closes its side; resolves what came back, the exit status and the fd-2 lines. */
async function session(server: TcpServer, bytes: Uint8Array, end: boolean): Promise<{ text: string; status: string; said: string[]; pid: number }> {
  const client = await Client.connect(server.port);
  const pid = await server.pidFor(client.localPort);
  if (bytes.length > 0) await client.send(bytes);
  if (end) client.end();
  const text = await client.untilClosed();
  const status = await server.endOf(pid);
  return { text, status, said: saidFor(server, pid), pid };
}

describe.each(variants())("PROXY headers without HAProxy: $name", (variant) => {
  const dir = tempDir("qmail-popup-proxy-");
  const log = join(dir, "log");
  const environment = join(dir, "environment");
  const homes = makeHomes(["alice"]);
  let proxied: TcpServer;
  let unset: TcpServer;
  let empty: TcpServer;

  beforeAll(async () => {
    [proxied, unset, empty] = await Promise.all([
      TcpServer.start({ variant, homes, logFile: log, env: { QMAIL_POPUP_PROXY: "1", CHECKPASSWORD_ENV_RECORD: environment } }),
      TcpServer.start({ variant, homes }),
      TcpServer.start({ variant, homes, env: { QMAIL_POPUP_PROXY: "" } }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([proxied.stop(), unset.stop(), empty.stop()]);
  });

  test.each(REFUSALS)("$name: no greeting, exit 1, the reason on fd 2", async ({ bytes, end, reason }) => {
    const { text, status, said } = await session(proxied, bytes, end);
    expect(text).toBe("");
    expect(status).toBe("1");
    expect(said).toEqual([`qmail-popup: PROXY header refused: ${reason}`]);
  });

  test("a v1 header and USER, QUIT in the same write: the commands are the session's", async () => {
    const { text, status, said } = await session(proxied, Buffer.from(`${V1_TCP4}USER alice\r\nQUIT\r\n`), false);
    expect(text).toBe("+OK\r\n+OK \r\n+OK \r\n");
    expect(status).toBe("0");
    expect(said).toEqual([]);
  });

  test("a v2 header and USER, QUIT in the same write: the commands are the session's", async () => {
    const { text, status, said } = await session(proxied, Buffer.concat([V2_TCP4, Buffer.from("USER alice\r\nQUIT\r\n")]), false);
    expect(text).toBe("+OK\r\n+OK \r\n+OK \r\n");
    expect(status).toBe("0");
    expect(said).toEqual([]);
  });

  test("a v2 header and a whole login in one write: the header's addresses in the log and the login program's environment", async () => {
    rmSync(environment, { force: true });
    const { text, status, said, pid } = await session(proxied, Buffer.concat([V2_TCP4, Buffer.from("USER alice\r\nPASS wonderland\r\nQUIT\r\n")]), false);
    expect(text).toBe("+OK\r\n+OK \r\n+OK \r\n+OK \r\n");
    expect(status).toBe("0");
    expect(said).toEqual([]);
    // tcpserver reported the end: the front wrote the line before it exited.
    expect(readFileSync(log, "latin1").split("\n")).toContain(`qmail-popup: pid ${pid} Accept::AUTH::User P:POP3 S:192.0.2.7:unknown ?= 'alice'`);
    const recorded = readFileSync(environment, "latin1").split("\n");
    for (const variable of ["TCPREMOTEIP=192.0.2.7", "TCPREMOTEPORT=40000", "TCPLOCALIP=198.51.100.1", "TCPLOCALPORT=110"]) {
      expect(recorded).toContain(variable);
    }
  });

  test("QMAIL_POPUP_PROXY unset or empty: a header is a command like any other", async () => {
    for (const server of [unset, empty]) {
      const { text, status, said } = await session(server, Buffer.from(`${V1_TCP4}QUIT\r\n`), false);
      expect(text).toBe("+OK\r\n-ERR authorization first\r\n+OK \r\n");
      expect(status).toBe("0");
      expect(said).toEqual([]);
    }
  });
});

// The header's time limit is 10 seconds: every variant at once, so that the wait is paid once.
describe("a client that connects and sends nothing", () => {
  const servers: TcpServer[] = [];

  beforeAll(async () => {
    servers.push(...(await Promise.all(variants().map((variant) => TcpServer.start({ variant, env: { QMAIL_POPUP_PROXY: "1" } })))));
  });
  afterAll(async () => {
    await Promise.all(servers.map((server) => server.stop()));
  });

  test("is refused after 10 seconds, in every variant: nothing sent, exit 1, the reason on fd 2", { timeout: 40_000 }, async () => {
    const outcomes = await Promise.all(
      servers.map(async (server) => {
        const client = await Client.connect(server.port);
        const connected = performance.now();
        const pid = await server.pidFor(client.localPort);
        const text = await client.untilClosed(25_000);
        const waited = performance.now() - connected;
        const status = await server.endOf(pid);
        return { text, status, said: saidFor(server, pid), waited: waited >= 10_000 && waited < 25_000 };
      }),
    );
    for (const outcome of outcomes) {
      expect(outcome).toEqual({ text: "", status: "1", said: ["qmail-popup: PROXY header refused: none within 10 seconds"], waited: true });
    }
  });
});
