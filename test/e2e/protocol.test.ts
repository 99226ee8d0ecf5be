// The wire, fd 3 and fd 5, byte for byte, under real tcpserver, for every runtime variant.

import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Client, FIXTURES, TcpServer, converse, makeHomes, tempDir, variants } from "./harness.ts";

const NUL = "\0";

describe.each(variants({ resident: true }))("$name", (variant) => {
  const homes = makeHomes();
  const work = tempDir();
  const record = join(work, "fd3");
  const fds = join(work, "fds");
  const logFile = join(work, "log5");
  const servers: TcpServer[] = [];

  async function server(options: Partial<Parameters<typeof TcpServer.start>[0]> = {}): Promise<TcpServer> {
    const started = await TcpServer.start({
      variant,
      homes,
      ...options,
      env: { CHECKPASSWORD_RECORD: record, POP3D_FDS_RECORD: fds, ...options.env },
    });
    servers.push(started);
    return started;
  }

  let plain: TcpServer;
  let apop: TcpServer;
  let logged: TcpServer;

  beforeAll(async () => {
    [plain, apop, logged] = await Promise.all([
      server(),
      server({ env: { POP3AUTH: "+apop" } }),
      server({ logFile }),
    ]);
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  test("greets with a bare +OK when APOP is off", async () => {
    const { text, status } = await converse(plain, "QUIT\r\n");
    expect(text).toBe("+OK\r\n+OK \r\n");
    expect(status).toBe("0");
  });

  test("greets with <PID.TIME@HOSTNAME> when APOP is on, and that timestamp reaches fd 3", async () => {
    const before = Math.floor(Date.now() / 1000);
    const client = await Client.connect(apop.port);
    const pid = await apop.pidFor(client.localPort);
    const greeting = await client.lines(1);
    const after = Math.floor(Date.now() / 1000);
    const match = /^\+OK (<(\d+)\.(\d+)@mail\.test>)\r\n$/.exec(greeting);
    expect(match).not.toBeNull();
    expect(Number(match![2])).toBe(pid);
    expect(Number(match![3])).toBeGreaterThanOrEqual(before);
    expect(Number(match![3])).toBeLessThanOrEqual(after);
    const timestamp = match![1]!;
    const digest = createHash("md5").update(timestamp + "wonderland").digest("hex");
    client.send(`APOP alice ${digest}\r\nQUIT\r\n`);
    expect(await client.untilClosed()).toBe(`${greeting}+OK \r\n+OK \r\n`);
    expect(await apop.endOf(pid)).toBe("0");
    expect(readFileSync(record).toString("latin1")).toBe(`alice${NUL}${digest}${NUL}${timestamp}${NUL}`);
  });

  test("a wrong APOP digest is refused", async () => {
    const { text, status } = await converse(apop, "APOP alice 0123456789abcdef0123456789abcdef\r\n");
    expect(text).toMatch(/^\+OK <[^>]+>\r\n-ERR \[AUTH\] authorization failed\r\n$/);
    expect(status).toBe("1");
  });

  test("USER/PASS logs in, and the subprogram gets the exact fd-3 bytes", async () => {
    const { text, status } = await converse(plain, "USER alice\r\nPASS wonderland\r\nQUIT\r\n");
    expect(text).toBe("+OK\r\n+OK \r\n+OK \r\n+OK \r\n");
    // fd 3 carries the timestamp even though the banner does not show it.
    expect(readFileSync(record).toString("latin1")).toMatch(/^alice\0wonderland\0<\d+\.\d+@mail\.test>\0$/);
    expect(status).toBe("0");
  });

  test("pipelined USER, PASS, STAT, LIST, QUIT in one write all get their answers", async () => {
    const { text } = await converse(plain, "USER alice\r\nPASS wonderland\r\nSTAT\r\nLIST\r\nQUIT\r\n");
    expect(text).toBe("+OK\r\n+OK \r\n+OK \r\n+OK 2 250\r\n+OK \r\n1 155\r\n2 95\r\n.\r\n+OK \r\n");
  });

  test("Latin-1 and invalid UTF-8 passwords reach fd 3 byte for byte", async () => {
    const latin = Buffer.from("USER latin\r\nPASS p\xe4ss w\xf6rd \r\nQUIT\r\n", "latin1");
    const first = await converse(plain, latin);
    expect(first.text).toBe("+OK\r\n+OK \r\n+OK \r\n+OK \r\n");
    expect(readFileSync(record).subarray(0, 17)).toEqual(Buffer.from("latin\0p\xe4ss w\xf6rd \0", "latin1"));
    const bad = await converse(plain, Buffer.from("USER badutf8\r\nPASS \xff\xfe\xc3(\r\n", "latin1"));
    expect(readFileSync(record).subarray(0, 13)).toEqual(Buffer.from("badutf8\0\xff\xfe\xc3(\0", "latin1"));
    // badutf8 has no home: the fixture exits 111 (temporary) after the password matched.
    expect(bad.text).toBe("+OK\r\n+OK \r\n-ERR [SYS/TEMP] authorization failed\r\n");
  });

  test("a wrong password: -ERR authorization failed, exit 1", async () => {
    const { text, status } = await converse(plain, "USER alice\r\nPASS nope\r\n");
    expect(text).toBe("+OK\r\n+OK \r\n-ERR [AUTH] authorization failed\r\n");
    expect(status).toBe("1");
  });

  test("a crashed subprogram: -ERR aack, child crashed", async () => {
    for (const user of ["crash", "killed"]) {
      const { text, status } = await converse(plain, `USER ${user}\r\nPASS x\r\n`);
      expect(text).toBe("+OK\r\n+OK \r\n-ERR [SYS/TEMP] aack, child crashed\r\n");
      expect(status).toBe("1");
    }
  });

  test("the pre-login commands, exactly", async () => {
    const { text, status } = await converse(
      plain,
      "NOOP\r\nCAPA\r\nPASS early\r\nUSER\r\nUSER \r\nRETR 1\r\nAPOP alice x\r\nSTLS\r\nuser\talice\r\nnoop\r\nquit\r\n",
    );
    expect(text).toBe(
      "+OK\r\n+OK \r\n" +
        "+OK capability list follows\r\nTOP\r\nUIDL\r\nPIPELINING\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nUSER\r\nSASL PLAIN LOGIN\r\n.\r\n" +
        "-ERR USER first\r\n-ERR syntax error\r\n-ERR syntax error\r\n-ERR authorization first\r\n" +
        "-ERR APOP not available\r\n-ERR STLS not available\r\n-ERR authorization first\r\n+OK \r\n+OK \r\n",
    );
    expect(status).toBe("0");
  });

  test("an over-long line gets one -ERR, a NUL gets -ERR, and the session goes on", async () => {
    const long = "USER " + "a".repeat(5000) + "\r\n";
    const { text } = await converse(plain, `${long}USER al${NUL}ice\r\nNOOP\r\nQUIT\r\n`);
    expect(text).toBe("+OK\r\n-ERR line too long\r\n-ERR NUL in command\r\n+OK \r\n+OK \r\n");
  });

  test("EOF ends the session silently with status 1", async () => {
    const client = await Client.connect(plain.port);
    const pid = await plain.pidFor(client.localPort);
    client.send("USER alice\r\nPASS wonder");
    client.end();
    expect(await client.untilClosed()).toBe("+OK\r\n+OK \r\n");
    expect(await plain.endOf(pid)).toBe("1");
  });

  test("the idle timeout closes the connection silently", async () => {
    const quick = await server({ env: { POP3TIMEOUT: "1" } });
    const client = await Client.connect(quick.port);
    const pid = await quick.pidFor(client.localPort);
    client.send("NOOP\r\nUSER ali");
    expect(await client.untilClosed()).toBe("+OK\r\n+OK \r\n");
    expect(await quick.endOf(pid)).toBe("1");
  });

  test("APOP-only mode refuses USER", async () => {
    const only = await server({ env: { POP3AUTH: "apop" } });
    const { text } = await converse(only, "USER alice\r\nCAPA\r\nQUIT\r\n");
    expect(text).toMatch(/^\+OK <\d+\.\d+@mail\.test>\r\n-ERR [^\r\n]*\r\n\+OK capability list follows\r\nTOP\r\nUIDL\r\nPIPELINING\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n\.\r\n\+OK \r\n$/);
  });

  test("the subprogram gets fds 0/1 blocking, fd 2 = fd 1, fd 3, fd 5 when open, and nothing else", async () => {
    await converse(logged, "USER alice\r\nPASS wonderland\r\nQUIT\r\n");
    const open = readFileSync(fds, "latin1").trim().split("\n").map((line) => Number(line.split(" ")[0]));
    // fd 3 was closed by checkpassword after reading it.
    expect(open).toEqual([0, 1, 2, 5]);
    await converse(plain, "USER alice\r\nPASS wonderland\r\nQUIT\r\n");
    const withoutLog = readFileSync(fds, "latin1").trim().split("\n").map((line) => Number(line.split(" ")[0]));
    expect(withoutLog).toEqual([0, 1, 2]);
  });

  test("fd 5 gets one exact line per result; never the password", async () => {
    writeFileSync(logFile, "");
    const ok = await converse(logged, "USER alice\r\nPASS wonderland\r\nQUIT\r\n");
    const bad = await converse(logged, "USER bob\r\nPASS secret-wrong\r\n");
    const crash = await converse(logged, "USER crash\r\nPASS x\r\n");
    const odd = await converse(logged, Buffer.from("USER o'd\\d\xe9\x01\r\nPASS secret-odd\r\n", "latin1"));
    const log = readFileSync(logFile, "latin1");
    expect(log).toBe(
      `qmail-popup: pid ${ok.pid} Accept::AUTH::User P:POP3 S:127.0.0.1:unknown ?= 'alice'\n` +
        `qmail-popup: pid ${bad.pid} Reject::AUTH::User P:POP3 S:127.0.0.1:unknown ?= 'bob'\n` +
        `qmail-popup: pid ${crash.pid} Reject::AUTH::User P:POP3 S:127.0.0.1:unknown ?= 'crash'\n` +
        `qmail-popup: pid ${odd.pid} Reject::AUTH::User P:POP3 S:127.0.0.1:unknown ?= 'o\\x27d\\x5cd\\xe9\\x01'\n`,
    );
    expect(log).not.toContain("secret");
    expect(logged.log).not.toContain("secret");
  });

  test("no fd 5: nothing logged and nothing broken", async () => {
    const { text, status } = await converse(plain, "USER bob\r\nPASS builder\r\nQUIT\r\n");
    expect(text).toBe("+OK\r\n+OK \r\n+OK \r\n+OK \r\n");
    expect(status).toBe("0");
  });

  test("a subprogram that cannot be run: -ERR on the wire, the reason on fd 2", async () => {
    const missing = await server({ subprogram: ["/nonexistent/checkpassword"] });
    const { text, status } = await converse(missing, "USER alice\r\nPASS wonderland\r\n");
    expect(text).toBe("+OK\r\n+OK \r\n-ERR [SYS/TEMP] authorization failed\r\n");
    expect(status).toBe("1");
    expect(missing.log).toMatch(/qmail-popup: unable to run \/nonexistent\/checkpassword: /);
    // A file that is not executable: the same, nothing of a shell's complaint on the wire.
    const notExecutable = await server({ subprogram: [join(FIXTURES, "not-executable")] });
    const second = await converse(notExecutable, "USER alice\r\nPASS wonderland\r\n");
    expect(second.text).toBe("+OK\r\n+OK \r\n-ERR [SYS/TEMP] authorization failed\r\n");
  });

  test("UCSPITLS set without sslserver's descriptors: STLS not offered, the reason on fd 2", async () => {
    const misconfigured = await server({ env: { UCSPITLS: "" } });
    const { text } = await converse(misconfigured, "CAPA\r\nSTLS\r\nQUIT\r\n");
    expect(text).toBe("+OK\r\n+OK capability list follows\r\nTOP\r\nUIDL\r\nPIPELINING\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nUSER\r\nSASL PLAIN LOGIN\r\n.\r\n-ERR STLS not available\r\n+OK \r\n");
    expect(misconfigured.log).toContain("qmail-popup: UCSPITLS is set but SSLCTLFD, SSLREADFD and SSLWRITEFD are not all set: STLS not offered");
    // Named but not open: the same.
    const closed = await server({ env: { UCSPITLS: "", SSLCTLFD: "6", SSLREADFD: "7", SSLWRITEFD: "8" } });
    expect((await converse(closed, "STLS\r\nQUIT\r\n")).text).toBe("+OK\r\n-ERR STLS not available\r\n+OK \r\n");
    expect(closed.log).toContain("SSLCTLFD, SSLREADFD or SSLWRITEFD is not open: STLS not offered");
  });

  test("UCSPITLS=! without sslserver's descriptors: every login refused, never taken in clear", async () => {
    const strict = await server({ env: { UCSPITLS: "!" } });
    const { text, status } = await converse(strict, "STLS\r\nUSER alice\r\n");
    expect(text).toBe("+OK\r\n-ERR STLS not available\r\n-ERR TLS required but not negotiated\r\n");
    expect(status).toBe("1");
  });

  test("missing arguments: -ERR usage on fd 1, exit 1", async () => {
    const usage = await server({ rawArgs: ["mail.test"] });
    const { text, status } = await converse(usage, "");
    expect(text).toMatch(/^-ERR usage: [^\r\n]*\r\n$/);
    expect(status).toBe("1");
  });
});
