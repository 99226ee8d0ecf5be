// The front against a runtime it must not trust (issue #16 items 5-7,
// #17 item 5, #18 items 2-3), under real tcpserver:
//  - a static stand-in runtime (test/fixtures/static/plan-runtime.c) sends
//    one hostile plan each: every one gives `-ERR [SYS/TEMP]`, a line on
//    fd 2 naming what was refused, and the checkpassword never runs; the
//    same stand-in with the clean plan a real runtime sends (built with
//    src/core/front.ts's encoder) logs in: the positive control;
//  - versions: a front and a runtime of different builds refuse each other
//    before the greeting; `qmail-popup --version`;
//  - a wedged runtime (stopped, looping, blocked) is killed within
//    2 x POP3TIMEOUT + 10 seconds;
//  - POP3TIMEOUT parsed once, in the front: front and runtime agree.

import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { concatBytes } from "../../src/core/bytes.ts";
import { encodePlan, encodeOutputNotice } from "../../src/core/front.ts";
import { encodeNetstring } from "../../src/core/netstring.ts";
import { VERSION } from "../../src/version.ts";
import { startResident } from "../../scripts/lib/tcpserver.mjs";
import { Client, ROOT, TcpServer, makeHomes, tempDir, variants, type Variant } from "./harness.ts";
import { childrenOf } from "./proc.ts";

const TEMPORARY = "-ERR [SYS/TEMP] unable to run qmail-popup\r\n";
const FRONT = join(ROOT, "dist/qmail-popup");
const STAND_IN = join(ROOT, "dist/test-fixtures/plan-runtime");
const HOST = "mail.test";
/** The APOP timestamp the front expects: the stand-in puts the front's pid for {PID}. */
const TIMESTAMP = `<{PID}.1700000000@${HOST}>`;
const latin1 = (text: string) => new Uint8Array(Buffer.from(text, "latin1"));

let homes: string;
beforeAll(() => {
  homes = makeHomes(["alice"]);
  for (const file of [FRONT, STAND_IN]) if (!existsSync(file)) throw new Error(`${file} is missing: make all variants test-fixtures`);
});

/** The clean plan a runtime of this release sends for alice's USER/PASS login, with `extra` environment. */
function cleanPlan(environment: Record<string, string | undefined> = {}, credentials = `alice\0wonderland\0${TIMESTAMP}\0`): Uint8Array {
  return encodePlan({ input: 0, output: 1, credentials: latin1(credentials), environment, lines: undefined });
}

const item = (key: string, value: string | Uint8Array = "") => encodeNetstring(key, typeof value === "string" ? latin1(value) : value);
const plan = (...parts: (Uint8Array | string)[]) => concatBytes(parts.map((part) => (typeof part === "string" ? latin1(part) : part)));
/** The clean plan with its items before `run`, then these, then `run`. */
const cleanPlus = (...items: Uint8Array[]) => {
  const clean = cleanPlan();
  const run = item("run");
  return plan(clean.subarray(0, clean.length - run.length), ...items, run);
};
/** The clean plan with `key=value` items of its own replaced. */
function cleanWith(replace: Record<string, string | Uint8Array>, environment: Record<string, string | undefined> = {}): Uint8Array {
  const items = [item("input", "0"), item("output", "1"), item("credentials", `alice\0wonderland\0${TIMESTAMP}\0`)];
  const keys = ["input", "output", "credentials"];
  const chosen = keys.map((key, i) => (key in replace ? item(key, replace[key]!) : items[i]!));
  const env = Object.entries(environment).map(([name, value]) => (value === undefined ? item("unset", name) : item("env", `${name}=${value}`)));
  return plan(...chosen, ...env, item("reply-fail", "-ERR [AUTH] authorization failed\r\n"), item("run"));
}

interface Setup {
  /** What the stand-in sends after its version. */
  readonly plan: Uint8Array;
  /** The version the stand-in says ("" for none); default this build's. */
  readonly version?: string;
  readonly wedge?: "stop" | "loop" | "block";
  readonly env?: Record<string, string>;
}

interface Outcome {
  readonly text: string;
  readonly log: string;
  /** Whether the checkpassword ran (it recorded what it read on fd 3). */
  readonly ran: boolean;
  readonly seconds: number;
}

/** A directory holding a copy of the front, the stand-in as its runtime, and the stand-in's files. */
function standInDir(setup: Setup): string {
  const dir = tempDir("qmail-popup-plan-");
  copyFileSync(FRONT, join(dir, "qmail-popup"));
  copyFileSync(STAND_IN, join(dir, "qmail-popup-runtime"));
  chmodSync(join(dir, "qmail-popup"), 0o755);
  chmodSync(join(dir, "qmail-popup-runtime"), 0o755);
  writeFileSync(join(dir, "plan"), setup.plan);
  if (setup.version !== undefined) writeFileSync(join(dir, "version"), setup.version);
  if (setup.wedge !== undefined) writeFileSync(join(dir, "wedge"), setup.wedge);
  return dir;
}

/** One connection to the stand-in's front: the client sends `send` and reads to the close. */
async function session(setup: Setup, send = "QUIT\r\n", closeMs = 20_000): Promise<Outcome> {
  const dir = standInDir(setup);
  const record = join(dir, "fd3");
  const server = await TcpServer.start({
    variant: { name: "stand-in", command: [join(dir, "qmail-popup")] },
    homes,
    hostname: HOST,
    env: { CHECKPASSWORD_RECORD: record, ...setup.env },
  });
  try {
    const started = Date.now();
    const client = await Client.connect(server.port);
    const pid = await server.pidFor(client.localPort);
    await client.send(send);
    const text = await client.untilClosed(closeMs);
    const seconds = (Date.now() - started) / 1000;
    await server.endOf(pid);
    return { text, log: server.log, ran: existsSync(record), seconds };
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("the stand-in runtime with a clean plan (the positive control)", () => {
  it("logs in: the checkpassword runs with alice's credentials and the front's timestamp", async () => {
    const got = await session({ plan: cleanPlan() });
    expect(got.log).toMatch(/plan-runtime: ran, sending \d+ bytes/);
    expect(got.ran).toBe(true);
    expect(got.text).toMatch(/^\+OK/);
    expect(got.text).not.toContain("[SYS/TEMP]");
  });

  it("behind a balancer (QMAIL_POPUP_PROXY=1): the PROXY header's variables set and unset reach the checkpassword", async () => {
    const dir = tempDir("qmail-popup-plan-env-");
    const got = await session({
      plan: cleanPlan({ TCPREMOTEIP: "192.0.2.7", TCPREMOTEPORT: "4711", TCP6REMOTEIP: undefined, TCPREMOTEHOST: undefined }),
      env: { QMAIL_POPUP_PROXY: "1", CHECKPASSWORD_ENV_RECORD: join(dir, "env") },
    });
    expect(got.ran).toBe(true);
    const env = readFileSync(join(dir, "env"), "latin1");
    expect(env).toContain("TCPREMOTEIP=192.0.2.7\n");
    expect(env).toContain("TCPREMOTEPORT=4711\n");
    expect(env).not.toMatch(/^TCPREMOTEHOST=/m);
  });

  it("keep-alives and the STLS notice's absence are fine: alive items before the plan", async () => {
    const got = await session({ plan: plan(item("alive"), item("alive"), cleanPlan()) });
    expect(got.ran).toBe(true);
  });
});

/** [what, the plan, what fd 2 says, extra environment]. */
type Hostile = readonly [what: string, plan: Uint8Array, line: string, env?: Record<string, string>];
const HOSTILE: readonly Hostile[] = [
  ["LD_PRELOAD", cleanPlan({ LD_PRELOAD: "/tmp/evil.so" }), "item env: a variable the session may not set"],
  ["LD_LIBRARY_PATH", cleanPlan({ LD_LIBRARY_PATH: "/tmp" }), "item env: a variable the session may not set"],
  ["PATH (a bare-name checkpassword's choice)", cleanPlan({ PATH: "/tmp" }), "item env: a variable the session may not set"],
  ["an empty name", cleanPlus(item("env", "=x")), "item env: an empty variable name"],
  ["a name with a newline", cleanPlus(item("env", "TCP\nX=1")), "item env: a variable name not of A-Z, 0-9, _"],
  ["a value with a newline", cleanPlan({ TCPREMOTEIP: "1.2.3.4\nX=1" }), "item env: a variable value with NUL, CR or LF", { QMAIL_POPUP_PROXY: "1" }],
  ["an env item without =", cleanPlus(item("env", "LD_PRELOAD")), "item env: an env item without ="],
  ["unset PATH", cleanPlus(item("unset", "PATH")), "item unset: a variable the session may not unset", { QMAIL_POPUP_PROXY: "1" }],
  ["a variable named twice", cleanPlus(item("env", "TCPREMOTEIP=1.2.3.4"), item("env", "TCPREMOTEIP=1.2.3.5")), "item env: a variable named twice", { QMAIL_POPUP_PROXY: "1" }],
  ["SSL_* without STLS", cleanPlan({ SSL_PROTOCOL: "TLSv1.3" }), "item env: an SSL_ variable without STLS"],
  ["TCP* without QMAIL_POPUP_PROXY", cleanPlan({ TCPREMOTEIP: "192.0.2.7" }), "item env: a TCP variable without QMAIL_POPUP_PROXY"],
  ["an unset of TCP* without QMAIL_POPUP_PROXY", cleanPlan({ TCPREMOTEHOST: undefined }), "item unset: a TCP variable without QMAIL_POPUP_PROXY"],
  ["TCPREMOTEIP not an address", cleanPlan({ TCPREMOTEIP: "evil.example" }), "item env: a TCP address that is not an IP address", { QMAIL_POPUP_PROXY: "1" }],
  ["TCPREMOTEPORT over 65535", cleanPlan({ TCPREMOTEPORT: "70000" }), "item env: a TCP port that is not a port", { QMAIL_POPUP_PROXY: "1" }],
  ["fd 0 pointed at fd 5", cleanWith({ input: "5" }), "item run: descriptors other than 0 and 1"],
  ["fd 1 pointed at fd 5", cleanWith({ output: "5" }), "item run: descriptors other than 0 and 1"],
  ["fd 1 pointed at fd 2", cleanWith({ output: "2" }), "item run: descriptors other than 0 and 1"],
  ["fd 0 pointed at fd 1", cleanWith({ input: "1" }), "item run: descriptors other than 0 and 1"],
  ["fd 0 and 1 at the report pipe's likely numbers", cleanWith({ input: "6", output: "7" }), "item run: descriptors other than 0 and 1"],
  ["a descriptor that is no number", cleanWith({ input: "-1" }), "item input: an input item not a descriptor"],
  ["the STLS pair without an STLS notice", cleanWith({ input: "7", output: "8" }), "item run: descriptors other than 0 and 1", { UCSPITLS: "", SSLCTLFD: "6", SSLREADFD: "7", SSLWRITEFD: "8" }],
  ["an STLS notice without SSLWRITEFD", plan(encodeOutputNotice(8), cleanPlan()), "item output: an STLS notice not naming our SSLWRITEFD"],
  ["fd 3 with extra NULs", cleanWith({ credentials: `alice\0wonder\0land\0${TIMESTAMP}\0` }), "item credentials: credentials with more than three fields"],
  ["fd 3 with no NUL", cleanWith({ credentials: "alice wonderland" }), "item credentials: credentials without a NUL"],
  ["fd 3 with nothing after the third NUL missing", cleanWith({ credentials: `alice\0wonderland\0${TIMESTAMP}` }), "item credentials: credentials with two fields"],
  ["fd 3 of 900 KB", cleanWith({ credentials: `alice\0${"x".repeat(900_000)}\0${TIMESTAMP}\0` }), "the runtime's plan refused: an item longer than the message limit"],
  ["a secret over 2048 bytes", cleanWith({ credentials: `alice\0${"x".repeat(2049)}\0${TIMESTAMP}\0` }), "item credentials: a secret too long"],
  ["a name over 2048 bytes", cleanWith({ credentials: `${"a".repeat(2049)}\0wonderland\0${TIMESTAMP}\0` }), "item credentials: a name too long"],
  ["a timestamp with another pid", cleanWith({ credentials: `alice\0wonderland\0<1.1700000000@${HOST}>\0` }), "item credentials: a timestamp not of our pid"],
  ["a timestamp with another host", cleanWith({ credentials: "alice\0wonderland\0<{PID}.1700000000@evil.test>\0" }), "item credentials: a timestamp not of our hostname"],
  ["a timestamp without its time", cleanWith({ credentials: `alice\0wonderland\0<{PID}.@${HOST}>\0` }), "item credentials: a timestamp without its time"],
  ["an unknown key in the plan", cleanPlus(item("colour", "blue")), "item colour: an unknown key"],
  ["an unknown key before the plan", plan(item("colour", "blue"), cleanPlan()), "item colour: an unknown key"],
  ["the old plan's timeout item", cleanPlus(item("timeout", "1200")), "item timeout: an unknown key"],
  ["a repeated run", plan(cleanPlan(), item("run")), "item run: an item after run"],
  ["an item after run", plan(cleanPlan(), item("env", "LD_PRELOAD=/tmp/evil.so")), "item env: an item after run"],
  ["a second credentials item", cleanPlus(item("credentials", `bob\0builder\0${TIMESTAMP}\0`)), "item credentials: a second credentials item"],
  ["run before the plan", plan(item("run")), "item run: run before the plan"],
  ["a reply over 512 bytes", cleanPlus(item("reply-accept", `-ERR ${"x".repeat(600)}\r\n`)), "item reply-accept: a reply empty or too long"],
  ["a reply with an embedded CRLF", cleanPlus(item("reply-accept", "-ERR a\r\n+OK b\r\n")), "item reply-accept: a reply not one line ending CRLF"],
  ["a reply with no CRLF", cleanPlus(item("reply-accept", "+OK")), "item reply-accept: a reply not one line ending CRLF"],
  ["a second reply for one outcome", cleanPlus(item("reply-fail", "+OK\r\n")), "item reply-fail: a second reply for one outcome"],
  ["a log line over 16384 bytes", cleanPlus(item("log-fail", `${"x".repeat(17_000)}\n`)), "item log-fail: a log line empty or too long"],
  ["a log line of two lines", cleanPlus(item("log-fail", "qmail-popup: one\nqmail-popup: two\n")), "item log-fail: a log line not one line ending LF"],
  ["a malformed netstring", plan(cleanPlan().subarray(0, 10), "x:y,", cleanPlan()), "the runtime's plan refused: a malformed netstring"],
  ["a netstring without its comma", plan("8:input=0;", cleanPlan()), "the runtime's plan refused: a malformed netstring"],
  ["1.1 MB in one item", plan(item("alive"), item("env", `SSL_X=${"x".repeat(1_100_000)}`), cleanPlan()), "the runtime's plan refused: an item longer than the message limit"],
];

describe("the stand-in runtime with a hostile plan: [SYS/TEMP], a line on fd 2, the checkpassword never runs", () => {
  it.each(HOSTILE.map((hostile) => [hostile[0], hostile] as const))("%s", async (_what, [, hostile, line, env]) => {
    const got = await session({ plan: hostile, env });
    // The stand-in ran and sent its plan: the refusal is the front's.
    expect(got.log).toMatch(/plan-runtime: ran, sending \d+ bytes/);
    expect(got.text).toBe(TEMPORARY);
    expect(got.log).toContain(line.startsWith("the runtime") ? `qmail-popup: ${line}\n` : `qmail-popup: the runtime's plan refused, ${line}\n`);
    expect(got.ran).toBe(false);
    // No secret on fd 2.
    expect(got.log).not.toContain("wonderland");
  });
});

describe("versions: a front and a runtime of different builds refuse each other before the greeting", () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir("qmail-popup-versions-");
    const built = spawnSync("gcc", ["-static", "-Os", "-std=c11", "-DVERSION=\"0.0.1\"", "-o", join(dir, "front-0.0.1"), join(ROOT, "src/front/qmail-popup.c"), join(ROOT, "src/front/confine.c"), join(ROOT, "src/front/resident.c")]);
    if (built.status !== 0) throw new Error(`gcc: ${built.stderr}`);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A directory with `front` as qmail-popup and `runtime` (a file, or a script's text) as its runtime. */
  function pairDir(front: string, runtime: { file: string } | { script: string; beside?: string }): string {
    const pair = tempDir("qmail-popup-pair-");
    copyFileSync(front, join(pair, "qmail-popup"));
    if ("file" in runtime) copyFileSync(runtime.file, join(pair, "qmail-popup-runtime"));
    else writeFileSync(join(pair, "qmail-popup-runtime"), runtime.script);
    // The confined runtime reads nothing outside its own directory: a script's bundle lies beside it.
    if ("beside" in runtime && runtime.beside !== undefined) copyFileSync(runtime.beside, join(pair, "bundle.mjs"));
    chmodSync(join(pair, "qmail-popup"), 0o755);
    chmodSync(join(pair, "qmail-popup-runtime"), 0o755);
    return pair;
  }

  async function greetingOf(pair: string): Promise<{ text: string; log: string }> {
    const server = await TcpServer.start({ variant: { name: "pair", command: [join(pair, "qmail-popup")] }, homes, hostname: HOST });
    try {
      const client = await Client.connect(server.port);
      const pid = await server.pidFor(client.localPort);
      await client.send("USER alice\r\nPASS wonderland\r\nQUIT\r\n");
      const text = await client.untilClosed();
      await server.endOf(pid);
      return { text, log: server.log };
    } finally {
      await server.stop();
    }
  }

  const patchedNodeRuntime = (version: string): { script: string; beside: string } => {
    const bundle = readFileSync(join(ROOT, "dist/qmail-popup-node.mjs"), "latin1");
    const patched = bundle.replace(`var VERSION = "${VERSION}";`, `var VERSION = "${version}";`);
    if (!bundle.includes(`var VERSION = "${VERSION}";`)) throw new Error("the bundle's VERSION was not found");
    const file = join(dir, `node-${version}.mjs`);
    writeFileSync(file, patched, "latin1");
    return { script: `#!/bin/sh\nexec ${process.execPath} "\${0%/*}/bundle.mjs" "$@"\n`, beside: file };
  };

  it("a front 0.0.1 beside this release's runtime (the Bun binary): [SYS/TEMP] before any greeting, both versions and the fix on fd 2", async () => {
    const got = await greetingOf(pairDir(join(dir, "front-0.0.1"), { file: join(ROOT, "dist/qmail-popup-runtime") }));
    expect(got.text).toBe(TEMPORARY);
    expect(got.log).toContain(`qmail-popup: version mismatch: this qmail-popup is 0.0.1, its qmail-popup-runtime is ${VERSION}: install both from one release\n`);
  });

  it("this release's front beside a runtime 9.9.9 (the Node bundle, patched): the same", async () => {
    const got = await greetingOf(pairDir(FRONT, patchedNodeRuntime("9.9.9")));
    expect(got.text).toBe(TEMPORARY);
    expect(got.log).toContain(`qmail-popup: version mismatch: this qmail-popup is ${VERSION}, its qmail-popup-runtime is 9.9.9: install both from one release\n`);
  });

  it("the control: this release's front beside the unpatched Node bundle logs in", async () => {
    const got = await greetingOf(pairDir(FRONT, patchedNodeRuntime(VERSION)));
    expect(got.text).toMatch(/^\+OK\r\n\+OK \r\n\+OK/);
  });

  it("a stripped Bun binary (it says `error: Script not found` and exits): not this release's runtime or damaged", async () => {
    const got = await greetingOf(pairDir(FRONT, { script: `#!/bin/sh\necho 'error: Script not found "5"' >&2\nexit 1\n` }));
    expect(got.text).toBe(TEMPORARY);
    expect(got.log).toContain(
      `ended with status 1 before its version: it is not qmail-popup-runtime ${VERSION} or it is damaged: install qmail-popup and qmail-popup-runtime from one release\n`,
    );
  });

  it("a stand-in that says nothing and exits: the same line", async () => {
    const got = await session({ plan: new Uint8Array(0), version: "" });
    expect(got.log).toMatch(/plan-runtime: ran, sending 0 bytes/);
    expect(got.text).toBe(TEMPORARY);
    expect(got.log).toContain(`ended with status 0 before its version: it is not qmail-popup-runtime ${VERSION} or it is damaged`);
    expect(got.ran).toBe(false);
  });

  it("a stand-in that says its plan before any version (as a runtime of an older release would): said something else", async () => {
    const got = await session({ plan: cleanPlan(), version: "" });
    expect(got.text).toBe(TEMPORARY);
    expect(got.log).toContain(`said something else before its version: it is not qmail-popup-runtime ${VERSION} or it is damaged`);
    expect(got.ran).toBe(false);
  });

  it("a front of the release before (no version in its introduction) beside this runtime: the runtime refuses it before the greeting", async () => {
    const old = spawnSync("git", ["-C", ROOT, "show", "659789a:src/front/qmail-popup.c"], { encoding: "latin1" });
    expect(old.status).toBe(0);
    writeFileSync(join(dir, "old.c"), old.stdout, "latin1");
    const built = spawnSync("gcc", ["-static", "-Os", "-std=c11", "-DVERSION=\"0.0.9\"", "-o", join(dir, "front-old"), join(dir, "old.c")]);
    expect(built.status, String(built.stderr)).toBe(0);
    const got = await greetingOf(pairDir(join(dir, "front-old"), { file: join(ROOT, "dist/qmail-popup-runtime") }));
    expect(got.text).toBe(TEMPORARY);
    expect(got.log).toContain(`qmail-popup: fatal: the front (qmail-popup) said no version first: it is not qmail-popup ${VERSION}: install qmail-popup and qmail-popup-runtime from one release\n`);
  });

  describe("qmail-popup --version", () => {
    it.each(variants().map((variant) => [variant.name, variant] as const))("%s: both versions, they match, exit 0", (_name, variant) => {
      const result = spawnSync(variant.command[0]!, ["--version"], { encoding: "latin1", env: {} });
      expect({ stdout: result.stdout, stderr: result.stderr, status: result.status }).toEqual({
        stdout: `qmail-popup ${VERSION}\nqmail-popup-runtime ${VERSION}\nthe versions match\n`,
        stderr: "",
        status: 0,
      });
    });

    it("a front 0.0.1 beside this runtime: both versions, they differ, the mismatch line on fd 2, exit 1", () => {
      const pair = pairDir(join(dir, "front-0.0.1"), { file: join(ROOT, "dist/qmail-popup-runtime") });
      const result = spawnSync(join(pair, "qmail-popup"), ["--version"], { encoding: "latin1", env: {} });
      expect({ stdout: result.stdout, stderr: result.stderr, status: result.status }).toEqual({
        stdout: `qmail-popup 0.0.1\nqmail-popup-runtime ${VERSION}\nthe versions differ\n`,
        stderr: `qmail-popup: version mismatch: this qmail-popup is 0.0.1, its qmail-popup-runtime is ${VERSION}: install both from one release\n`,
        status: 1,
      });
    });

    it("no runtime beside it, or one that is not a runtime (/usr/bin/true): unknown, exit 1, the cause on fd 2", () => {
      const alone = tempDir("qmail-popup-alone-");
      copyFileSync(FRONT, join(alone, "qmail-popup"));
      chmodSync(join(alone, "qmail-popup"), 0o755);
      const missing = spawnSync(join(alone, "qmail-popup"), ["--version"], { encoding: "latin1", env: {} });
      expect(missing.stdout).toBe(`qmail-popup ${VERSION}\nqmail-popup-runtime unknown\nthe versions differ\n`);
      expect(missing.stderr).toContain(`qmail-popup: unable to run ${alone}/qmail-popup-runtime: No such file or directory\n`);
      expect(missing.status).toBe(1);
      copyFileSync("/usr/bin/true", join(alone, "qmail-popup-runtime"));
      const wrong = spawnSync(join(alone, "qmail-popup"), ["--version"], { encoding: "latin1", env: {} });
      expect(wrong.stdout).toBe(`qmail-popup ${VERSION}\nqmail-popup-runtime unknown\nthe versions differ\n`);
      expect(wrong.stderr).toContain(`ended with status 0 before its version: it is not qmail-popup-runtime ${VERSION} or it is damaged`);
      expect(wrong.status).toBe(1);
    });
  });

  describe("usage errors: the client's line as from the C program, and a line on fd 2, runtime or not", () => {
    const USAGE = `-ERR usage: qmail-popup hostname subprogram [args...] (qmail-popup ${VERSION})\r\n`;
    it.each([
      [[], "no hostname and no subprogram"],
      [[HOST], "no subprogram"],
    ] as const)("%j", (args, why) => {
      const alone = tempDir("qmail-popup-usage-");
      copyFileSync(FRONT, join(alone, "qmail-popup"));
      chmodSync(join(alone, "qmail-popup"), 0o755);
      for (const front of [FRONT, join(alone, "qmail-popup")]) {
        const result = spawnSync(front, [...args], { encoding: "latin1", env: {}, input: "QUIT\r\n" });
        expect({ stdout: result.stdout, stderr: result.stderr, status: result.status }).toEqual({
          stdout: USAGE,
          stderr: `qmail-popup: usage: qmail-popup hostname subprogram [args...]: ${why}\n`,
          status: 1,
        });
      }
    });
  });
});

/** The pid of the runtime the front `front` started (its only child), once it is there. */
async function runtimeOf(front: number): Promise<number> {
  for (let tries = 0; tries < 400; tries++) {
    const children = childrenOf(front);
    if (children.length === 1) return children[0]!;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`the front ${front} started no runtime`);
}

describe("a wedged runtime is killed within 2 x POP3TIMEOUT + 10 seconds (POP3TIMEOUT=1: 12 s)", () => {
  it("the stand-in stopped (SIGSTOP), looping or blocked, each: [SYS/TEMP] after 12 s, the line on fd 2", async () => {
    const wedges = ["stop", "loop", "block"] as const;
    const got = await Promise.all(wedges.map((wedge) => session({ plan: item("alive"), wedge, env: { POP3TIMEOUT: "1" } }, "", 30_000)));
    for (const [i, outcome] of got.entries()) {
      expect(outcome.text, wedges[i]).toBe(TEMPORARY);
      expect(outcome.log).toContain("qmail-popup: the runtime said nothing for 12 seconds (2 x POP3TIMEOUT + 10): killed\n");
      expect(outcome.seconds, wedges[i]).toBeGreaterThanOrEqual(11.9);
      expect(outcome.seconds, wedges[i]).toBeLessThan(16);
      expect(outcome.ran).toBe(false);
    }
  }, 60_000);

  it.each(variants().map((variant) => [variant.name, variant] as const))(
    "%s: the real runtime stopped (SIGSTOP) after the greeting: [SYS/TEMP] after 12 s, the line on fd 2",
    async (_name, variant: Variant) => {
      const stopped: number[] = [];
      const server = await TcpServer.start({ variant, homes, env: { POP3TIMEOUT: "1" } });
      try {
        const client = await Client.connect(server.port);
        const front = await server.pidFor(client.localPort);
        await client.untilEndsWith("+OK\r\n");
        // In resident mode every worker of the resident (one serves the session), stopped while this test runs.
        stopped.push(...(variant.resident === undefined ? [await runtimeOf(front)] : childrenOf((await startResident(variant.resident)).pid!)));
        for (const runtime of stopped) process.kill(runtime, "SIGSTOP");
        const stoppedAt = Date.now();
        const text = await client.untilClosed(30_000);
        const seconds = (Date.now() - stoppedAt) / 1000;
        expect(text).toBe(`+OK\r\n${TEMPORARY}`);
        await server.endOf(front);
        expect(server.log).toContain(
          variant.resident === undefined
            ? "qmail-popup: the runtime said nothing for 12 seconds (2 x POP3TIMEOUT + 10): killed\n"
            : "qmail-popup: the resident's worker said nothing for 12 seconds (2 x POP3TIMEOUT + 10): the connection is closed\n",
        );
        expect(seconds).toBeGreaterThan(10);
        expect(seconds).toBeLessThan(16);
      } finally {
        for (const runtime of stopped.splice(0)) {
          try {
            process.kill(runtime, "SIGCONT");
          } catch {
            // Killed by its front: gone.
          }
        }
        await server.stop();
      }
    },
    60_000,
  );
});

describe("POP3TIMEOUT: one parse, in the front; the runtime takes the seconds from the introduction", () => {
  for (const variant of variants()) {
    it(`${variant.name}: POP3TIMEOUT=1 times out near 1 s`, async () => {
      const server = await TcpServer.start({ variant, homes, env: { POP3TIMEOUT: "1" } });
      try {
        const client = await Client.connect(server.port);
        await client.untilEndsWith("+OK\r\n");
        const greeted = Date.now();
        expect(await client.untilClosed()).toBe("+OK\r\n");
        const seconds = (Date.now() - greeted) / 1000;
        expect(seconds).toBeGreaterThan(0.8);
        expect(seconds).toBeLessThan(3);
      } finally {
        await server.stop();
      }
    });

    it.each(["4294968", "2147484", "9999999999", "0", "", "junk", "-1"])(
      `${variant.name}: POP3TIMEOUT=%j does not time out in 1.5 s, and the login works`,
      async (value) => {
        const server = await TcpServer.start({ variant, homes, env: { POP3TIMEOUT: value } });
        try {
          const client = await Client.connect(server.port);
          await client.untilEndsWith("+OK\r\n");
          const idle = await Promise.race([client.untilClosed(1500).then(() => "closed", () => "open")]);
          expect(idle).toBe("open");
          await client.send("USER alice\r\nPASS wonderland\r\n");
          await client.lines(3);
          expect(client.text).toMatch(/^\+OK\r\n\+OK \r\n\+OK/);
          client.destroy();
        } finally {
          await server.stop();
        }
      },
    );
  }
});
