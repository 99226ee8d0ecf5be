// Real POP3 clients from Debian against qmail-popup under tcpserver:
// each logs in and retrieves a message, for every runtime variant.

import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { FIRST_SUBJECT, TcpServer, fetchmail, makeHomes, runClient, tempDir, variants } from "./harness.ts";

/** Runs a client to completion; resolves its exit code and output. */


describe.each(variants())("$name", (variant) => {
  const homes = makeHomes();
  let plain: TcpServer;
  let apop: TcpServer;

  beforeAll(async () => {
    [plain, apop] = await Promise.all([
      TcpServer.start({ variant, homes }),
      TcpServer.start({ variant, homes, env: { POP3AUTH: "+apop" } }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([plain.stop(), apop.stop()]);
  });

  test("curl logs in (bare banner: it does not try APOP) and retrieves message 1", async () => {
    const { code, out } = await runClient("curl", ["-sS", "--max-time", "20", `pop3://alice:wonderland@127.0.0.1:${plain.port}/1`]);
    expect(code).toBe(0);
    expect(out).toContain(FIRST_SUBJECT);
    expect(out).toContain("\r\n.this line starts with a dot\r\n");
  });

  test("curl with a wrong password fails", async () => {
    const { code } = await runClient("curl", ["-sS", "--max-time", "20", `pop3://alice:wrong@127.0.0.1:${plain.port}/1`]);
    expect(code).toBe(67); // CURLE_LOGIN_DENIED
  });

  test("python poplib: USER/PASS, STAT, RETR", async () => {
    const script = `
import poplib, sys
p = poplib.POP3("127.0.0.1", ${plain.port}, timeout=20)
assert p.getwelcome() == b"+OK", p.getwelcome()
p.user("alice"); p.pass_("wonderland")
print(p.stat())
print(b"\\n".join(p.retr(1)[1]).decode())
p.quit()`;
    const { code, out } = await runClient("python3", ["-c", script]);
    expect(code).toBe(0);
    expect(out).toContain("(2, 250)");
    expect(out).toContain(FIRST_SUBJECT);
  });

  test("python poplib: APOP with the banner's timestamp", async () => {
    const script = `
import poplib
p = poplib.POP3("127.0.0.1", ${apop.port}, timeout=20)
assert p.getwelcome().startswith(b"+OK <"), p.getwelcome()
p.apop("alice", "wonderland")
print(b"\\n".join(p.retr(2)[1]).decode())
p.quit()`;
    const { code, out } = await runClient("python3", ["-c", script]);
    expect(code).toBe(0);
    expect(out).toContain("Subject: second message");
  });

  test("fetchmail retrieves both messages", async () => {
    const { code, out, mail } = await fetchmail(plain.port, "auth password", 'sslproto ""');
    expect(code, out).toBe(0);
    const fetched = readFileSync(mail, "latin1");
    expect(fetched).toContain(FIRST_SUBJECT);
    expect(fetched).toContain("Subject: second message");
  });

  test("mpop --auth=user retrieves both messages", async () => {
    const home = tempDir();
    mkdirSync(join(home, "x"), { recursive: true });
    const mbox = join(home, "mbox");
    const { code, out } = await runClient("mpop", [
      "--host=127.0.0.1",
      `--port=${plain.port}`,
      "--auth=user",
      "--user=alice",
      "--passwordeval=echo wonderland",
      "--tls=off",
      "--timeout=20",
      `--delivery=mbox,${mbox}`,
      "--keep=on",
      `--uidls-file=${join(home, "uidls")}`,
    ], { HOME: home });
    expect(code, out).toBe(0);
    const fetched = readFileSync(mbox, "latin1");
    expect(fetched).toContain(FIRST_SUBJECT);
    expect(fetched).toContain("Subject: second message");
  });
});
