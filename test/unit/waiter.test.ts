import { describe, expect, it } from "vitest";
import { waiterPlan, waiterScript } from "../../src/waiter.ts";

const plan = (logFd: number | undefined) =>
  waiterPlan({
    subprogram: ["checkpassword", "qmail-pop3d", "Maildir"],
    env: { PATH: "/usr/bin:/bin", TCPREMOTEIP: "192.0.2.1", UNSET: undefined },
    input: 0,
    output: 1,
    credentialsFd: 6,
    logFd,
    timeoutSeconds: 7,
    log: logFd === undefined ? undefined : { pid: 42, what: "AUTH::User", proto: "POP3", remoteIp: "192.0.2.1", remoteHost: "unknown", user: "alice" },
  });

describe("the /bin/sh waiter's plan", () => {
  it("runs sh -c with the subprogram as its arguments", () => {
    const { argv } = plan(5);
    expect(argv.slice(0, 2)).toEqual(["sh", "-c"]);
    expect(argv.slice(3)).toEqual(["qmail-popup", "checkpassword", "qmail-pop3d", "Maildir"]);
  });

  it("passes the environment on, with the replies and log lines serve.ts would write", () => {
    const { env } = plan(5);
    expect(env.PATH).toBe("/usr/bin:/bin");
    expect("UNSET" in env).toBe(false);
    expect(env.QMAIL_POPUP_FAIL_REPLY).toBe("-ERR [AUTH] authorization failed");
    expect(env.QMAIL_POPUP_TEMP_REPLY).toBe("-ERR [SYS/TEMP] authorization failed");
    expect(env.QMAIL_POPUP_CRASH_REPLY).toBe("-ERR [SYS/TEMP] aack, child crashed");
    expect(env.QMAIL_POPUP_ACCEPT_LOG).toBe("qmail-popup: pid 42 Accept::AUTH::User P:POP3 S:192.0.2.1:unknown ?= 'alice'");
    expect(env.QMAIL_POPUP_REJECT_LOG).toBe("qmail-popup: pid 42 Reject::AUTH::User P:POP3 S:192.0.2.1:unknown ?= 'alice'");
  });

  it("writes no log line where fd 5 is closed", () => {
    const { argv, env } = plan(undefined);
    expect(env.QMAIL_POPUP_ACCEPT_LOG).toBe("");
    expect(argv[2]).not.toContain(">&5");
  });

  it("puts the descriptors into the script as literals, with a spare one that collides with none", () => {
    const script = waiterScript(7, 8, 6, 5, 1200);
    expect(script).toContain('(exec "$@" <&7 >&4 2>&4 3<&6 6<&- 4>&-)');
    expect(script).toContain("exec 4>&8");
    expect(script).toContain(">&5 2>/dev/null");
    expect(script).toContain("timeout 1200");
    expect(waiterScript(0, 1, 4, undefined, 2)).toContain("exec 6>&1");
  });

  it("unsets its own variables before the subprogram runs", () => {
    const script = waiterScript(0, 1, 6, 5, 1200);
    const unset = script.indexOf("unset QMAIL_POPUP_ACCEPT_LOG QMAIL_POPUP_REJECT_LOG QMAIL_POPUP_FAIL_REPLY QMAIL_POPUP_TEMP_REPLY QMAIL_POPUP_CRASH_REPLY");
    expect(unset).toBeGreaterThanOrEqual(0);
    expect(unset).toBeLessThan(script.indexOf('exec "$@"'));
  });
});
