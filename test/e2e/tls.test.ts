// STLS over UCSPI-TLS (sslserver -n) and implicit TLS (port 995), through
// the test sslserver, for every runtime variant.

import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { FIRST_SUBJECT, ROOT, TcpServer, fetchmail, makeHomes, runClient, tempDir, testCertificate, variants } from "./harness.ts";


interface StarttlsResult {
  clear: string;
  tls: string | null;
  error: string | null;
}

async function starttls(port: number, clear: string, secure = ""): Promise<StarttlsResult> {
  const { code, out } = await runClient("python3", [join(ROOT, "test/e2e/starttls-client.py"), String(port), JSON.stringify(clear), JSON.stringify(secure)]);
  if (code !== 0) throw new Error(out);
  return JSON.parse(out) as StarttlsResult;
}

const CAPA_HEAD = "+OK capability list follows\r\nTOP\r\nUIDL\r\nPIPELINING\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n";

describe.each(variants({ resident: true }))("$name", (variant) => {
  const homes = makeHomes();
  const work = tempDir();
  const logFile = join(work, "log5");
  const record = join(work, "fd3");
  const environment = join(work, "env");
  const env = { CHECKPASSWORD_RECORD: record, CHECKPASSWORD_ENV_RECORD: environment };
  let offered: TcpServer;
  let required: TcpServer;
  let implicit: TcpServer;

  beforeAll(async () => {
    testCertificate();
    [offered, required, implicit] = await Promise.all([
      TcpServer.start({ variant, homes, env, tls: "starttls", logFile }),
      TcpServer.start({ variant, homes, env: { ...env, UCSPITLS: "!" }, tls: "starttls", logFile }),
      TcpServer.start({ variant, homes, env, tls: "implicit", logFile }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([offered, required, implicit].map((server) => server.stop()));
  });

  function logLines(): string[] {
    return existsSync(logFile) ? readFileSync(logFile, "latin1").split("\n").filter(Boolean) : [];
  }

  test("STLS: CAPA before lists STLS, after lists USER and not STLS; login over TLS; P:POP3S; SSL_* reach the subprogram", async () => {
    const result = await starttls(offered.port, "CAPA\r\nSTLS\r\n", "CAPA\r\nSTLS\r\nUSER alice\r\nPASS wonderland\r\nSTAT\r\nQUIT\r\n");
    expect(result.clear).toBe(`+OK\r\n${CAPA_HEAD}USER\r\nSASL PLAIN LOGIN\r\nSTLS\r\n.\r\n+OK starting TLS negotiation\r\n`);
    expect(result.tls).toBe(`${CAPA_HEAD}USER\r\nSASL PLAIN LOGIN\r\n.\r\n-ERR STLS not available\r\n+OK \r\n+OK \r\n+OK 2 250\r\n+OK \r\n`);
    expect(logLines().at(-1)).toMatch(/^qmail-popup: pid \d+ Accept::AUTH::User P:POP3S S:127\.0\.0\.1:unknown \?= 'alice'$/);
    const passed = readFileSync(environment, "latin1");
    expect(passed).toMatch(/^SSL_PROTOCOL=TLSv1\.[23]$/m);
    expect(passed).toMatch(/^SSL_CIPHER=\S+$/m);
  });

  test("a USER given before STLS is forgotten", async () => {
    const result = await starttls(offered.port, "USER alice\r\nSTLS\r\n", "PASS wonderland\r\nQUIT\r\n");
    expect(result.tls).toBe("-ERR USER first\r\n+OK \r\n");
  });

  test("plaintext pipelined behind STLS is never read as a command", async () => {
    rmSync(record, { force: true });
    const before = logLines().length;
    const result = await starttls(offered.port, "STLS\r\nUSER alice\r\nPASS wonderland\r\n", "QUIT\r\n");
    // The injected bytes sit in front of the ClientHello: the handshake fails and the session ends.
    expect(result.clear).toBe("+OK\r\n+OK starting TLS negotiation\r\n");
    expect(result.tls ?? "").not.toContain("+OK");
    expect(existsSync(record)).toBe(false);
    expect(logLines().length).toBe(before);
  });

  test("garbage instead of a ClientHello ends the session, nothing authenticated", async () => {
    rmSync(record, { force: true });
    const client = await runClient("python3", [
      "-c",
      `import socket
s = socket.create_connection(("127.0.0.1", ${offered.port}), timeout=20)
s.recv(5); s.sendall(b"STLS\\r\\n")
got = b""
while not got.endswith(b"negotiation\\r\\n"): got += s.recv(1)
s.sendall(b"GARBAGE\\r\\nUSER alice\\r\\nPASS wonderland\\r\\n" * 10)
rest = b""
while True:
    try: chunk = s.recv(4096)
    except ConnectionResetError: break
    if not chunk: break
    rest += chunk
print(repr(rest))`,
    ]);
    expect(client.code).toBe(0);
    expect(client.out.trim()).toBe("b''");
    expect(existsSync(record)).toBe(false);
  });

  test("UCSPITLS=!: CAPA withholds USER, USER before STLS is refused, logged and ends the session", async () => {
    const result = await starttls(required.port, "CAPA\r\nUSER alice\r\n");
    expect(result.clear).toBe(`+OK\r\n${CAPA_HEAD}STLS\r\n.\r\n-ERR TLS required but not negotiated\r\n`);
    expect(logLines().at(-1)).toMatch(/^qmail-popup: pid \d+ Reject::STLS::Any P:POP3 S:127\.0\.0\.1:unknown \?= 'unknown'$/);
    const apop = await starttls(required.port, "APOP alice 0123\r\n");
    expect(apop.clear).toBe("+OK\r\n-ERR TLS required but not negotiated\r\n");
  });

  test("UCSPITLS=!: after STLS, USER is listed and the login works", async () => {
    const result = await starttls(required.port, "STLS\r\n", "CAPA\r\nUSER alice\r\nPASS wonderland\r\nQUIT\r\n");
    expect(result.tls).toBe(`${CAPA_HEAD}USER\r\nSASL PLAIN LOGIN\r\n.\r\n+OK \r\n+OK \r\n+OK \r\n`);
    expect(logLines().at(-1)).toMatch(/Accept::AUTH::User P:POP3S .* \?= 'alice'$/);
  });

  test("implicit TLS (port 995): POP3_SSL logs in, labelled POP3S, no STLS offered", async () => {
    const { code, out } = await runClient("python3", [
      "-c",
      `import poplib, ssl
context = ssl.create_default_context(); context.check_hostname = False; context.verify_mode = ssl.CERT_NONE
p = poplib.POP3_SSL("127.0.0.1", ${implicit.port}, context=context, timeout=20)
print(p.capa())
p.user("alice"); p.pass_("wonderland"); print(p.stat()); p.quit()`,
    ]);
    expect(code, out).toBe(0);
    expect(out).not.toContain("STLS");
    expect(out).toContain("(2, 250)");
    expect(logLines().at(-1)).toMatch(/Accept::AUTH::User P:POP3S .* \?= 'alice'$/);
  });

  test("openssl s_client -starttls pop3 logs in and retrieves a message", async () => {
    const { out } = await runClient(
      "openssl",
      ["s_client", "-quiet", "-ign_eof", "-starttls", "pop3", "-connect", `127.0.0.1:${offered.port}`],
      {},
      "USER alice\r\nPASS wonderland\r\nRETR 1\r\nQUIT\r\n",
    );
    expect(out).toContain(FIRST_SUBJECT);
  });

  test("curl over STLS (--ssl-reqd) and pop3s:// retrieve a message", async () => {
    const stls = await runClient("curl", ["-sS", "-k", "--ssl-reqd", "--max-time", "20", `pop3://alice:wonderland@127.0.0.1:${offered.port}/1`]);
    expect(stls.code, stls.out).toBe(0);
    expect(stls.out).toContain(FIRST_SUBJECT);
    const pop3s = await runClient("curl", ["-sS", "-k", "--max-time", "20", `pop3s://alice:wonderland@127.0.0.1:${implicit.port}/1`]);
    expect(pop3s.code, pop3s.out).toBe(0);
    expect(pop3s.out).toContain(FIRST_SUBJECT);
  });

  test("python poplib stls() logs in", async () => {
    const { code, out } = await runClient("python3", [
      "-c",
      `import poplib, ssl
context = ssl.create_default_context(); context.check_hostname = False; context.verify_mode = ssl.CERT_NONE
p = poplib.POP3("127.0.0.1", ${offered.port}, timeout=20)
p.stls(context=context)
p.user("alice"); p.pass_("wonderland")
print(b"\\n".join(p.retr(1)[1]).decode()); p.quit()`,
    ]);
    expect(code, out).toBe(0);
    expect(out).toContain(FIRST_SUBJECT);
  });

  test("mpop over STLS retrieves both messages", async () => {
    const home = tempDir();
    const mbox = join(home, "mbox");
    const { code, out } = await runClient(
      "mpop",
      [
        "--host=127.0.0.1", `--port=${offered.port}`, "--auth=user", "--user=alice", "--passwordeval=echo wonderland",
        "--tls=on", "--tls-starttls=on", "--tls-certcheck=off", "--timeout=20",
        `--delivery=mbox,${mbox}`, "--keep=on", `--uidls-file=${join(home, "uidls")}`,
      ],
      { HOME: home },
    );
    expect(code, out).toBe(0);
    expect(readFileSync(mbox, "latin1")).toContain("Subject: second message");
  });

  test("fetchmail over STLS retrieves both messages", async () => {
    const { code, out, mail } = await fetchmail(offered.port, "auth password", 'sslproto "tls1.2+" no sslcertck');
    expect(code, out).toBe(0);
    expect(readFileSync(mail, "latin1")).toContain(FIRST_SUBJECT);
  });
});
