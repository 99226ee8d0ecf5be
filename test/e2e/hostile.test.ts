// The adversarial suite (issue #6): what a hostile or broken client, a
// broken subprogram and a broken environment do to the compiled binary under
// real tcpserver. Every case checks its outcome and that the session ended:
// tcpserver's "end PID", the pid gone from /proc, and no process left with
// that connection's TCPREMOTEPORT in its environment (whatever qmail-popup
// started inherits it). Waits are on tcpserver's lines, on the connection,
// or on files; the only timers are a client's own behaviour (a slow drip)
// and the check that something is still alive after POP3TIMEOUT.
//
// The compiled binary runs in both of its modes where they may differ: the
// default, where it becomes a /bin/sh waiter by execve once the credentials
// are in a pipe, and QMAIL_POPUP_NOEXEC=1, where it waits in-process.
// Helpers: hostile-helpers.ts; the cases that depend on the mode:
// hostile-cases.ts; what the misbehaving programs do: hostile-prog.py and
// hostile-exec.py.

import { createHash, randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { TcpServer, makeHomes, tempDir } from "./harness.ts";
import { hangUpDuringFailingChild } from "./hostile-cases.ts";
import {
  CHECKPASSWORD,
  COMPILED,
  CRASHED,
  FAILED,
  LOGGED_IN,
  LOGIN,
  MODES,
  POP3D,
  POP3TIMEOUT,
  PROG,
  RawClient,
  TEMPORARY,
  alive,
  expectReply,
  fileContent,
  finished,
  open,
  processesServing,
  serverPool,
  talk,
  transcripts,
  within,
  wrapped,
} from "./hostile-helpers.ts";

// --- what a client sends -------------------------------------------------------------

describe.each(COMPILED)("hostile input: $name", (variant) => {
  const pool = serverPool();
  const homes = makeHomes();
  let plain: TcpServer;
  let quick: TcpServer;

  beforeAll(async () => {
    [plain, quick] = await Promise.all([
      pool.start({ variant, homes }),
      pool.start({ variant, homes, env: { POP3TIMEOUT: String(POP3TIMEOUT) } }),
    ]);
  });
  afterAll(() => pool.stopAll());

  test("32 KB without a newline, then CRLF and QUIT: one -ERR line too long, then +OK", async () => {
    const { text, status } = await talk(plain, Buffer.concat([Buffer.alloc(32 * 1024, "a"), Buffer.from("\r\nQUIT\r\n")]));
    expect(text).toBe("+OK\r\n-ERR line too long\r\n+OK \r\n");
    expect(status).toBe("0");
  });

  test("10 MB without a newline: the session ends once 64 KiB are in (INPUT_LIMIT), memory and CPU with it", async () => {
    const { client, pid } = await open(plain);
    void client.send(Buffer.alloc(10 * 1024 * 1024, "b"));
    expect(await client.untilClosed()).toBe("+OK\r\n");
    expect(await finished(plain, pid, client.localPort)).toBe("1");
    await plain.logged("qmail-popup: more than 65536 bytes before a login: session ended\n");
  });

  test("the line limit, exactly: 1024 bytes with the CRLF are a command, 1025 are too long", async () => {
    const user = (length: number) => "USER " + "n".repeat(length - "USER ".length - 2) + "\r\n";
    const { text, status } = await talk(plain, user(1024) + user(1025) + "QUIT\r\n");
    expect(text).toBe("+OK\r\n+OK \r\n-ERR line too long\r\n+OK \r\n");
    expect(status).toBe("0");
  });

  test("a SASL response may be longer than a command: 2046 bytes reach checkpassword, 2050 are too long", async () => {
    // A PLAIN response of `decoded` bytes: \0alice\0 and a long wrong password.
    const plainResponse = (decoded: number) => Buffer.from("\0alice\0" + "p".repeat(decoded - 7)).toString("base64") + "\r\n";
    expect(plainResponse(1533).length).toBe(2046);
    expect(plainResponse(1536).length).toBe(2050);
    const taken = await talk(plain, "AUTH PLAIN\r\n" + plainResponse(1533));
    expectReply(taken.text, "+OK\r\n+ \r\n", FAILED);
    expect(taken.status).toBe("1");
    const refused = await talk(plain, "AUTH PLAIN\r\n" + plainResponse(1536) + "QUIT\r\n");
    expect(refused.text).toMatch(/^\+OK\r\n\+ \r\n-ERR [^\r\n]*\r\n\+OK \r\n$/);
    expect(refused.status).toBe("0");
  });

  test("10 000 NOOP lines in one stream (60 000 bytes, within INPUT_LIMIT): every one answered, in order", async () => {
    const count = 10_000;
    const { text, status } = await talk(plain, "NOOP\r\n".repeat(count) + "QUIT\r\n");
    const replies = text.split("\r\n").slice(1, -1);
    expect(replies.length).toBe(count + 1);
    expect(text).toBe("+OK\r\n" + "+OK \r\n".repeat(count + 1));
    expect(status).toBe("0");
  });

  test("a line of NULs, and a NUL in a USER line: -ERR, nothing taken, the session goes on", async () => {
    const { text, status } = await talk(plain, "\0".repeat(200) + "\r\nUSER \0alice\r\nPASS x\r\nQUIT\r\n");
    expect(text).toMatch(/^\+OK\r\n-ERR [^\r\n]*\r\n-ERR [^\r\n]*\r\n-ERR USER first\r\n\+OK \r\n$/);
    expect(status).toBe("0");
  });

  test("bytes 0x80-0xFF: an unknown command, and a USER name that reaches checkpassword", async () => {
    const high = Buffer.from(Array.from({ length: 128 }, (_, i) => 0x80 + i));
    const input = Buffer.concat([high, Buffer.from("\r\nUSER "), high, Buffer.from("\r\nPASS x\r\n")]);
    const { text, status } = await talk(plain, input);
    expectReply(text, "+OK\r\n-ERR authorization first\r\n+OK \r\n", FAILED);
    expect(status).toBe("1");
  });

  test("bare CRs are ordinary bytes: NOOP\\rQUIT is one unknown command", async () => {
    const { text, status } = await talk(plain, "NOOP\rQUIT\r\n\r\r\r\nQUIT\r\r\n\rNOOP\r\nQUIT\r\n");
    expect(text).toBe("+OK\r\n" + "-ERR authorization first\r\n".repeat(4) + "+OK \r\n");
    expect(status).toBe("0");
  });

  test("a lone LF is an empty line: -ERR authorization first; a bare LF ends QUIT", async () => {
    const { text, status } = await talk(plain, "\n\r\nQUIT\n");
    expect(text).toBe("+OK\r\n-ERR authorization first\r\n-ERR authorization first\r\n+OK \r\n");
    expect(status).toBe("0");
  });

  test("one byte per TCP segment: USER, PASS and what follows PASS all arrive whole", async () => {
    const { client, pid } = await open(plain);
    await client.sendBytewise(LOGIN);
    expect(await client.untilClosed()).toBe(LOGGED_IN);
    expect(await finished(plain, pid, client.localPort)).toBe("0");
  });

  test("a client that stops reading while it sends more: the write timeout ends the session", async () => {
    const client = await RawClient.connect(quick.port);
    const pid = await quick.pidFor(client.localPort);
    client.socket.pause();
    // About 30 MB of CAPA answers for 1.8 MB of commands: far more than both socket buffers hold.
    void client.send("CAPA\r\n".repeat(300_000));
    expect(await finished(quick, pid, client.localPort)).toBe("1");
    client.destroy();
  });
});

// --- EOF and RST at every step ------------------------------------------------------

describe.each(MODES)("EOF and RST at every step: $name", (variant) => {
  const pool = serverPool();
  const homes = makeHomes();
  const work = tempDir("qmail-popup-hostile-");
  let plain: TcpServer;
  let ready: TcpServer;

  beforeAll(async () => {
    [plain, ready] = await Promise.all([
      pool.start({ variant, homes }),
      // Logged in: checkpassword runs a program that says +OK ready and reads fd 0 until EOF.
      pool.start({ variant, homes, subprogram: [CHECKPASSWORD, PROG, "ready"], env: { HOSTILE_RECORD: join(work, "ready") }, logFile: join(work, "ready-log") }),
    ]);
  });
  afterAll(() => pool.stopAll());

  const hangUp = (client: RawClient, how: "EOF" | "RST") => (how === "EOF" ? client.end() : client.reset());

  describe.each(["EOF", "RST"] as const)("%s", (how) => {
    test.concurrent("right after connecting, before the greeting is read: the session ends, status 1", async () => {
      const client = await RawClient.connect(plain.port);
      const port = client.localPort;
      hangUp(client, how);
      const pid = await plain.pidFor(port);
      expect(await finished(plain, pid, port)).toBe("1");
    });

    test.concurrent("after the greeting: silent end, status 1", async () => {
      const { client, pid } = await open(plain);
      hangUp(client, how);
      expect(await finished(plain, pid, client.localPort)).toBe("1");
      expect(client.text).toBe("+OK\r\n");
    });

    test.concurrent("after USER: silent end, status 1", async () => {
      const { client, pid } = await open(plain);
      await client.send("USER alice\r\n");
      await client.lines(2);
      hangUp(client, how);
      expect(await finished(plain, pid, client.localPort)).toBe("1");
      expect(client.text).toBe("+OK\r\n+OK \r\n");
    });

    test.concurrent("in the middle of the PASS line: silent end, status 1, nothing run", async () => {
      const { client, pid } = await open(plain);
      await client.send("USER alice\r\nPASS wonder");
      await client.lines(2);
      hangUp(client, how);
      expect(await finished(plain, pid, client.localPort)).toBe("1");
      expect(client.text).toBe("+OK\r\n+OK \r\n");
    });

    test.concurrent("during the logged-in program: it sees the hang-up and ends, and so does the session (Accept)", async () => {
      const { client, pid } = await open(ready);
      await client.send("USER alice\r\nPASS wonderland\r\n");
      await client.untilEndsWith("+OK ready\r\n");
      const child = Number(await fileContent(join(work, `ready.${client.localPort}`)));
      expect(alive(child)).toBe(true);
      hangUp(client, how);
      expect(await finished(ready, pid, client.localPort)).toBe("0");
      expect(alive(child)).toBe(false);
      expect(readFileSync(join(work, "ready-log"), "latin1")).toContain(`qmail-popup: pid ${pid} Accept::AUTH::User `);
    });

    test.concurrent("QUIT with more commands behind it in the same write: nothing more answered or run", async () => {
      const { client, pid } = await open(plain);
      await client.send("QUIT\r\nNOOP\r\nUSER alice\r\nPASS wonderland\r\n");
      if (how === "RST") client.reset();
      const status = await finished(plain, pid, client.localPort);
      await client.untilClosed();
      if (how === "EOF") {
        expect(status).toBe("0");
        expect(client.text).toBe("+OK\r\n+OK \r\n");
      } else {
        // The RST may come before QUIT is read or its +OK written: then the session ends with 1.
        expect(["0", "1"]).toContain(status);
        expect("+OK\r\n+OK \r\n".startsWith(client.text)).toBe(true);
      }
    });

    test.concurrent("after QUIT's +OK, a client that sends on: status 0, nothing more answered", async () => {
      const { client, pid } = await open(plain);
      await client.send("QUIT\r\n");
      await client.lines(2);
      await client.send("NOOP\r\nNOOP\r\n");
      hangUp(client, how);
      expect(await finished(plain, pid, client.localPort)).toBe("0");
      expect(client.text).toBe("+OK\r\n+OK \r\n");
    });
  });

  test.concurrent("EOF while a refusing checkpassword still runs: the reply and the Reject log line are written, status 1", () =>
    hangUpDuringFailingChild(variant, "EOF"),
  );
});

// --- timeouts -------------------------------------------------------------------------------

describe.each(COMPILED)("timeouts (POP3TIMEOUT=2): $name", (variant) => {
  const pool = serverPool();
  let quick: TcpServer;

  beforeAll(async () => {
    quick = await pool.start({ variant, env: { POP3TIMEOUT: String(POP3TIMEOUT) } });
  });
  afterAll(() => pool.stopAll());

  test.concurrent("an idle client: the session ends after about POP3TIMEOUT, silently, status 1", async () => {
    const { client, pid } = await open(quick);
    const start = Date.now();
    expect(await finished(quick, pid, client.localPort)).toBe("1");
    const elapsed = (Date.now() - start) / 1000;
    expect(elapsed).toBeGreaterThan(POP3TIMEOUT - 0.5);
    expect(elapsed).toBeLessThan(POP3TIMEOUT + 3);
    await client.untilClosed();
    expect(client.text).toBe("+OK\r\n");
  });

  test.concurrent("a slow drip of one byte a second cannot hold it open: the deadline covers the whole line", async () => {
    const { client, pid } = await open(quick);
    const start = Date.now();
    const drip = "NOOP\r\n";
    let sent = 0;
    // The client's own behaviour: a byte now, then one every second.
    const send = () => {
      if (!client.closed) void client.send(drip[sent++ % drip.length]!);
    };
    send();
    const timer = setInterval(send, 1000);
    try {
      expect(await finished(quick, pid, client.localPort)).toBe("1");
    } finally {
      clearInterval(timer);
    }
    const elapsed = (Date.now() - start) / 1000;
    expect(elapsed, `ended ${elapsed} s after the line started`).toBeLessThan(POP3TIMEOUT + 1.5);
    expect(sent).toBeLessThan(drip.length);
    await client.untilClosed();
    expect(client.text).toBe("+OK\r\n");
  });

  test.concurrent("a client typing slowly but steadily (a line in 1.2 s, under POP3TIMEOUT) is served: the deadline is per line", async () => {
    const { client, pid } = await open(quick);
    const typed = "NOOP\r\nNOOP\r\nNOOP\r\nQUIT\r\n";
    let sent = 0;
    // The client's own behaviour: a byte every 200 ms.
    const timer = setInterval(() => {
      if (sent < typed.length && !client.closed) void client.send(typed[sent++]!);
    }, 200);
    try {
      expect(await finished(quick, pid, client.localPort)).toBe("0");
    } finally {
      clearInterval(timer);
    }
    expect(client.text).toBe("+OK\r\n" + "+OK \r\n".repeat(4));
  });
});

// --- subprogram faults ------------------------------------------------------------------

describe.each(MODES)("subprogram faults: $name", (variant) => {
  const pool = serverPool();
  const homes = makeHomes();
  const work = tempDir("qmail-popup-hostile-");
  const notExecutable = join(work, "not-executable");
  writeFileSync(notExecutable, "#!/bin/sh\nexit 0\n", { mode: 0o644 });
  const servers: Record<string, TcpServer> = {};
  const subprograms: Record<string, string[]> = {
    missing: ["/nonexistent/hostile-prog"],
    notExecutable: [notExecutable],
    directory: [work],
    checkpassword: [CHECKPASSWORD, POP3D, "Maildir"],
    close3ok: [PROG, "close3", "0"],
    close3fail: [PROG, "close3", "1"],
    stderr: [PROG, "stderr", "1"],
  };

  beforeAll(async () => {
    const started = await Promise.all(Object.entries(subprograms).map(async ([name, subprogram]) => [name, await pool.start({ variant, homes, subprogram })] as const));
    for (const [name, server] of started) servers[name] = server;
    servers.sleep = await pool.start({ variant, subprogram: [PROG, "sleep"], env: { POP3TIMEOUT: String(POP3TIMEOUT), HOSTILE_RECORD: join(work, "sleep") } });
  });
  afterAll(() => pool.stopAll());

  test.concurrent.each(["missing", "notExecutable", "directory"])("a subprogram that cannot be run (%s): a temporary failure, the reason on fd 2", async (name) => {
    const server = servers[name]!;
    const { text, status } = await talk(server, "USER alice\r\nPASS wonderland\r\n");
    expectReply(text, "+OK\r\n+OK \r\n", TEMPORARY);
    expect(status).toBe("1");
    expect(server.log).toMatch(/qmail-popup: unable to run [^\n]*\n/);
  });

  test.concurrent.each([
    ["bob", "a wrong password (exit 1)", FAILED],
    ["exit2", "exit 2", FAILED],
    ["tempfail", "exit 111", TEMPORARY],
    ["crash", "SIGSEGV", CRASHED],
    ["killed", "SIGKILL", CRASHED],
  ] as const)("checkpassword for %s: %s", async (user, _what, reply) => {
    const { text, status } = await talk(servers.checkpassword!, `USER ${user}\r\nPASS nope\r\n`);
    expectReply(text, "+OK\r\n+OK \r\n", reply);
    expect(status).toBe("1");
  });

  test.concurrent("a subprogram that closes fd 3 unread: its exit status decides (0: logged in, 1: refused)", async () => {
    const ok = await talk(servers.close3ok!, "USER alice\r\nPASS wonderland\r\n");
    expect(ok.text).toBe("+OK\r\n+OK \r\n");
    expect(ok.status).toBe("0");
    const refused = await talk(servers.close3fail!, "USER alice\r\nPASS wonderland\r\n");
    expectReply(refused.text, "+OK\r\n+OK \r\n", FAILED);
    expect(refused.status).toBe("1");
  });

  test.concurrent("what a subprogram writes to fd 2 reaches the client (fd 2 = fd 1), before the reply", async () => {
    const { text, status } = await talk(servers.stderr!, "USER alice\r\nPASS wonderland\r\n");
    expectReply(text, "+OK\r\n+OK \r\nhostile-prog: a word on fd 2\r\n", FAILED);
    expect(status).toBe("1");
  });

  test.concurrent("a subprogram that hangs is not timed out by POP3TIMEOUT; killed, it is a crash", async () => {
    const server = servers.sleep!;
    const { client, pid } = await open(server);
    await client.send("USER alice\r\nPASS wonderland\r\n");
    const child = Number(await fileContent(join(work, `sleep.${client.localPort}`)));
    // A timer is the check itself here: still there after POP3TIMEOUT + 1 s.
    await new Promise((wake) => setTimeout(wake, (POP3TIMEOUT + 1) * 1000));
    expect(alive(pid)).toBe(true);
    expect(alive(child)).toBe(true);
    expect(server.log).not.toMatch(new RegExp(`end ${pid} `));
    expect(client.closed).toBe(false);
    process.kill(child, "SIGTERM");
    expect(await finished(server, pid, client.localPort)).toBe("1");
    await client.untilClosed();
    expectReply(client.text, "+OK\r\n+OK \r\n", CRASHED);
  });
});

// --- environment faults -----------------------------------------------------------------

describe.each(MODES)("environment faults: $name", (variant) => {
  const pool = serverPool();
  const homes = makeHomes();
  const longHostname = "h".repeat(292) + ".example";
  let closed5: TcpServer;
  let nonBlocking: TcpServer;
  let spaces: TcpServer;
  let long: TcpServer;
  let tlsOffered: TcpServer;
  let tlsRequired: TcpServer;
  let tlsGarbage: TcpServer;

  beforeAll(async () => {
    [closed5, nonBlocking, spaces, long, tlsOffered, tlsRequired, tlsGarbage] = await Promise.all([
      pool.start({ variant: wrapped(variant, "--fd5=closed"), homes }),
      pool.start({ variant: wrapped(variant, "--nonblock"), homes }),
      pool.start({ variant, homes, hostname: "mail host with spaces", env: { POP3AUTH: "+apop" } }),
      pool.start({ variant, homes, hostname: longHostname, env: { POP3AUTH: "+apop" } }),
      pool.start({ variant, homes, env: { UCSPITLS: "" } }),
      pool.start({ variant, homes, env: { UCSPITLS: "!" } }),
      pool.start({ variant, homes, env: { UCSPITLS: "", SSLCTLFD: "-1", SSLREADFD: "x", SSLWRITEFD: "99999999999" } }),
    ]);
  });
  afterAll(() => pool.stopAll());

  test.concurrent("fd 5 closed: no log, logins and refusals as usual", async () => {
    const ok = await talk(closed5, LOGIN);
    expect(ok.text).toBe(LOGGED_IN);
    expect(ok.status).toBe("0");
    const refused = await talk(closed5, "USER bob\r\nPASS nope\r\n");
    expectReply(refused.text, "+OK\r\n+OK \r\n", FAILED);
    expect(refused.status).toBe("1");
    // Nor does the log line go anywhere else (fd 2 is tcpserver's log here).
    expect(closed5.log).not.toContain("qmail-popup: pid");
  });

  test.concurrent("fds 0 and 1 non-blocking at start: the subprogram still gets them blocking (pop3d checks)", async () => {
    const { text, status } = await talk(nonBlocking, LOGIN);
    expect(text).toBe(LOGGED_IN);
    expect(status).toBe("0");
  });

  test.concurrent.each([
    ["with spaces", () => spaces, "mail host with spaces"],
    ["of 300 bytes", () => long, longHostname],
  ] as const)("a hostname %s: in the greeting verbatim, and APOP with that timestamp logs in", async (_what, server, hostname) => {
    const { client, pid } = await open(server());
    const match = /^\+OK (<(\d+)\.\d+@(.*)>)\r\n$/.exec(client.text);
    expect(match, JSON.stringify(client.text)).not.toBeNull();
    expect(Number(match![2])).toBe(pid);
    expect(match![3]).toBe(hostname);
    const digest = createHash("md5").update(match![1] + "wonderland").digest("hex");
    await client.send(`APOP alice ${digest}\r\nQUIT\r\n`);
    expect(await client.untilClosed()).toBe(`${match![0]}+OK \r\n+OK \r\n`);
    expect(await finished(server(), pid, client.localPort)).toBe("0");
  });

  test.concurrent("UCSPITLS set without its descriptors (or with nonsense in them): STLS not offered, USER/PASS works", async () => {
    for (const server of [tlsOffered, tlsGarbage]) {
      const { text, status } = await talk(server, "CAPA\r\nSTLS\r\n" + LOGIN);
      expect(text).toMatch(/^\+OK\r\n\+OK capability list follows\r\n(?:[^\r\n]+\r\n)*\.\r\n-ERR STLS not available\r\n\+OK \r\n\+OK \r\n\+OK 2 250\r\n\+OK \r\n$/);
      expect(text).not.toMatch(/\r\nSTLS\r\n/);
      expect(status).toBe("0");
    }
  });

  test.concurrent("UCSPITLS=! without its descriptors: USER and AUTH refused, never taken in clear", async () => {
    for (const input of ["USER alice\r\nPASS wonderland\r\n", `AUTH PLAIN ${Buffer.from("\0alice\0wonderland").toString("base64")}\r\n`]) {
      const { text, status } = await talk(tlsRequired, input);
      expect(text).toBe("+OK\r\n-ERR TLS required but not negotiated\r\n");
      expect(status).toBe("1");
    }
  });
});

// --- many at once -------------------------------------------------------------------------

describe.each(COMPILED)("200 connections at once: $name", (variant) => {
  const pool = serverPool();
  let server: TcpServer;
  beforeAll(async () => {
    server = await pool.start({ variant });
  });
  afterAll(() => pool.stopAll());

  test("all greeted while all 200 are open, all get +OK for QUIT, all end with status 0", async () => {
    // tcpserver listens with a backlog of 20: a burst of 200 connects would lose
    // handshakes in its queue. They are opened 16 at a time, each batch greeted
    // before the next; then all 200 are open at once.
    const sessions: { client: RawClient; pid: number }[] = [];
    for (let opened = 0; opened < 200; opened += 16) {
      sessions.push(...(await Promise.all(Array.from({ length: Math.min(16, 200 - opened) }, () => open(server)))));
    }
    expect(sessions).toHaveLength(200);
    expect(sessions.filter(({ pid }) => !alive(pid))).toEqual([]);
    expect(sessions.filter(({ client }) => client.text !== "+OK\r\n").map(({ client }) => client.text)).toEqual([]);
    const results = await Promise.all(
      sessions.map(async ({ client, pid }) => {
        await client.send("QUIT\r\n");
        const text = await client.untilClosed(40_000);
        return { text, pid, status: await within(40_000, `end of ${pid}`, server.endOf(pid)) };
      }),
    );
    expect(results.filter((result) => result.text !== "+OK\r\n+OK \r\n").map((result) => result.text)).toEqual([]);
    expect(results.filter((result) => result.status !== "0").map((result) => result.status)).toEqual([]);
    expect(new Set(results.map((result) => result.pid)).size).toBe(200);
    expect(results.filter((result) => alive(result.pid)).map((result) => result.pid)).toEqual([]);
    expect([...processesServing(server.port, sessions.map(({ client }) => client.localPort)).keys()]).toEqual([]);
    expect(server.log).not.toMatch(/ status [1-9]/);
  }, 60_000);
});

// --- security ---------------------------------------------------------------------------

describe.each(MODES)("security: $name", (variant) => {
  const pool = serverPool();
  const work = tempDir("qmail-popup-hostile-");
  const holdLog = join(work, "hold-log");
  const escapeLog = join(work, "escape-log");
  let holding: TcpServer;
  let escaping: TcpServer;

  beforeAll(async () => {
    [holding, escaping] = await Promise.all([
      pool.start({ variant, subprogram: [PROG, "hold"], env: { HOSTILE_RECORD: join(work, "hold") }, logFile: holdLog }),
      pool.start({ variant, logFile: escapeLog }),
    ]);
  });
  afterAll(() => pool.stopAll());

  test.concurrent.each(["USER/PASS", "AUTH PLAIN", "AUTH LOGIN"] as const)(
    "%s: the password is not on fd 2, fd 5, nor in /proc/PID/{cmdline,environ} of qmail-popup or its child while the child runs",
    async (method) => {
      const password = "pw-" + randomBytes(12).toString("hex");
      const b64 = (text: string) => Buffer.from(text, "latin1").toString("base64");
      const input =
        method === "USER/PASS"
          ? `USER alice\r\nPASS ${password}\r\n`
          : method === "AUTH PLAIN"
            ? `AUTH PLAIN ${b64(`\0alice\0${password}`)}\r\n`
            : `AUTH LOGIN\r\n${b64("alice")}\r\n${b64(password)}\r\n`;
      const { client, pid } = await open(holding);
      await client.send(input);
      const child = Number(await fileContent(join(work, `hold.${client.localPort}`)));
      for (const proc of [pid, child]) {
        for (const file of ["cmdline", "environ"]) {
          expect(readFileSync(`/proc/${proc}/${file}`, "latin1"), `/proc/${proc}/${file}`).not.toContain(password);
        }
      }
      client.end();
      expect(await finished(holding, pid, client.localPort)).toBe("1");
      expect(holding.log).not.toContain(password);
      const log = readFileSync(holdLog, "latin1");
      expect(log).not.toContain(password);
      expect(log).toContain(`qmail-popup: pid ${pid} Reject::AUTH::`);
    },
  );

  test.concurrent("a user name with ', \\, control and 8-bit bytes is logged escaped, on one line; through SASL, a LF is refused", async () => {
    const name = "o'd\\d\x01\x1b[2J\x7f\xe9\xff\rx";
    const viaUser = await talk(escaping, Buffer.from(`USER ${name}\r\nPASS nope\r\n`, "latin1"));
    // SASL can carry any byte but NUL in a name: the same bytes but the CR, which a SASL name may not hold (issue #17).
    const saslName = "o'd\\d\x01\x1b[2J\x7f\xe9\xffx";
    const viaPlain = await talk(escaping, `AUTH PLAIN ${Buffer.from(`\0${saslName}\0nope`, "latin1").toString("base64")}\r\n`);
    // A LF, and a forged log line behind it: refused as a malformed response, nothing logged.
    const forged = `${saslName}\nqmail-popup: pid 1 Accept::AUTH::User P:POP3 S:1.2.3.4:evil ?= 'root'`;
    const viaForged = await talk(escaping, `AUTH PLAIN ${Buffer.from(`\0${forged}\0nope`, "latin1").toString("base64")}\r\nQUIT\r\n`);
    expect(viaUser.status).toBe("1");
    expect(viaPlain.status).toBe("1");
    expect(viaForged.text).toBe("+OK\r\n-ERR malformed SASL response\r\n+OK \r\n");
    expect(viaForged.status).toBe("0");
    const log = readFileSync(escapeLog, "latin1");
    const escaped = "o\\x27d\\x5cd\\x01\\x1b[2J\\x7f\\xe9\\xff";
    expect(log).toContain(`qmail-popup: pid ${viaUser.pid} Reject::AUTH::User P:POP3 S:127.0.0.1:unknown ?= '${escaped}\\x0dx'\n`);
    expect(log).toContain(`qmail-popup: pid ${viaPlain.pid} Reject::AUTH::Plain P:POP3 S:127.0.0.1:unknown ?= '${escaped}x'\n`);
    expect(log).not.toContain("evil");
    for (const line of log.split("\n").slice(0, -1)) {
      expect(line).toMatch(/^qmail-popup: pid \d+ (Accept|Reject)::[A-Za-z:-]+ P:POP3S? S:[^ ]*:[^ ]* \?= '[\x20-\x26\x28-\x7e]*'$/);
    }
  });
});

// --- what the clients saw -----------------------------------------------------------

describe("every transcript of this suite", () => {
  test("no JavaScript stack trace or runtime message ever reached a client", () => {
    expect(transcripts.length).toBeGreaterThan(250);
    const leaks = transcripts.filter((text) => /at .*\(|Error:|TypeError|node:|bun:|deno|panic/.test(text));
    expect(leaks.map((text) => text.slice(0, 300))).toEqual([]);
  });
});
