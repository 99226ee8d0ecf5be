// serve(), the session driver every runtime shares, against a fake
// Platform (fake-platform.ts): what the front's introduction makes it do,
// byte for byte on each descriptor and on the control socket, and how it
// ends. The introduction is built with the real netstring encoder; what
// serve says to the front is decoded here, by the test's own reader.

import { describe, expect, it } from "vitest";
import { encodeNetstring } from "../../src/core/netstring.ts";
import { main } from "../../src/main.ts";
import { serve } from "../../src/serve.ts";
import { VERSION } from "../../src/version.ts";
import { EmptyBufferRead, Exit, FakePlatform, bytesOfLatin1, latin1, type Arrival, type FakeOptions } from "./fake-platform.ts";

const PID = 4242;
const HOST = "mail.example.org";
/** unixSeconds' value; nowMs starts elsewhere (5000), so a timestamp from the wrong clock shows. */
const NOW = 1_700_000_000;
const TIMESTAMP = `<${PID}.${NOW}@${HOST}>`;
const START_MS = 5_000;
const CONTROL = 10;
const DEFAULT_TIMEOUT_MS = 1200 * 1000;

const GREETING = "+OK\r\n";
const GREETING_APOP = `+OK ${TIMESTAMP}\r\n`;
const OK = "+OK \r\n";
const CAPA_PLAIN = "+OK capability list follows\r\nTOP\r\nUIDL\r\nPIPELINING\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nUSER\r\nSASL PLAIN LOGIN\r\n.\r\n";
const CAPA_STLS = "+OK capability list follows\r\nTOP\r\nUIDL\r\nPIPELINING\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nUSER\r\nSASL PLAIN LOGIN\r\nSTLS\r\n.\r\n";
const OK_STLS = "+OK starting TLS negotiation\r\n";

/** The UCSPI-TLS descriptors, as sslserver -n names them. */
const SSL_ENV = { UCSPITLS: "", SSLCTLFD: "6", SSLREADFD: "7", SSLWRITEFD: "8" };

interface IntroductionParts {
  readonly version?: string;
  /** POP3TIMEOUT as the front read it. */
  readonly timeout?: number;
  readonly pid?: number;
  readonly open?: readonly number[];
  readonly args?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
}

/** What the front (src/front/qmail-popup.c) says first: version, timeout, pid, open descriptors, arguments, environment, end. */
function introduction({ version = VERSION, timeout = 1200, pid = PID, open = [0, 1, 2], args = [HOST, "checkpassword", "qmail-pop3d", "Maildir"], env = {} }: IntroductionParts = {}): Uint8Array {
  const items = [
    encodeNetstring("version", version),
    encodeNetstring("timeout", String(timeout)),
    encodeNetstring("pid", String(pid)),
    ...open.map((fd) => encodeNetstring("open", String(fd))),
    ...args.map((arg) => encodeNetstring("arg", arg)),
    ...Object.entries(env).map(([name, value]) => encodeNetstring("env", `${name}=${value}`)),
    encodeNetstring("end"),
  ];
  return bytesOfLatin1(items.map(latin1).join(""));
}

/** A fake whose front says `parts`, and whose client sends `network` on fd 0. */
function fake(parts: IntroductionParts, network: readonly Arrival[], options: FakeOptions = {}): FakePlatform {
  return new FakePlatform({ unixSeconds: NOW, startMs: START_MS, ...options, control: [introduction(parts)], reads: { 0: network, ...options.reads } });
}

/** Runs serve to its end: the status it exited with (exit throws Exit); anything else thrown fails the test. */
async function run(platform: FakePlatform): Promise<number> {
  const ended = await serve(platform).then(
    () => new Error("serve returned instead of exiting"),
    (error: unknown) => error,
  );
  if (!(ended instanceof Exit)) throw ended;
  expect(platform.exits).toEqual([ended.status]);
  return ended.status;
}

/** One netstring holding key=value, written out here rather than with the encoder under test. */
const ns = (key: string, value = "") => `${key.length + 1 + value.length}:${key}=${value},`;

/** Netstrings `LENGTH:key=value,`, read strictly: [key, value] pairs, values as byte strings. */
function netstrings(said: string): [string, string][] {
  const items: [string, string][] = [];
  for (let at = 0; at < said.length; ) {
    const prefix = /^([1-9][0-9]*|0):/.exec(said.slice(at));
    if (prefix === null) throw new Error(`not a netstring at ${at}: ${JSON.stringify(said.slice(at, at + 20))}`);
    const start = at + prefix[0].length;
    const end = start + Number(prefix[1]);
    if (said[end] !== ",") throw new Error(`netstring at ${at} not ended by a comma`);
    const body = said.slice(start, end);
    const equals = body.indexOf("=");
    if (equals < 0) throw new Error(`netstring at ${at} has no key=value`);
    items.push([body.slice(0, equals), body.slice(equals + 1)]);
    at = end + 1;
  }
  return items;
}

const REPLIES = {
  fail: "-ERR [AUTH] authorization failed\r\n",
  temporary: "-ERR [SYS/TEMP] authorization failed\r\n",
  crash: "-ERR [SYS/TEMP] aack, child crashed\r\n",
  unrunnable: "-ERR [SYS/TEMP] authorization failed\r\n",
} as const;

interface ExpectedPlan {
  readonly input?: number;
  readonly output?: number;
  readonly credentials: string;
  /** env= (a value) and unset= (undefined) items, in order. */
  readonly environment?: readonly (readonly [string, string | undefined])[];
  /** The fd-5 line for a result; none where fd 5 is closed. */
  readonly line?: (result: "Accept" | "Reject") => string;
}

/** The plan's items, in the order the front reads them; `run` last. */
function plan({ input = 0, output = 1, credentials, environment = [], line }: ExpectedPlan): [string, string][] {
  const items: [string, string][] = [
    ["input", String(input)],
    ["output", String(output)],
    ["credentials", credentials],
    ...environment.map(([name, value]): [string, string] => (value === undefined ? ["unset", name] : ["env", `${name}=${value}`])),
  ];
  if (line) items.push(["log-accept", line("Accept")]);
  for (const kind of ["fail", "temporary", "crash", "unrunnable"] as const) {
    items.push([`reply-${kind}`, REPLIES[kind]]);
    if (line) items.push([`log-${kind}`, line("Reject")]);
  }
  items.push(["run", ""]);
  return items;
}

const zero = (bytes: Uint8Array) => bytes.every((byte) => byte === 0);

/**
 * After the plan: the plan handed to writeControl and every buffer a line
 * was read into hold zeros, and the secret was written nowhere but to the
 * front (whose copy the fake took as it was written).
 */
function expectSecretGone(platform: FakePlatform, secret: string, lineFds: readonly number[]): void {
  expect(platform.said(), "the front got the secret").toContain(`\0${secret}\0`);
  const handed = platform.handedToControl.at(-1)!;
  expect(handed.length, "the plan's length").toBeGreaterThan(0);
  expect(zero(handed), "the plan as handed to writeControl, afterwards").toBe(true);
  const lineBuffers = platform.reads.filter((read) => lineFds.includes(read.fd)).map((read) => read.buffer);
  expect(lineBuffers.length).toBeGreaterThan(0);
  lineBuffers.forEach((buffer, i) => expect(zero(buffer), `line buffer ${i}: ${JSON.stringify(latin1(buffer).replace(/\0+/g, "…"))}`).toBe(true));
  for (const fd of platform.writtenFds()) expect(platform.written(fd), `fd ${fd}`).not.toContain(secret);
}

describe("the greeting", () => {
  it("APOP off: a bare +OK, then QUIT ends with end=0 and exit 0", async () => {
    const platform = fake({}, ["QUIT\r\n"]);
    expect(await run(platform)).toBe(0);
    expect(platform.written(1)).toBe(GREETING + OK);
    expect(platform.said()).toBe("5:end=0,");
    expect(platform.writtenFds()).toEqual([1]);
  });

  it.each(["+apop", "APOP"])("POP3AUTH=%s: +OK <PID.TIME@HOSTNAME>, the pid the front's, the time unixSeconds'", async (pop3auth) => {
    const platform = fake({ env: { POP3AUTH: pop3auth } }, ["QUIT\r\n"]);
    expect(await run(platform)).toBe(0);
    expect(platform.written(1)).toBe(GREETING_APOP + OK);
  });

  it("another pid in the introduction, another greeting", async () => {
    const platform = fake({ pid: 7, env: { POP3AUTH: "+apop" } }, ["QUIT\r\n"]);
    await run(platform);
    expect(platform.written(1)).toBe(`+OK <7.${NOW}@${HOST}>\r\n${OK}`);
  });

  it("the hostname argument's bytes as they are, non-UTF-8 included", async () => {
    const platform = fake({ args: ["m\xe4il.example.org", "checkpassword"], env: { POP3AUTH: "+apop" } }, ["QUIT\r\n"]);
    await run(platform);
    expect(platform.written(1)).toBe(`+OK <${PID}.${NOW}@m\xe4il.example.org>\r\n${OK}`);
  });

  it("is written before dumps are forbidden, and dumps are forbidden before the first line is read", async () => {
    const platform = fake({}, ["QUIT\r\n"]);
    await run(platform);
    const first = (event: string) => platform.events.indexOf(event);
    expect(first("write 1")).toBeGreaterThan(first(`readControl ${CONTROL}`));
    expect(first("forbidDumps")).toBe(first("write 1") + 1);
    // The front's confinement cleared the parent-death signal at exec: armed again, for the front's pid.
    expect(first(`endWithFront ${PID}`)).toBe(first("forbidDumps") + 1);
    expect(first("readLinePart 0")).toBe(first(`endWithFront ${PID}`) + 1);
  });

  it("a client gone before the greeting: end=1, exit 1, nothing read", async () => {
    const platform = fake({}, ["QUIT\r\n"], { brokenWrites: [1] });
    expect(await run(platform)).toBe(1);
    expect(platform.said()).toBe("5:end=1,");
    expect(platform.reads.filter((read) => read.fd === 0)).toEqual([]);
  });
});

describe("reading lines", () => {
  it("lines pipelined in one arrival: each read stops at its LF, and what follows PASS is left for the login program", async () => {
    const lines = "CAPA\r\nNOOP\r\nUSER alice\r\nPASS wonderland\r\n";
    const platform = fake({}, [lines + "LIST\r\nRETR 1\r\n"]);
    expect(await run(platform)).toBe(0);
    expect(platform.written(1)).toBe(GREETING + CAPA_PLAIN + OK + OK);
    expect(platform.unread(0)).toBe("LIST\r\nRETR 1\r\n");
    const fd0 = platform.reads.filter((read) => read.fd === 0);
    expect(fd0.map((read) => read.kind)).toEqual(fd0.map(() => "readLinePart"));
    // What the fake gave, read by read, ends at an LF each time, and adds up to the lines.
    const given = fd0.map((read) => (typeof read.result === "number" ? read.result : -1));
    expect(given).toEqual(["CAPA\r\n", "NOOP\r\n", "USER alice\r\n", "PASS wonderland\r\n"].map((line) => line.length));
    expect(netstrings(platform.said()).find(([key]) => key === "credentials")).toEqual(["credentials", `alice\0wonderland\0${TIMESTAMP}\0`]);
  });

  it("a line in pieces, with time between them, is one line", async () => {
    const platform = fake({}, ["US", { waitMs: 1000 }, "ER al", "ice\r", { waitMs: 1000 }, "\nQUIT\r\n"]);
    expect(await run(platform)).toBe(0);
    expect(platform.written(1)).toBe(GREETING + OK + OK);
  });

  it("the deadline covers the whole line: a client dripping bytes times out", async () => {
    const platform = fake({ timeout: 30 }, ["US", { waitMs: 20_000 }, "ER alice", { waitMs: 20_000 }, "\r\n"]);
    expect(await run(platform)).toBe(1);
    expect(platform.nowMs()).toBe(START_MS + 30_000);
    expect(platform.written(1)).toBe(GREETING);
    expect(platform.said()).toBe("5:end=1,");
  });

  it("each line's reads have the deadline now + POP3TIMEOUT, set when the line starts", async () => {
    const platform = fake({ timeout: 30 }, [{ waitMs: 2000 }, "NOOP\r\n", { waitMs: 7000 }, "QU", { waitMs: 1000 }, "IT\r\n"]);
    await run(platform);
    const deadlines = platform.reads.filter((read) => read.fd === 0).map((read) => read.deadlineMs);
    expect(deadlines).toEqual([START_MS + 30_000, START_MS + 32_000, START_MS + 32_000]);
  });
});

describe("USER/PASS: the plan for the front, then exit 0", () => {
  it("fd 5 closed: descriptors, timeout, credentials, a reply per outcome, no log lines", async () => {
    const platform = fake({}, ["USER alice\r\nPASS wonderland\r\n"]);
    expect(await run(platform)).toBe(0);
    expect(platform.written(1)).toBe(GREETING + OK);
    expect(netstrings(platform.said())).toEqual(plan({ credentials: `alice\0wonderland\0${TIMESTAMP}\0` }));
    expect(platform.events.slice(-2)).toEqual(["writeControl", "exit 0"]);
    expect(platform.written(5)).toBeUndefined();
  });

  it("the plan's bytes, netstring by netstring", async () => {
    const platform = fake({ timeout: 30 }, ["USER a\r\nPASS b\r\n"]);
    await run(platform);
    const credentials = `a\0b\0${TIMESTAMP}\0`;
    expect(platform.said()).toBe(
      "7:input=0,8:output=1," +
        ns("credentials", credentials) +
        ns("reply-fail", "-ERR [AUTH] authorization failed\r\n") +
        ns("reply-temporary", "-ERR [SYS/TEMP] authorization failed\r\n") +
        ns("reply-crash", "-ERR [SYS/TEMP] aack, child crashed\r\n") +
        ns("reply-unrunnable", "-ERR [SYS/TEMP] authorization failed\r\n") +
        "4:run=,",
    );
  });

  it("fd 5 open: a log line per outcome, for the front to write; the runtime writes none", async () => {
    const env = { TCPREMOTEIP: "192.0.2.7", TCPREMOTEHOST: "client.example.net" };
    const platform = fake({ open: [0, 1, 2, 5], env }, ["USER alice\r\nPASS wonderland\r\n"]);
    expect(await run(platform)).toBe(0);
    expect(netstrings(platform.said())).toEqual(
      plan({
        credentials: `alice\0wonderland\0${TIMESTAMP}\0`,
        line: (result) => `qmail-popup: pid ${PID} ${result}::AUTH::User P:POP3 S:192.0.2.7:client.example.net ?= 'alice'\n`,
      }),
    );
    expect(platform.written(5)).toBeUndefined();
  });

  it("APOP: the digest as the secret, method Apop", async () => {
    const platform = fake({ open: [0, 1, 2, 5], env: { POP3AUTH: "+apop" } }, ["APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n"]);
    expect(await run(platform)).toBe(0);
    expect(platform.written(1)).toBe(GREETING_APOP);
    expect(netstrings(platform.said())).toEqual(
      plan({
        credentials: `mrose\0c4c9334bac560ecc979e58001b3e22fb\0${TIMESTAMP}\0`,
        line: (result) => `qmail-popup: pid ${PID} ${result}::AUTH::Apop P:POP3 S:unknown:unknown ?= 'mrose'\n`,
      }),
    );
  });

  it("a password of any bytes reaches the plan byte for byte", async () => {
    const platform = fake({}, ["USER j\xf6rg\r\nPASS \xff\xfe w\xe4chter \r\n"]);
    await run(platform);
    expect(netstrings(platform.said())).toEqual(plan({ credentials: `j\xf6rg\0\xff\xfe w\xe4chter \0${TIMESTAMP}\0` }));
  });

  it("the secret is left nowhere: the plan handed over and every line buffer hold zeros", async () => {
    const platform = fake({ open: [0, 1, 2, 5] }, ["USER alice\r\nPASS wonderland\r\n"]);
    await run(platform);
    expectSecretGone(platform, "wonderland", [0]);
  });

  it("AUTH PLAIN: the secret is left nowhere either", async () => {
    const response = Buffer.from("\0alice\0wonderland").toString("base64");
    const platform = fake({}, ["AUTH PLAIN\r\n", `${response}\r\n`]);
    await run(platform);
    expect(platform.written(1)).toBe(GREETING + "+ \r\n");
    expect(netstrings(platform.said())).toEqual(plan({ credentials: `alice\0wonderland\0${TIMESTAMP}\0` }));
    expectSecretGone(platform, "wonderland", [0]);
  });
});

describe("ends without a login", () => {
  it("QUIT: +OK, end=0, exit 0, the +OK written before the end is announced", async () => {
    const platform = fake({}, ["QUIT\r\nNOOP\r\n"]);
    expect(await run(platform)).toBe(0);
    expect(platform.written(1)).toBe(GREETING + OK);
    expect(platform.said()).toBe("5:end=0,");
    expect(platform.events.slice(-3)).toEqual(["write 1", "writeControl", "exit 0"]);
    expect(platform.unread(0)).toBe("NOOP\r\n");
  });

  it.each([
    ["at once", ["eof"]],
    ["after a command", ["NOOP\r\n", "eof"]],
    ["in the middle of a line", ["USER al", "eof"]],
  ] as const)("end of file %s: end=1, exit 1, nothing more on fd 1", async (_when, network) => {
    const platform = fake({}, network);
    expect(await run(platform)).toBe(1);
    expect(platform.written(1)).toBe(network[0] === "NOOP\r\n" ? GREETING + OK : GREETING);
    expect(platform.said()).toBe("5:end=1,");
    expect(platform.writtenFds()).toEqual([1]);
  });

  it("idle for 1200 seconds: end=1, exit 1, nothing more on fd 1, the clock moved by the timeout only", async () => {
    const platform = fake({}, []);
    expect(await run(platform)).toBe(1);
    expect(platform.nowMs()).toBe(START_MS + DEFAULT_TIMEOUT_MS);
    expect(platform.written(1)).toBe(GREETING);
    expect(platform.said()).toBe("5:end=1,");
  });

  it("POP3TIMEOUT=30: idle 30 seconds after the last line", async () => {
    const platform = fake({ timeout: 30 }, ["NOOP\r\n", { waitMs: 10_000 }, "NOOP\r\n"]);
    expect(await run(platform)).toBe(1);
    expect(platform.nowMs()).toBe(START_MS + 10_000 + 30_000);
    expect(platform.written(1)).toBe(GREETING + OK + OK);
    expect(platform.said()).toBe("5:end=1,");
  });

  it("missing arguments: the usage line on fd 1, end=1, exit 1, no greeting, nothing read", async () => {
    for (const args of [[HOST], []]) {
      const platform = fake({ args }, ["QUIT\r\n"]);
      expect(await run(platform)).toBe(1);
      expect(platform.written(1)).toBe(`-ERR usage: qmail-popup hostname subprogram [args...] (qmail-popup ${VERSION})\r\n`);
      expect(platform.said()).toBe("5:end=1,");
      expect(platform.unread(0)).toBe("QUIT\r\n");
    }
  });
});

describe("STLS over UCSPI-TLS", () => {
  const SSL_OPEN = [0, 1, 2, 5, 6, 7, 8];
  const ANSWER = ["SSL_PROTOCOL=TLSv1.3\0SSL_CIPHER=TLS_AES_256_GCM_SHA384\0", "TCPREMOTEIP=203.0.113.66\0SSL_SESSION_ID=ab12\0\0"];

  it("`Y` on SSLCTLFD after the +OK, output=N to the front, then the TLS pipes; the plan uses them and carries SSL_*", async () => {
    const platform = fake({ open: SSL_OPEN, env: SSL_ENV }, ["CAPA\r\nUSER mallory\r\nSTLS\r\nUSER injected\r\nPASS injected\r\n"], {
      reads: { 6: ANSWER, 7: ["CAPA\r\nPASS early\r\nUSER alice\r\nPASS wonderland\r\n"] },
    });
    expect(await run(platform)).toBe(0);
    expect(platform.written(1)).toBe(GREETING + CAPA_STLS + OK + OK_STLS);
    expect(platform.written(6)).toBe("Y");
    // After STLS: no STLS offered, the USER given in clear forgotten.
    expect(platform.written(8)).toBe(CAPA_PLAIN + "-ERR USER first\r\n" + OK);
    // Plaintext pipelined behind STLS is never read.
    expect(platform.unread(0)).toBe("USER injected\r\nPASS injected\r\n");
    const said = platform.said();
    expect(said.startsWith("8:output=8,")).toBe(true);
    expect(netstrings(said.slice("8:output=8,".length))).toEqual(
      plan({
        input: 7,
        output: 8,
        credentials: `alice\0wonderland\0${TIMESTAMP}\0`,
        environment: [
          ["SSL_PROTOCOL", "TLSv1.3"],
          ["SSL_CIPHER", "TLS_AES_256_GCM_SHA384"],
          ["SSL_SESSION_ID", "ab12"],
        ],
        line: (result) => `qmail-popup: pid ${PID} ${result}::AUTH::User P:POP3S S:unknown:unknown ?= 'alice'\n`,
      }),
    );
    expectSecretGone(platform, "wonderland", [0, 7]);
  });

  it("in order: +OK on fd 1, `Y`, sslserver's answer, output=8, then reads of the TLS pipe", async () => {
    const platform = fake({ open: SSL_OPEN, env: SSL_ENV }, ["STLS\r\n"], { reads: { 6: ANSWER, 7: ["QUIT\r\n"] } });
    expect(await run(platform)).toBe(0);
    const events = platform.events.filter((event) => event !== "read 6");
    const stls = events.lastIndexOf("readLinePart 0");
    expect(events.slice(stls)).toEqual(["readLinePart 0", "write 1", "write 6", "writeControl", "readLinePart 7", "write 8", "writeControl", "exit 0"]);
    expect(platform.said()).toBe("8:output=8,5:end=0,");
  });

  it("an answer of exactly 65536 bytes is taken", async () => {
    const answer = "SSL_CLIENT_CERT=" + "c".repeat(65536 - "SSL_CLIENT_CERT=".length - 2) + "\0\0";
    const platform = fake({ open: SSL_OPEN, env: SSL_ENV }, ["STLS\r\n"], { reads: { 6: [answer], 7: ["QUIT\r\n"] } });
    expect(await run(platform)).toBe(0);
    expect(platform.said()).toBe("8:output=8,5:end=0,");
  });

  it("an answer longer than 65536 bytes: a line on fd 2, end=1, no read past the limit and none into an empty buffer", async () => {
    // A certificate, say: lines, so that each read stops at an LF.
    const pem = "SSL_CLIENT_CERT=-----BEGIN CERTIFICATE-----\n" + `${"M".repeat(63)}\n`.repeat(1100);
    expect(pem.length).toBeGreaterThan(65536);
    const platform = fake({ open: SSL_OPEN, env: SSL_ENV }, ["STLS\r\n"], { reads: { 6: [pem], 7: ["QUIT\r\n"] } });
    expect(await run(platform)).toBe(1);
    expect(platform.written(2)).toBe("qmail-popup: sslserver's answer is longer than 65536 bytes\n");
    expect(platform.said()).toBe("5:end=1,");
    const fromSslserver = platform.reads.filter((read) => read.fd === 6);
    expect(fromSslserver.reduce((total, read) => total + (read.result as number), 0)).toBe(65536);
    expect(platform.unread(6).length).toBe(pem.length - 65536);
    expect(platform.reads.filter((read) => read.fd === 7)).toEqual([]);
    expect(platform.written(8)).toBeUndefined();
  });

  it("an answer without a single LF, over the limit, the same", async () => {
    const platform = fake({ open: SSL_OPEN, env: SSL_ENV }, ["STLS\r\n"], { reads: { 6: ["x".repeat(40_000), "y".repeat(40_000)] } });
    expect(await run(platform)).toBe(1);
    expect(platform.written(2)).toBe("qmail-popup: sslserver's answer is longer than 65536 bytes\n");
    expect(platform.said()).toBe("5:end=1,");
  });

  it("sslserver gone before its answer is complete: end=1, exit 1", async () => {
    const platform = fake({ open: SSL_OPEN, env: SSL_ENV }, ["STLS\r\n"], { reads: { 6: ["SSL_PROTOCOL=TLSv1.3\0", "eof"] } });
    expect(await run(platform)).toBe(1);
    expect(platform.said()).toBe("5:end=1,");
    expect(platform.written(8)).toBeUndefined();
  });

  it("(the fake refuses a read into an empty buffer: no test here passes with one)", () => {
    const platform = new FakePlatform();
    return expect(platform.readLinePart(0, new Uint8Array(8).subarray(8), 0)).rejects.toBeInstanceOf(EmptyBufferRead);
  });
});

describe("fd 5", () => {
  it("closed: the STLS-required refusal writes nothing to it", async () => {
    const platform = fake({ open: [0, 1, 2, 6, 7, 8], env: { ...SSL_ENV, UCSPITLS: "!" } }, ["USER alice\r\n"]);
    expect(await run(platform)).toBe(1);
    expect(platform.written(1)).toBe(GREETING + "-ERR TLS required but not negotiated\r\n");
    expect(platform.writtenFds()).toEqual([1]);
    expect(platform.said()).toBe("5:end=1,");
  });

  it("open: the refusal's line, exact", async () => {
    const platform = fake({ open: [0, 1, 2, 5, 6, 7, 8], env: { ...SSL_ENV, UCSPITLS: "!" } }, ["USER alice\r\n"]);
    expect(await run(platform)).toBe(1);
    expect(platform.written(5)).toBe(`qmail-popup: pid ${PID} Reject::STLS::Any P:POP3 S:unknown:unknown ?= 'unknown'\n`);
  });
});

describe("UCSPITLS set, STLS impossible", () => {
  it("descriptors named but not open: a line on fd 2, STLS not offered", async () => {
    const platform = fake({ env: SSL_ENV }, ["CAPA\r\nSTLS\r\nQUIT\r\n"]);
    expect(await run(platform)).toBe(0);
    expect(platform.written(2)).toBe("qmail-popup: UCSPITLS is set but SSLCTLFD, SSLREADFD or SSLWRITEFD is not open: STLS not offered\n");
    expect(platform.written(1)).toBe(GREETING + CAPA_PLAIN + "-ERR STLS not available\r\n" + OK);
    expect(platform.writtenFds()).toEqual([1, 2]);
    expect(platform.reads.filter((read) => read.fd === 6)).toEqual([]);
  });

  it("one of the three not open is enough", async () => {
    const platform = fake({ open: [0, 1, 2, 6, 8], env: SSL_ENV }, ["STLS\r\n", "eof"]);
    expect(await run(platform)).toBe(1);
    expect(platform.written(2)).toBe("qmail-popup: UCSPITLS is set but SSLCTLFD, SSLREADFD or SSLWRITEFD is not open: STLS not offered\n");
    expect(platform.written(1)).toBe(GREETING + "-ERR STLS not available\r\n");
  });

  it("descriptors not named: a line on fd 2 that says so", async () => {
    const platform = fake({ env: { UCSPITLS: "" } }, ["QUIT\r\n"]);
    await run(platform);
    expect(platform.written(2)).toBe("qmail-popup: UCSPITLS is set but SSLCTLFD, SSLREADFD and SSLWRITEFD are not all set: STLS not offered\n");
  });

  it("UCSPITLS=! without its descriptors: credentials are still refused, never taken in clear", async () => {
    const platform = fake({ env: { UCSPITLS: "!" } }, ["USER alice\r\nPASS wonderland\r\n"]);
    expect(await run(platform)).toBe(1);
    expect(platform.written(1)).toBe(GREETING + "-ERR TLS required but not negotiated\r\n");
    expect(platform.said()).toBe("5:end=1,");
  });

  it("on port 995 nothing is said: TLS is already there", async () => {
    const platform = fake({ env: { UCSPITLS: "", TCPLOCALPORT: "995" } }, ["QUIT\r\n"]);
    await run(platform);
    expect(platform.written(2)).toBeUndefined();
  });
});

describe("a PROXY header (QMAIL_POPUP_PROXY set)", () => {
  const BALANCER = { QMAIL_POPUP_PROXY: "1", TCPREMOTEIP: "10.0.0.5", TCPREMOTEHOST: "lb.example.net", TCPLOCALPORT: "110" };

  it("v1: read exactly, before the greeting; its addresses in the plan's environment and the log lines", async () => {
    const header = "PROXY TCP4 198.51.100.22 203.0.113.7 35646 110\r\n";
    const platform = fake({ open: [0, 1, 2, 5], env: BALANCER }, [header + "USER alice\r\nPASS wonderland\r\nSTAT\r\n"]);
    expect(await run(platform)).toBe(0);
    expect(platform.written(1)).toBe(GREETING + OK);
    expect(platform.unread(0)).toBe("STAT\r\n");
    expect(netstrings(platform.said())).toEqual(
      plan({
        credentials: `alice\0wonderland\0${TIMESTAMP}\0`,
        environment: [
          ["TCPLOCALHOST", undefined],
          ["TCPREMOTEHOST", undefined],
          ["TCPREMOTEINFO", undefined],
          ["TCP6LOCALHOST", undefined],
          ["TCP6REMOTEHOST", undefined],
          ["TCP6INTERFACE", undefined],
          ["TCPLOCALIP", "203.0.113.7"],
          ["TCP6LOCALIP", undefined],
          ["TCPLOCALPORT", "110"],
          ["TCP6LOCALPORT", undefined],
          ["TCPREMOTEIP", "198.51.100.22"],
          ["TCP6REMOTEIP", undefined],
          ["TCPREMOTEPORT", "35646"],
          ["TCP6REMOTEPORT", undefined],
        ],
        line: (result) => `qmail-popup: pid ${PID} ${result}::AUTH::User P:POP3 S:198.51.100.22:unknown ?= 'alice'\n`,
      }),
    );
    // The header's reads end where it does: 15 bytes, the rest of its line, then USER's line.
    const fd0 = platform.reads.filter((read) => read.fd === 0);
    expect(fd0.map((read) => [read.kind, read.result])).toEqual([
      ["read", 15],
      ["readLinePart", header.length - 15],
      ["readLinePart", "USER alice\r\n".length],
      ["readLinePart", "PASS wonderland\r\n".length],
    ]);
  });

  it.each([
    ["a malformed header", ["PROXY TCP4 nonsense\r\n"], "v1: TCP4 needs 4 fields after it"],
    ["a client that speaks first", ["USER alice\r\n"], "not a PROXY header"],
    ["a header cut short", ["PROXY TCP4 198.51.100.22", "eof"], "the connection ended first"],
    ["no header within 10 seconds", [], "none within 10 seconds"],
  ] as const)("%s: the reason on fd 2, no greeting, end=1, exit 1", async (_case, network, reason) => {
    const platform = fake({ env: BALANCER }, network);
    expect(await run(platform)).toBe(1);
    expect(platform.written(2)).toBe(`qmail-popup: PROXY header refused: ${reason}\n`);
    expect(platform.written(1)).toBeUndefined();
    expect(platform.said()).toBe("5:end=1,");
    expect(platform.events).not.toContain("forbidDumps");
  });

  it("the header's deadline is 10 seconds, not POP3TIMEOUT's", async () => {
    const platform = fake({ env: BALANCER }, []);
    await run(platform);
    expect(platform.nowMs()).toBe(START_MS + 10_000);
  });
});

describe("the front's introduction", () => {
  it("in one-byte pieces: read whole all the same", async () => {
    const bytes = introduction({ env: { POP3AUTH: "+apop" } });
    const platform = new FakePlatform({ control: [...bytes].map((byte) => Uint8Array.of(byte)), reads: { 0: ["QUIT\r\n"] }, unixSeconds: NOW });
    expect(await run(platform)).toBe(0);
    expect(platform.written(1)).toBe(GREETING_APOP + OK);
  });

  it("without a control socket: a line on fd 2, exit 111, nothing else", async () => {
    const platform = new FakePlatform({ controlFd: undefined, reads: { 0: ["QUIT\r\n"] } });
    expect(await run(platform)).toBe(111);
    expect(platform.written(2)).toBe("qmail-popup: this is qmail-popup's runtime: run qmail-popup, the program next to it\n");
    expect(platform.writtenFds()).toEqual([2]);
    expect(platform.events).toEqual(["write 2", "exit 111"]);
  });

  /** What a front of this release says first. */
  const V = ns("version", VERSION) + ns("timeout", "1200");
  const MALFORMED = [
    ["an unknown key", V + ns("pid", "1") + ns("colour", "blue") + ns("end"), "malformed"],
    ["a pid that is not a number", V + ns("pid", "-1") + ns("end"), "malformed"],
    ["no pid before end", V + ns("arg", HOST) + ns("end"), "malformed"],
    ["no timeout before end", ns("version", VERSION) + ns("pid", "1") + ns("end"), "malformed"],
    ["a timeout of 0", ns("version", VERSION) + ns("timeout", "0") + ns("pid", "1") + ns("end"), "malformed"],
    ["a timeout over 2147483 seconds", ns("version", VERSION) + ns("timeout", "2147484") + ns("pid", "1") + ns("end"), "malformed"],
    ["a timeout of 10 digits", ns("version", VERSION) + ns("timeout", "1000000000") + ns("pid", "1") + ns("end"), "malformed"],
    ["two timeouts", V + ns("timeout", "5") + ns("pid", "1") + ns("end"), "malformed"],
    ["a query after the pid", V + ns("pid", "1") + ns("query", "version"), "malformed"],
    ["not a netstring", "hello, runtime\n", "malformed"],
    ["a netstring without its comma", "7:pid=123;4:end=,", "malformed"],
    ["no `=`", "3:pid,4:end=,", "malformed"],
    ["cut short before end", V + ns("pid", "1") + ns("arg", HOST), "cut short or too long"],
    ["nothing at all", "", "cut short or too long"],
    // A front of an older release: its first item is its pid.
    ["no version first (an older front)", ns("pid", "1") + ns("end"), "said no version first"],
  ] as const;

  it.each(MALFORMED)("%s: serve rejects, nothing written anywhere", async (_case, said, problem) => {
    const platform = new FakePlatform({ control: said === "" ? [] : [said], reads: { 0: ["QUIT\r\n"] } });
    await expect(serve(platform)).rejects.toThrow(problem === "said no version first" ? "the front (qmail-popup) said no version first" : `the front's introduction is ${problem}`);
    expect(platform.writtenFds()).toEqual([]);
    expect(platform.handedToControl).toEqual([]);
    expect(platform.exits).toEqual([]);
  });

  it.each(MALFORMED)("%s: through main, a fatal line on fd 2 and exit 111", async (_case, said, problem) => {
    const platform = new FakePlatform({ control: said === "" ? [] : [said], reads: { 0: ["QUIT\r\n"] }, exitThrows: false });
    main(platform);
    expect(await platform.exited).toBe(111);
    expect(platform.exits).toEqual([111]);
    expect(platform.written(2)).toBe(
      problem === "said no version first"
        ? `qmail-popup: fatal: the front (qmail-popup) said no version first: it is not qmail-popup ${VERSION}: install qmail-popup and qmail-popup-runtime from one release\n`
        : `qmail-popup: fatal: the front's introduction is ${problem}\n`,
    );
    expect(platform.writtenFds()).toEqual([2]);
    expect(platform.handedToControl).toEqual([]);
  });

  it("our version first, before a byte to the client; the timeout the front passed, whatever POP3TIMEOUT says", async () => {
    const platform = fake({ timeout: 3, env: { POP3TIMEOUT: "3600" } }, ["NOOP\r\n"]);
    expect(await run(platform)).toBe(1);
    expect(platform.versions).toEqual([VERSION]);
    expect(platform.events[0]).toBe(`readControl ${CONTROL}`);
    expect(platform.events[1]).toBe("version");
    expect(platform.nowMs()).toBe(START_MS + 3000);
  });

  it("a front of another release: our version said, then exit 111 with nothing else anywhere (the front reports both)", async () => {
    const platform = fake({ version: "0.0.1" }, ["QUIT\r\n"]);
    expect(await run(platform)).toBe(111);
    expect(platform.versions).toEqual([VERSION]);
    expect(platform.writtenFds()).toEqual([]);
    expect(platform.said()).toBe("");
    expect(platform.unread(0)).toBe("QUIT\r\n");
  });

  it("`qmail-popup --version`'s query: our version, exit 0, no greeting, nothing read", async () => {
    const platform = new FakePlatform({ control: [ns("version", "0.0.1") + ns("query", "version")], reads: { 0: ["QUIT\r\n"] } });
    expect(await run(platform)).toBe(0);
    expect(platform.versions).toEqual([VERSION]);
    expect(platform.writtenFds()).toEqual([]);
    expect(platform.unread(0)).toBe("QUIT\r\n");
  });

  it("says it is alive before each wait: each line read, each write, and the PROXY header", async () => {
    const platform = fake({ env: { QMAIL_POPUP_PROXY: "1" } }, ["PROXY TCP4 192.0.2.1 192.0.2.2 1234 110\r\n", "NOOP\r\n", "QUIT\r\n"]);
    expect(await run(platform)).toBe(0);
    const waits = platform.events.map((event, at) => [event, at] as const).filter(([event]) => /^(readLinePart|read|write) [015]$/.test(event));
    expect(waits.length).toBeGreaterThan(4);
    // Between one wait and the next (and before the first), a keep-alive.
    let previous = -1;
    for (const [event, at] of waits) {
      // The reads of one line (or of the header) share one deadline, and so one keep-alive.
      if (event.startsWith("read") && platform.events[at - 1]?.startsWith("read")) continue;
      expect(platform.alivesAt.some((alive) => alive > previous && alive <= at), `an alive before ${event} at ${at}`).toBe(true);
      previous = at;
    }
  });

  it("through main, without a control socket: the line on fd 2 and exit 111, once", async () => {
    const platform = new FakePlatform({ controlFd: undefined, exitThrows: false });
    main(platform);
    expect(await platform.exited).toBe(111);
    expect(platform.exits).toEqual([111]);
    expect(platform.written(2)).toBe("qmail-popup: this is qmail-popup's runtime: run qmail-popup, the program next to it\n");
  });
});
