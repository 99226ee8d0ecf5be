// The differential test: a table of scripted sessions, each run against
// every variant (the C front with each runtime behind it), each compared
// with what the spec (/work/shared/spec/qmail-popup.md) and the front
// (src/front/qmail-popup.c) say: the wire bytes, fd 2, the fd-5 log line,
// the exit status, and what the login program was started with: fd-3
// bytes, argv, environment, descriptors, limits, signal dispositions.
//
// differential-driver.py plays the launcher and the client: it starts the
// front with raw argv and environment bytes (names that are no shell
// identifier, non-UTF-8, twice, empty), the descriptors (the network a
// socket pair or two pipes, fds 2 and 5 pipes or closed, files, sslserver
// -n's three), dispositions and soft limits of the case, and sends the
// client's bytes all at once. The login program is differential-record,
// which writes down what it received, and the front's descriptors while
// it waits (the launcher's, which must come back as given). Bytes are
// strings of code points 0-255 (latin1) on both sides; `@PID` and `@TIME`
// in the expectations stand for the front's pid (from the driver) and the
// Unix time of the session (any second the session lasted); `@RECORD` for
// the file the recorder writes.

import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, test } from "vitest";
import { VERSION } from "../../src/version.ts";
import { ROOT, tempDir, variants, type Variant } from "./harness.ts";
import { startResident } from "../../scripts/lib/tcpserver.mjs";

const DRIVER = join(ROOT, "test/e2e/differential-driver.py");
const RECORDER = join(ROOT, "test/e2e/differential-record");

// --- the files the cases name -------------------------------------------------------

const FILES = tempDir("qmail-popup-differential-");
const THREE = join(FILES, "three");
const FOUR = join(FILES, "four");
const NINE = join(FILES, "nine");
const NOT_EXECUTABLE = join(FILES, "not-executable");
const A_DIRECTORY = join(FILES, "a-directory");
const BAD_INTERPRETER = join(FILES, "bad-interpreter");
/** No `#!`, the x bit set: the kernel says ENOEXEC; execvp(3) would run it through /bin/sh, which would accept. */
const NO_MAGIC = join(FILES, "no-magic");
/** A PATH directory holding `login`, not executable. */
const BIN = join(FILES, "bin");
/** A login program that starts under softlimit -m 2000000 (python and dash do not): see RECORD_LIMITS_C. */
const RECORD_LIMITS = join(FILES, "record-limits");

// Static and small, as the front: fd 3 to its end, then /proc/self/limits into argv[1].
const RECORD_LIMITS_C = `
#include <fcntl.h>
#include <unistd.h>
int main(int argc, char **argv)
{
  char buf[4096];
  ssize_t n;
  while ((n = read(3, buf, sizeof buf)) > 0) {}
  int in = open("/proc/self/limits", O_RDONLY);
  int out = argc > 1 ? open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644) : -1;
  if (in == -1 || out == -1) return 100;
  while ((n = read(in, buf, sizeof buf)) > 0)
    if (write(out, buf, (size_t)n) != n) return 100;
  return 0;
}
`;

function makeFiles(): void {
  writeFileSync(THREE, "three\n");
  writeFileSync(FOUR, "four\n");
  writeFileSync(NINE, "");
  writeFileSync(NOT_EXECUTABLE, "#!/bin/sh\nexit 0\n", { mode: 0o644 });
  mkdirSync(A_DIRECTORY);
  writeFileSync(BAD_INTERPRETER, "#!/nonexistent\nexit 0\n", { mode: 0o755 });
  writeFileSync(NO_MAGIC, "exit 0\n", { mode: 0o755 });
  mkdirSync(BIN);
  writeFileSync(join(BIN, "login"), "#!/bin/sh\nexit 0\n", { mode: 0o644 });
  const compiled = spawnSync("gcc", ["-static", "-Os", "-o", RECORD_LIMITS, "-x", "c", "-"], { input: RECORD_LIMITS_C });
  if (compiled.status !== 0) throw new Error(`gcc (make build-deps installs it): ${compiled.stderr}`);
  chmodSync(RECORD_LIMITS, 0o755);
}
beforeAll(makeFiles);

// --- the table ------------------------------------------------------------------------

interface Descriptor {
  readonly fd: number;
  /**
   * readlink of /proc/PID/fd/N, with the front's own named: `@SOCKET` its fds 0 and 1 (one socket),
   * `@IN` and `@OUT` its fds 0 and 1 where they are two pipes, `@ERR` its fd 2, `@LOG` its fd 5,
   * `@CTL`, `@TLSIN` and `@TLSOUT` its UCSPI-TLS fds 6, 7 and 8; `@PIPE` any other pipe.
   */
  readonly target: string;
  readonly mode: "r" | "w" | "rw";
  readonly nonblocking: boolean;
}

interface Case {
  readonly name: string;
  /** The front's arguments after its name: hostname, login program, its arguments. */
  readonly args: readonly string[];
  readonly env: readonly string[];
  readonly input: string;
  /** fds 0 and 1: one socket (default), or two pipes. */
  readonly network?: "socket" | "pipes";
  /** fd 2 a pipe (default) or closed. */
  readonly stderr?: boolean;
  /** fd 5 a pipe (default) or closed. */
  readonly log?: boolean;
  /** As sslserver -n: fds 6, 7, 8; on `Y`, sslserver's answer, then the client's input through "TLS". */
  readonly ucspiTls?: { readonly answer: string; readonly input: string };
  readonly descriptors?: readonly { fd: number; path: string; mode: "r" | "w" | "wn" }[];
  readonly nonblocking?: boolean;
  readonly limits?: Readonly<Record<string, number>>;
  readonly ignore?: readonly number[];
  readonly block?: readonly number[];
  readonly expect: {
    readonly wire: string;
    /** What the client read through "TLS" (fd 8), and what came on the control socket (fd 6). */
    readonly tlsWire?: string;
    readonly control?: string;
    /** fd 2, the operator's log; null where it is closed. */
    readonly operator: string | null;
    /** fd 5; null where it is closed. */
    readonly log: string | null;
    readonly status: string;
    /** What differential-record wrote; its environment is the front's, as given, in order, but where environ says. */
    readonly record?: {
      readonly argv: readonly string[];
      /** Where it is not the front's, as given. */
      readonly environ?: readonly string[];
      readonly fd3: string;
      readonly descriptors: readonly Descriptor[];
      /** The line the login program read from fd 0 (pop3d), else null. */
      readonly input: string | null;
      readonly signals?: { readonly SigIgn: string; readonly SigBlk: string };
      /** Soft limits, as /proc/PID/limits prints them; every limit is also compared with the front's. */
      readonly softLimits?: Readonly<Record<string, string>>;
    };
    /** What record-limits wrote: the soft limits it had. */
    readonly recordedSoftLimits?: Readonly<Record<string, string>>;
  };
}

/** More than the runtime reads from the front at once (64 KiB), one entry longer than that. */
const LARGE_ENVIRONMENT = ["BIG=" + "x".repeat(100000), ...Array.from({ length: 2000 }, (_, i) => `E${i}=${i}`)];
const LARGE_ARGUMENTS = Array.from({ length: 500 }, (_, i) => `a${i}`);
const TCP_ENV = ["PATH=/usr/bin:/bin", "TCPREMOTEIP=192.0.2.7", "TCPREMOTEHOST=client.example"];
const LOGIN = "USER alice\r\nPASS wonderland\r\n";
const FD3 = "alice\0wonderland\0<@PID.@TIME@mail.example.org>\0";
const ACCEPTED = "qmail-popup: pid @PID Accept::AUTH::User P:POP3 S:192.0.2.7:client.example ?= 'alice'\n";
const REJECTED = "qmail-popup: pid @PID Reject::AUTH::User P:POP3 S:192.0.2.7:client.example ?= 'alice'\n";
const FAILED = "+OK\r\n+OK \r\n-ERR [AUTH] authorization failed\r\n";
const TEMPORARY = "+OK\r\n+OK \r\n-ERR [SYS/TEMP] authorization failed\r\n";
const CRASHED = "+OK\r\n+OK \r\n-ERR [SYS/TEMP] aack, child crashed\r\n";
/** fds 0, 1 and 2: the network, blocking; fd 3: the credentials. */
const NETWORK_AND_CREDENTIALS: readonly Descriptor[] = [
  { fd: 0, target: "@SOCKET", mode: "rw", nonblocking: false },
  { fd: 1, target: "@SOCKET", mode: "rw", nonblocking: false },
  { fd: 2, target: "@SOCKET", mode: "rw", nonblocking: false },
  { fd: 3, target: "@PIPE", mode: "r", nonblocking: false },
];
const LOG_PIPE: Descriptor = { fd: 5, target: "@LOG", mode: "w", nonblocking: false };
const STANDARD_DESCRIPTORS = [...NETWORK_AND_CREDENTIALS, LOG_PIPE];
/** sslserver -n's: the control socket, the pipes of decrypted and to-be-encrypted bytes. */
const UCSPI_TLS_DESCRIPTORS: readonly Descriptor[] = [
  { fd: 6, target: "@CTL", mode: "rw", nonblocking: false },
  { fd: 7, target: "@TLSIN", mode: "r", nonblocking: false },
  { fd: 8, target: "@TLSOUT", mode: "w", nonblocking: false },
];

/** A login program recording what it got, then exiting or dying as action says. */
const recorder = (action: string, ...args: string[]) => [RECORDER, "@RECORD", action, ...args];
/** What the recorder sees as its argv: the kernel runs `#!/bin/sh` with the script's path first. */
const recorderArgv = (action: string, ...args: string[]) => ["/bin/sh", RECORDER, "@RECORD", action, ...args];

/**
 * USER/PASS to a recorder that ends as action says. operator: what the front
 * adds on fd 2 (the C program says nothing): a crashed or exit-111 login
 * program is not a wrong password, and the operator's log says which.
 */
function outcome(name: string, action: string, wire: string, log: string, status: string, operator = ""): Case {
  return {
    name,
    args: ["mail.example.org", ...recorder(action)],
    env: TCP_ENV,
    input: LOGIN,
    expect: {
      wire,
      operator,
      log,
      status,
      record: { argv: recorderArgv(action), fd3: FD3, descriptors: STANDARD_DESCRIPTORS, input: null },
    },
  };
}

/** USER/PASS to a login program that cannot be run: the reason on fd 2 only. */
function unrunnable(name: string, program: string, env: readonly string[], reason: string): Case {
  return {
    name,
    args: ["mail.example.org", program],
    env: [...env, "TCPREMOTEIP=192.0.2.7", "TCPREMOTEHOST=client.example"],
    input: LOGIN,
    expect: { wire: TEMPORARY, operator: `qmail-popup: unable to run ${program}: ${reason}\n`, log: REJECTED, status: "exit 1" },
  };
}

const CASES: readonly Case[] = [
  {
    name: "USER/PASS accepted: the login program says +OK and reads the QUIT pipelined behind PASS",
    args: ["mail.example.org", ...recorder("pop3d")],
    env: TCP_ENV,
    input: LOGIN + "QUIT\r\n",
    expect: {
      wire: "+OK\r\n+OK \r\n+OK pop3d\r\n",
      operator: "",
      log: ACCEPTED,
      status: "exit 0",
      record: { argv: recorderArgv("pop3d"), fd3: FD3, descriptors: STANDARD_DESCRIPTORS, input: "QUIT\r\n" },
    },
  },
  outcome("refused: exit 1", "exit=1", FAILED, REJECTED, "exit 1"),
  outcome("temporary: exit 111", "exit=111", TEMPORARY, REJECTED, "exit 1", `qmail-popup: pid @PID: ${RECORDER} exited 111: a temporary failure\n`),
  outcome("crash: SIGSEGV", "signal=SEGV", CRASHED, REJECTED, "exit 1", `qmail-popup: pid @PID: ${RECORDER} was killed by signal 11 (Segmentation fault)\n`),
  outcome("crash: SIGKILL", "signal=KILL", CRASHED, REJECTED, "exit 1", `qmail-popup: pid @PID: ${RECORDER} was killed by signal 9 (Killed)\n`),
  outcome("exit 130 failed, no crash", "exit=130", FAILED, REJECTED, "exit 1"),
  outcome("exit 141 failed, no crash", "exit=141", FAILED, REJECTED, "exit 1"),
  outcome("exit 255 failed, no crash", "exit=255", FAILED, REJECTED, "exit 1"),
  {
    name: "APOP (POP3AUTH=+apop), a non-UTF-8 hostname: the greeting's timestamp is fd 3's, byte for byte",
    args: ["h\xe9st", ...recorder("exit=0")],
    env: ["POP3AUTH=+apop", ...TCP_ENV],
    input: "APOP alice c4c9334bac560ecc979e58001b3e22fb\r\n",
    expect: {
      wire: "+OK <@PID.@TIME@h\xe9st>\r\n",
      operator: "",
      log: "qmail-popup: pid @PID Accept::AUTH::Apop P:POP3 S:192.0.2.7:client.example ?= 'alice'\n",
      status: "exit 0",
      record: {
        argv: recorderArgv("exit=0"),
        fd3: "alice\0c4c9334bac560ecc979e58001b3e22fb\0<@PID.@TIME@h\xe9st>\0",
        descriptors: STANDARD_DESCRIPTORS,
        input: null,
      },
    },
  },
  {
    name: "Latin-1 and invalid UTF-8 password bytes reach fd 3, a non-UTF-8 argument reaches argv",
    args: ["mail.example.org", ...recorder("exit=0", "M\xe4ildir")],
    env: TCP_ENV,
    input: "USER latin\r\nPASS p\xe4ssw\xf6rd\xc3(\xff\r\n",
    expect: {
      wire: "+OK\r\n+OK \r\n",
      operator: "",
      log: "qmail-popup: pid @PID Accept::AUTH::User P:POP3 S:192.0.2.7:client.example ?= 'latin'\n",
      status: "exit 0",
      record: {
        argv: recorderArgv("exit=0", "M\xe4ildir"),
        fd3: "latin\0p\xe4ssw\xf6rd\xc3(\xff\0<@PID.@TIME@mail.example.org>\0",
        descriptors: STANDARD_DESCRIPTORS,
        input: null,
      },
    },
  },
  {
    name: "a name with ', \\ and a Latin-1 byte: raw on fd 3, escaped \\xNN in the log",
    args: ["mail.example.org", ...recorder("exit=1")],
    env: TCP_ENV,
    input: "USER o'ne\\il\xe9\r\nPASS secret\r\n",
    expect: {
      wire: FAILED,
      operator: "",
      log: "qmail-popup: pid @PID Reject::AUTH::User P:POP3 S:192.0.2.7:client.example ?= 'o\\x27ne\\x5cil\\xe9'\n",
      status: "exit 1",
      record: {
        argv: recorderArgv("exit=1"),
        fd3: "o'ne\\il\xe9\0secret\0<@PID.@TIME@mail.example.org>\0",
        descriptors: STANDARD_DESCRIPTORS,
        input: null,
      },
    },
  },
  {
    // The log takes TCP6REMOTEIP (its ::ffff: dropped) and the first of two TCPREMOTEHOST, as getenv(3).
    name: "odd environment entries all reach the login program, in order; the log escapes TCPREMOTEHOST's bytes",
    args: ["mail.example.org", ...recorder("exit=0")],
    env: [
      "PATH=/usr/bin:/bin",
      "A-B=1",
      "a.b=2",
      "N\xe9=3",
      "V=\xff\xfe",
      "TCP6REMOTEIP=::ffff:192.0.2.9",
      "TCPREMOTEIP=192.0.2.7",
      "TCPREMOTEHOST=h\xf6st\n.example",
      "TCPREMOTEHOST=second.example",
      "=x",
      "NO-EQUALS-SIGN",
      "EMPTY=",
      "1X=a digit first",
      "SPACE IN NAME=1",
      "__proto__=x",
      "constructor=y",
    ],
    input: LOGIN,
    expect: {
      wire: "+OK\r\n+OK \r\n",
      operator: "",
      log: "qmail-popup: pid @PID Accept::AUTH::User P:POP3 S:192.0.2.9:h\\xf6st\\x0a.example ?= 'alice'\n",
      status: "exit 0",
      record: { argv: recorderArgv("exit=0"), fd3: FD3, descriptors: STANDARD_DESCRIPTORS, input: null },
    },
  },
  {
    name: "an empty environment stays empty: nothing added (no PATH, no PWD, nothing of a runtime's)",
    args: ["mail.example.org", ...recorder("exit=0")],
    env: [],
    input: LOGIN,
    expect: {
      wire: "+OK\r\n+OK \r\n",
      operator: "",
      log: "qmail-popup: pid @PID Accept::AUTH::User P:POP3 S:unknown:unknown ?= 'alice'\n",
      status: "exit 0",
      record: { argv: recorderArgv("exit=0"), fd3: FD3, descriptors: STANDARD_DESCRIPTORS, input: null },
    },
  },
  {
    name: "a large environment (2000 entries, one of 100000 bytes) and 500 arguments, all exactly",
    args: ["mail.example.org", ...recorder("exit=0", ...LARGE_ARGUMENTS)],
    env: [...TCP_ENV, ...LARGE_ENVIRONMENT],
    input: LOGIN,
    expect: {
      wire: "+OK\r\n+OK \r\n",
      operator: "",
      log: ACCEPTED,
      status: "exit 0",
      record: { argv: recorderArgv("exit=0", ...LARGE_ARGUMENTS), fd3: FD3, descriptors: STANDARD_DESCRIPTORS, input: null },
    },
  },
  {
    name: "inherited descriptors: 4 and 9 unchanged (9 still non-blocking), the front's fd 3 replaced by the credentials",
    args: ["mail.example.org", ...recorder("exit=0")],
    env: TCP_ENV,
    input: LOGIN,
    descriptors: [
      { fd: 3, path: THREE, mode: "r" },
      { fd: 4, path: FOUR, mode: "r" },
      { fd: 9, path: NINE, mode: "wn" },
    ],
    expect: {
      wire: "+OK\r\n+OK \r\n",
      operator: "",
      log: ACCEPTED,
      status: "exit 0",
      record: {
        argv: recorderArgv("exit=0"),
        fd3: FD3,
        descriptors: [
          ...NETWORK_AND_CREDENTIALS,
          { fd: 4, target: FOUR, mode: "r", nonblocking: false },
          LOG_PIPE,
          { fd: 9, target: NINE, mode: "w", nonblocking: true },
        ],
        input: null,
      },
    },
  },
  {
    name: "a launcher's non-blocking network: the login program's fds 0-2 are blocking",
    args: ["mail.example.org", ...recorder("pop3d")],
    env: TCP_ENV,
    input: LOGIN + "QUIT\r\n",
    nonblocking: true,
    expect: {
      wire: "+OK\r\n+OK \r\n+OK pop3d\r\n",
      operator: "",
      log: ACCEPTED,
      status: "exit 0",
      record: { argv: recorderArgv("pop3d"), fd3: FD3, descriptors: STANDARD_DESCRIPTORS, input: "QUIT\r\n" },
    },
  },
  {
    name: "a launcher's two pipes for fds 0 and 1: the login program reads the one, its fds 1 and 2 write the other",
    args: ["mail.example.org", ...recorder("pop3d")],
    env: TCP_ENV,
    input: LOGIN + "QUIT\r\n",
    network: "pipes",
    expect: {
      wire: "+OK\r\n+OK \r\n+OK pop3d\r\n",
      operator: "",
      log: ACCEPTED,
      status: "exit 0",
      record: {
        argv: recorderArgv("pop3d"),
        fd3: FD3,
        descriptors: [
          { fd: 0, target: "@IN", mode: "r", nonblocking: false },
          { fd: 1, target: "@OUT", mode: "w", nonblocking: false },
          { fd: 2, target: "@OUT", mode: "w", nonblocking: false },
          { fd: 3, target: "@PIPE", mode: "r", nonblocking: false },
          LOG_PIPE,
        ],
        input: "QUIT\r\n",
      },
    },
  },
  {
    name: "fd 2 closed: the login program's fd 2 is still the network",
    args: ["mail.example.org", ...recorder("exit=0")],
    env: TCP_ENV,
    input: LOGIN,
    stderr: false,
    expect: {
      wire: "+OK\r\n+OK \r\n",
      operator: null,
      log: ACCEPTED,
      status: "exit 0",
      record: { argv: recorderArgv("exit=0"), fd3: FD3, descriptors: STANDARD_DESCRIPTORS, input: null },
    },
  },
  {
    name: "fd 2 closed, the login program not found: the reply and the log line as ever, the reason nowhere",
    args: ["mail.example.org", "/nonexistent/login"],
    env: TCP_ENV,
    input: LOGIN,
    stderr: false,
    expect: { wire: TEMPORARY, operator: null, log: REJECTED, status: "exit 1" },
  },
  {
    // sslserver's answer names SSL_PROTOCOL, SSL_CIPHER and PATH: the SSL_* ones are set (SSL_CIPHER where
    // the first of the two stale ones stood, the other gone: one value, as setenv(3) leaves it; SSL_PROTOCOL
    // last), PATH is not. (No SSL_PROTOCOL before STLS: sslserver sets it only where TLS came first.)
    name: "STLS over UCSPI-TLS: the login program reads and writes the TLS pipes, gets the SSL_* variables, keeps fds 6-8",
    args: ["mail.example.org", ...recorder("pop3d")],
    env: [...TCP_ENV, "UCSPITLS=", "SSLCTLFD=6", "SSLREADFD=7", "SSLWRITEFD=8", "SSL_CIPHER=stale", "OTHER=1", "SSL_CIPHER=stale too"],
    input: "STLS\r\n",
    ucspiTls: { answer: "SSL_PROTOCOL=TLSv1.3\0SSL_CIPHER=TEST_CIPHER\0PATH=/evil\0\0", input: LOGIN + "QUIT\r\n" },
    expect: {
      wire: "+OK\r\n+OK starting TLS negotiation\r\n",
      tlsWire: "+OK \r\n+OK pop3d\r\n",
      control: "Y",
      operator: "",
      log: "qmail-popup: pid @PID Accept::AUTH::User P:POP3S S:192.0.2.7:client.example ?= 'alice'\n",
      status: "exit 0",
      record: {
        argv: recorderArgv("pop3d"),
        environ: [...TCP_ENV, "UCSPITLS=", "SSLCTLFD=6", "SSLREADFD=7", "SSLWRITEFD=8", "SSL_CIPHER=TEST_CIPHER", "OTHER=1", "SSL_PROTOCOL=TLSv1.3"],
        fd3: FD3,
        descriptors: [
          { fd: 0, target: "@TLSIN", mode: "r", nonblocking: false },
          { fd: 1, target: "@TLSOUT", mode: "w", nonblocking: false },
          { fd: 2, target: "@TLSOUT", mode: "w", nonblocking: false },
          { fd: 3, target: "@PIPE", mode: "r", nonblocking: false },
          LOG_PIPE,
          ...UCSPI_TLS_DESCRIPTORS,
        ],
        input: "QUIT\r\n",
      },
    },
  },
  {
    name: "fd 5 closed: no log line, nothing else changes",
    args: ["mail.example.org", ...recorder("pop3d")],
    env: TCP_ENV,
    input: LOGIN + "QUIT\r\n",
    log: false,
    expect: {
      wire: "+OK\r\n+OK \r\n+OK pop3d\r\n",
      operator: "",
      log: null,
      status: "exit 0",
      record: { argv: recorderArgv("pop3d"), fd3: FD3, descriptors: NETWORK_AND_CREDENTIALS, input: "QUIT\r\n" },
    },
  },
  {
    // softlimit -m 100000000 -o 64 -p 1000: too little for any runtime, which the front raises; the locked
    // memory soft limit stays at its hard one, as softlimit leaves it.
    name: "soft limits (softlimit -m 100000000 -o 64 -p 1000) reach the login program, not the runtime's raised ones",
    args: ["mail.example.org", ...recorder("exit=0")],
    env: TCP_ENV,
    input: LOGIN,
    limits: { AS: 100000000, DATA: 100000000, STACK: 100000000, MEMLOCK: 100000000, NOFILE: 64, NPROC: 1000 },
    expect: {
      wire: "+OK\r\n+OK \r\n",
      operator: "",
      log: ACCEPTED,
      status: "exit 0",
      record: {
        argv: recorderArgv("exit=0"),
        fd3: FD3,
        descriptors: STANDARD_DESCRIPTORS,
        input: null,
        softLimits: {
          "Max address space": "100000000",
          "Max data size": "100000000",
          "Max stack size": "100000000",
          "Max open files": "64",
          "Max processes": "1000",
        },
      },
    },
  },
  {
    name: "softlimit -m 2000000: greets, authenticates, and the login program runs under those limits",
    args: ["mail.example.org", RECORD_LIMITS, "@RECORD"],
    env: TCP_ENV,
    input: LOGIN,
    limits: { AS: 2000000, DATA: 2000000, STACK: 2000000, MEMLOCK: 2000000 },
    expect: {
      wire: "+OK\r\n+OK \r\n",
      operator: "",
      log: ACCEPTED,
      status: "exit 0",
      recordedSoftLimits: {
        "Max address space": "2000000",
        "Max data size": "2000000",
        "Max stack size": "2000000",
        "Max locked memory": "2000000",
      },
    },
  },
  {
    // SIGHUP ignored (nohup) and SIGUSR2 blocked pass on, as execve passes them; SIGPIPE is the default again.
    name: "a launcher ignoring SIGHUP and SIGPIPE and blocking SIGUSR2: the login program's SIGPIPE is not ignored",
    args: ["mail.example.org", ...recorder("exit=0")],
    env: TCP_ENV,
    input: LOGIN,
    ignore: [1, 13],
    block: [12],
    expect: {
      wire: "+OK\r\n+OK \r\n",
      operator: "",
      log: ACCEPTED,
      status: "exit 0",
      record: {
        argv: recorderArgv("exit=0"),
        fd3: FD3,
        descriptors: STANDARD_DESCRIPTORS,
        input: null,
        signals: { SigIgn: "0000000000000001", SigBlk: "0000000000000800" },
      },
    },
  },
  {
    // Every one Python can set but SIGCHLD (the next case): they stay ignored, SIGPIPE is the default again.
    name: "a launcher ignoring every signal: nothing on fd 2, the login program keeps them ignored but SIGPIPE",
    args: ["mail.example.org", ...recorder("exit=0")],
    env: TCP_ENV,
    input: LOGIN,
    ignore: range(1, 64).filter((n) => ![9, 17, 19, 32, 33].includes(n)),
    expect: {
      wire: "+OK\r\n+OK \r\n",
      operator: "",
      log: ACCEPTED,
      status: "exit 0",
      record: {
        argv: recorderArgv("exit=0"),
        fd3: FD3,
        descriptors: STANDARD_DESCRIPTORS,
        input: null,
        signals: { SigIgn: "fffffffe7ffaeeff", SigBlk: "0000000000000000" },
      },
    },
  },
  {
    // The C qmail-popup runs the login program and serves the session (its wait fails only after it).
    name: "a launcher ignoring SIGCHLD: the login program runs, accepted",
    args: ["mail.example.org", "true"],
    env: TCP_ENV,
    input: LOGIN,
    ignore: [17],
    expect: { wire: "+OK\r\n+OK \r\n", operator: "", log: ACCEPTED, status: "exit 0" },
  },
  unrunnable("not found", "/nonexistent/login", TCP_ENV.slice(0, 1), "No such file or directory"),
  unrunnable("not executable", NOT_EXECUTABLE, TCP_ENV.slice(0, 1), "Permission denied"),
  unrunnable("a directory", A_DIRECTORY, TCP_ENV.slice(0, 1), "Permission denied"),
  unrunnable("a script whose interpreter is missing (#!/nonexistent)", BAD_INTERPRETER, TCP_ENV.slice(0, 1), "No such file or directory"),
  unrunnable("no #! and not a binary (ENOEXEC): not run through /bin/sh", NO_MAGIC, TCP_ENV.slice(0, 1), "Exec format error"),
  unrunnable("a bare name found nowhere in PATH", "no-such-login", ["PATH=/usr/bin:/bin"], "No such file or directory"),
  unrunnable("a bare name found in PATH only as a file without x bit", "login", [`PATH=/nonexistent:${BIN}`], "Permission denied"),
  {
    name: "a bare name through PATH: true runs /usr/bin/true (no shell builtin), accepted",
    args: ["mail.example.org", "true"],
    env: TCP_ENV,
    input: LOGIN,
    expect: { wire: "+OK\r\n+OK \r\n", operator: "", log: ACCEPTED, status: "exit 0" },
  },
  {
    name: "PATH given twice: the first is the one, as getenv(3) and execvp(3) take it",
    args: ["mail.example.org", "true"],
    env: ["PATH=/usr/bin:/bin", "PATH=/nonexistent", ...TCP_ENV.slice(1)],
    input: LOGIN,
    expect: { wire: "+OK\r\n+OK \r\n", operator: "", log: ACCEPTED, status: "exit 0" },
  },
  unrunnable("an empty name: not found, as execvp(3) says", "", ["PATH=/usr/bin:/bin"], "No such file or directory"),
  {
    name: "a bare name without PATH: execvp's default path finds true",
    args: ["mail.example.org", "true"],
    env: TCP_ENV.slice(1),
    input: LOGIN,
    expect: { wire: "+OK\r\n+OK \r\n", operator: "", log: ACCEPTED, status: "exit 0" },
  },
  {
    name: "the recorder by its bare name, the second PATH entry",
    args: ["mail.example.org", "differential-record", "@RECORD", "exit=0"],
    env: [`PATH=/nonexistent:${ROOT}/test/e2e`, ...TCP_ENV.slice(1)],
    input: LOGIN,
    expect: {
      wire: "+OK\r\n+OK \r\n",
      operator: "",
      log: ACCEPTED,
      status: "exit 0",
      record: { argv: recorderArgv("exit=0"), fd3: FD3, descriptors: STANDARD_DESCRIPTORS, input: null },
    },
  },
  {
    name: "QUIT: +OK, exit 0, nothing run, no log line",
    args: ["mail.example.org", ...recorder("exit=0")],
    env: TCP_ENV,
    input: "QUIT\r\n",
    expect: { wire: "+OK\r\n+OK \r\n", operator: "", log: "", status: "exit 0" },
  },
  {
    name: "no login program named: the usage line, exit 1",
    args: ["mail.example.org"],
    env: TCP_ENV,
    input: "",
    expect: {
      wire: `-ERR usage: qmail-popup hostname subprogram [args...] (qmail-popup ${VERSION})\r\n`,
      // The client's line is the C program's; the operator's log says it too (issue #18).
      operator: "qmail-popup: usage: qmail-popup hostname subprogram [args...]: no subprogram\n",
      log: "",
      status: "exit 1",
    },
  },
];

// --- running a case -----------------------------------------------------------------

interface Session {
  readonly pid: number;
  readonly wire: string;
  readonly operator: string | null;
  readonly log: string | null;
  readonly control: string | null;
  readonly tlsWire: string | null;
  readonly status: { exit?: number; signal?: number };
  readonly timedOut: boolean;
  readonly timeBefore: number;
  readonly timeAfter: number;
  /** What readlink says of the front's fds 0, 1, 2, 5, and 6, 7, 8 (sslserver -n's). */
  readonly names: Readonly<{ input: string; output: string; stderr?: string; log?: string; control?: string; tlsInput?: string; tlsOutput?: string }>;
  /** What the front was started with: [soft, hard] by /proc/PID/limits name. */
  readonly limits: Readonly<Record<string, [string, string]>>;
}

interface Recorded {
  readonly fd3: string;
  readonly argv: string[];
  readonly environ: string[];
  readonly descriptors: { fd: number; target: string; flags: number }[];
  readonly frontDescriptors: { fd: number; target: string; flags: number }[];
  readonly limits: string;
  readonly signals: { SigIgn: string; SigBlk: string };
  readonly input: string | null;
}

/** A session should take well under a second; the driver kills it after this. */
const SESSION_SECONDS = 20;

function runDriver(front: string, c: Case, record: string): Promise<Session> {
  const fill = (s: string) => s.replaceAll("@RECORD", record);
  const input = {
    front,
    argv: [front, ...c.args.map(fill)],
    env: c.env,
    input: c.input,
    network: c.network ?? "socket",
    stderr: c.stderr ?? true,
    log: c.log ?? true,
    ucspiTls: c.ucspiTls,
    descriptors: c.descriptors ?? [],
    nonblocking: c.nonblocking ?? false,
    limits: c.limits ?? {},
    ignore: c.ignore ?? [],
    block: c.block ?? [],
    cwd: FILES,
    seconds: SESSION_SECONDS,
  };
  return new Promise((resolve, reject) => {
    const driver = spawn("/usr/bin/python3", ["-I", "-S", DRIVER], { env: { PATH: "/usr/bin:/bin" }, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    driver.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
    driver.stderr.setEncoding("utf8").on("data", (chunk: string) => (err += chunk));
    driver.on("error", reject);
    driver.on("close", (code) => (code === 0 ? resolve(JSON.parse(out) as Session) : reject(new Error(`driver exited ${code}: ${err}`))));
    driver.stdin.end(JSON.stringify(input));
  });
}

/** /proc/PID/limits as {name: [soft, hard]}: fixed columns. */
function parseLimits(text: string): Record<string, [string, string]> {
  const limits: Record<string, [string, string]> = {};
  for (const line of text.split("\n").slice(1)) {
    if (line.trim() === "") continue;
    limits[line.slice(0, 26).trim()] = [line.slice(26, 47).trim(), line.slice(47, 68).trim()];
  }
  return limits;
}

const O_NONBLOCK = 0o4000;
const ACCESS_MODES = ["r", "w", "rw"] as const;

/** The recorder's descriptors, their targets named as in the table. */
function describeDescriptors(session: Session, found: Recorded["descriptors"]): Descriptor[] {
  const { input, output, stderr, log, control, tlsInput, tlsOutput } = session.names;
  const name = (target: string) => {
    if (target === input && target === output) return "@SOCKET";
    if (target === input) return "@IN";
    if (target === output) return "@OUT";
    if (target === stderr) return "@ERR";
    if (target === log) return "@LOG";
    if (target === control) return "@CTL";
    if (target === tlsInput) return "@TLSIN";
    if (target === tlsOutput) return "@TLSOUT";
    return /^pipe:\[\d+\]$/.test(target) ? "@PIPE" : target;
  };
  return found.map(({ fd, target, flags }) => ({
    fd,
    target: name(target),
    mode: ACCESS_MODES[flags & 3] ?? "rw",
    nonblocking: (flags & O_NONBLOCK) !== 0,
  }));
}

/**
 * The front's descriptors while the login program runs: those its launcher gave it, each as given,
 * nothing of its own. The network is blocking again: the front makes the login program's fds 0 and 1
 * blocking, and they are the same open files as its own and the launcher's.
 */
function launcherDescriptors(c: Case): Descriptor[] {
  const pipes = c.network === "pipes";
  const given: Descriptor[] = [
    { fd: 0, target: pipes ? "@IN" : "@SOCKET", mode: pipes ? "r" : "rw", nonblocking: false },
    { fd: 1, target: pipes ? "@OUT" : "@SOCKET", mode: pipes ? "w" : "rw", nonblocking: false },
  ];
  if (c.stderr ?? true) given.push({ fd: 2, target: "@ERR", mode: "w", nonblocking: false });
  if (c.log ?? true) given.push(LOG_PIPE);
  if (c.ucspiTls !== undefined) given.push(...UCSPI_TLS_DESCRIPTORS);
  for (const d of c.descriptors ?? []) given.push({ fd: d.fd, target: d.path, mode: d.mode === "r" ? "r" : "w", nonblocking: d.mode === "wn" });
  return given.sort((a, b) => a.fd - b.fd);
}

function range(first: number, last: number): number[] {
  return Array.from({ length: last - first + 1 }, (_, i) => first + i);
}

/** In resident mode the run script's two variables, after the case's own: the login program gets them too. */
function inMode(variant: Variant, c: Case): Case {
  if (variant.env === undefined) return c;
  const added = Object.entries(variant.env).map(([name, value]) => `${name}=${value}`);
  // After the case's own entries, before those the plan adds (SSL_*), as the front appends those.
  const names = new Set(c.env.map((entry) => entry.split("=")[0]));
  const environ = c.expect.record?.environ ?? c.env;
  const own = environ.filter((entry) => names.has(entry.split("=")[0]));
  const record = c.expect.record && { ...c.expect.record, environ: [...own, ...added, ...environ.slice(own.length)] };
  return { ...c, env: [...c.env, ...added], expect: { ...c.expect, record } };
}

describe.each(variants({ resident: true }))("$name", (variant) => {
  const front = variant.command[0]!;
  beforeAll(async () => {
    if (variant.resident !== undefined) await startResident(variant.resident);
  });

  test.concurrent.for(CASES)("$name", async (original, { expect }) => {
    const c = inMode(variant, original);
    const record = join(FILES, `${variant.name}-${CASES.indexOf(original)}.json`);
    const session = await runDriver(front, c, record);
    const recorded = c.expect.record !== undefined && existsSync(record) ? (JSON.parse(readFileSync(record, "utf8")) as Recorded) : undefined;

    // `@TIME` is any second the session lasted: the one that makes the wire and fd 3 agree, if one does.
    const seconds = range(session.timeBefore, session.timeAfter);
    const filled = (time: number) => (s: string) => s.replaceAll("@PID", String(session.pid)).replaceAll("@TIME", String(time)).replaceAll("@RECORD", record);
    const time = seconds.find((t) => filled(t)(c.expect.wire) === session.wire && (recorded === undefined || filled(t)(c.expect.record!.fd3) === recorded.fd3));
    const fill = filled(time ?? session.timeBefore);

    const actual = {
      wire: session.wire,
      tlsWire: session.tlsWire ?? undefined,
      control: session.control ?? undefined,
      operator: session.operator,
      log: session.log,
      status: session.timedOut ? "timed out" : session.status.exit !== undefined ? `exit ${session.status.exit}` : `signal ${session.status.signal}`,
      record: recorded && {
        argv: recorded.argv,
        environ: recorded.environ,
        fd3: recorded.fd3,
        descriptors: describeDescriptors(session, recorded.descriptors),
        frontDescriptors: describeDescriptors(session, recorded.frontDescriptors),
        input: recorded.input,
        signals: recorded.signals,
        limits: parseLimits(recorded.limits),
      },
    };
    const expected = {
      wire: fill(c.expect.wire),
      tlsWire: c.expect.tlsWire,
      control: c.expect.control,
      operator: c.expect.operator === null ? null : fill(c.expect.operator),
      log: c.expect.log === null ? null : fill(c.expect.log),
      status: c.expect.status,
      record: c.expect.record && {
        argv: c.expect.record.argv.map(fill),
        // The front hands its environ to execve as it is (login_environment: a copy, changed only by the
        // plan's SSL_* or PROXY variables): the same entries in the same order. Another order would mean
        // something rebuilt it, as from a runtime's name-value object, which loses a name given twice.
        environ: c.expect.record.environ ?? c.env,
        fd3: fill(c.expect.record.fd3),
        descriptors: c.expect.record.descriptors,
        frontDescriptors: launcherDescriptors(c),
        input: c.expect.record.input,
        signals: c.expect.record.signals ?? { SigIgn: "0000000000000000", SigBlk: "0000000000000000" },
        limits: expect.objectContaining(withSoftLimits(session.limits, c.expect.record.softLimits)),
      },
    };
    expect(actual).toEqual(expected);

    if (c.expect.recordedSoftLimits !== undefined) {
      const limits = parseLimits(readFileSync(record, "latin1"));
      expect(limits).toEqual(expect.objectContaining(withSoftLimits(session.limits, c.expect.recordedSoftLimits)));
    }
  });
});

/** The front's limits, with the soft ones the table names: what the login program must have. */
function withSoftLimits(
  front: Readonly<Record<string, [string, string]>>,
  soft: Readonly<Record<string, string>> = {},
): Record<string, [string, string]> {
  const limits: Record<string, [string, string]> = { ...front };
  for (const [name, value] of Object.entries(soft)) limits[name] = [value, front[name]?.[1] ?? "?"];
  return limits;
}
