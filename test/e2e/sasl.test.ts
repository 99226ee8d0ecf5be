// SASL AUTH (RFC 5034) with real clients, and RFC 2449/3206 response codes,
// for every runtime variant.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { FIRST_SUBJECT, TcpServer, converse, fetchmail, makeHomes, runClient, tempDir, testCertificate, variants, waitForLine } from "./harness.ts";


const b64 = (text: string) => Buffer.from(text, "latin1").toString("base64");

describe.each(variants({ resident: true }))("$name", (variant) => {
  const homes = makeHomes();
  const work = tempDir();
  const logFile = join(work, "log5");
  const record = join(work, "fd3");
  let server: TcpServer;
  let starttls: TcpServer;

  beforeAll(async () => {
    testCertificate();
    const env = { POP3AUTH: "+apop+cram-md5", CHECKPASSWORD_RECORD: record };
    [server, starttls] = await Promise.all([
      TcpServer.start({ variant, homes, env, logFile }),
      TcpServer.start({ variant, homes, env, logFile, tls: "starttls" }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([server.stop(), starttls.stop()]);
  });

  const logged = (pattern: RegExp) => waitForLine(logFile, pattern);

  test.each([
    ["PLAIN", "Plain"],
    ["LOGIN", "Login"],
    ["CRAM-MD5", "Cram-md5"],
  ])("curl --login-options AUTH=%s logs in; fd 5 says %s", async (mechanism, method) => {
    const { code, out } = await runClient("curl", ["-sS", "--max-time", "20", "--login-options", `AUTH=${mechanism}`, `pop3://alice:wonderland@127.0.0.1:${server.port}/1`]);
    expect(code, out).toBe(0);
    expect(out).toContain(FIRST_SUBJECT);
    await logged(new RegExp(`Accept::AUTH::${method} P:POP3 .* \\?= 'alice'$`));
  });

  test("AUTH PLAIN hands fd 3 the same three fields as USER/PASS", async () => {
    const { text } = await converse(server, `AUTH PLAIN ${b64("\0latin\0p\xe4ss w\xf6rd ")}\r\nQUIT\r\n`);
    expect(text).toMatch(/^\+OK <[^>]+>\r\n\+OK \r\n\+OK \r\n$/);
    const timestamp = /<[^>]+>/.exec(text)![0];
    expect(readFileSync(record)).toEqual(Buffer.from(`latin\0p\xe4ss w\xf6rd \0${timestamp}\0`, "latin1"));
  });

  test("edge cases through python poplib: cancel, bad base64, authzid mismatch, wrong password with [AUTH]", async () => {
    const script = `
import poplib, base64
p = poplib.POP3("127.0.0.1", ${server.port}, timeout=20)
def attempt(*lines):
    out = []
    for line in lines:
        try: out.append(p._shortcmd(line).decode())
        except poplib.error_proto as e: out.append(e.args[0].decode())
    return out
b = lambda s: base64.b64encode(s.encode("latin-1")).decode()
print(attempt("AUTH PLAIN", "*"))
print(attempt("AUTH LOGIN", "%%%"))
print(attempt("AUTH PLAIN " + b("root\\0alice\\0wonderland")))
print(attempt("AUTH PLAIN " + b("\\0alice\\0wrong")))`;
    const { code, out } = await runClient("python3", ["-c", script]);
    expect(code, out).toBe(0);
    expect(out.trim().split("\n")).toEqual([
      "['+ ', '-ERR authentication cancelled']",
      "['+ VXNlcm5hbWU6', '-ERR malformed SASL response']",
      "['-ERR [AUTH] authorization identity not allowed']",
      "['-ERR [AUTH] authorization failed']",
    ]);
  });

  test.each(["plain", "login"])("mpop --auth=%s over STLS retrieves both messages", async (auth) => {
    const home = tempDir();
    const mbox = join(home, "mbox");
    const { code, out } = await runClient(
      "mpop",
      [
        "--host=127.0.0.1", `--port=${starttls.port}`, `--auth=${auth}`, "--user=alice", "--passwordeval=echo wonderland",
        "--tls=on", "--tls-starttls=on", "--tls-certcheck=off", "--timeout=20",
        `--delivery=mbox,${mbox}`, "--keep=on", `--uidls-file=${join(home, "uidls")}`,
      ],
      { HOME: home },
    );
    expect(code, out).toBe(0);
    expect(readFileSync(mbox, "latin1")).toContain("Subject: second message");
    await logged(new RegExp(`Accept::AUTH::${auth === "plain" ? "Plain" : "Login"} P:POP3S `));
  });

  test("fetchmail with auth cram-md5 retrieves both messages", async () => {
    const { code, out, mail } = await fetchmail(server.port, "auth cram-md5", 'sslproto ""');
    expect(code, out).toBe(0);
    expect(readFileSync(mail, "latin1")).toContain(FIRST_SUBJECT);
  });
});
