// make install / uninstall, the man page, the version check, the Debian
// package and the FreeBSD port skeleton (issue #3). `make test` builds what
// these use (make all and make dist-ci: dist/qmail-popup and
// dist/qmail-popup-runtime, the matrix, the .deb).
//
// qmail-popup is installed as two files side by side: bin/qmail-popup, the
// front (static C), and bin/qmail-popup-runtime, which the front starts.

import { spawn, spawnSync, type SpawnSyncReturns } from "node:child_process";
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { Client, ROOT, tempDir } from "./harness.ts";

const VERSION = /export const VERSION = "([^"]+)";/.exec(readFileSync(join(ROOT, "src/version.ts"), "utf8"))![1]!;
const DEB_ARCH = process.arch === "arm64" ? "arm64" : "amd64";
const DEB = join(ROOT, "dist", `qmail-popup_${VERSION}_${DEB_ARCH}.deb`);
/** What the .deb packages (the Makefile's DEB_FRONT_* and DEB_BINARY_*): amd64 takes the baseline runtime. */
const DEB_FRONT = join(ROOT, "dist", DEB_ARCH === "amd64" ? "qmail-popup-front-linux-x64" : "qmail-popup-front-linux-arm64");
const DEB_RUNTIME = join(ROOT, "dist", DEB_ARCH === "amd64" ? "qmail-popup-bun-linux-x64-baseline" : "qmail-popup-bun-linux-arm64");
const HOST_FRONT = join(ROOT, "dist/qmail-popup");
const HOST_RUNTIME = join(ROOT, "dist/qmail-popup-runtime");

function run(command: string, args: readonly string[], options: { input?: string; env?: Record<string, string>; cwd?: string } = {}): SpawnSyncReturns<string> {
  const result = spawnSync(command, args, {
    input: options.input ?? "",
    env: options.env ?? { PATH: "/usr/bin:/bin" },
    cwd: options.cwd ?? ROOT,
    encoding: "latin1",
    timeout: 120_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error) throw result.error;
  return result;
}

/** make with a clean environment: nothing of the test runner's (PREFIX, MAKEFLAGS) leaks in. */
function make(args: readonly string[], env: Record<string, string> = {}): SpawnSyncReturns<string> {
  return run("make", ["--no-print-directory", ...args], { env: { PATH: "/usr/bin:/bin", ...env } });
}

function same(a: string, b: string): boolean {
  return readFileSync(a).equals(readFileSync(b));
}

function mode(path: string): string {
  return (statSync(path).mode & 0o7777).toString(8);
}

function sha256(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** The front on a pipe, as tcpserver would start it (its runtime next to it): greets, answers QUIT. */
function greets(front: string, prefix: readonly string[] = []): void {
  const [command, ...args] = [...prefix, front];
  const result = run(command!, [...args, "mail.test", "/bin/true"], { input: "QUIT\r\n" });
  expect({ stdout: result.stdout, stderr: result.stderr, status: result.status }).toEqual({ stdout: "+OK\r\n+OK \r\n", stderr: "", status: 0 });
}

describe("make install", () => {
  it("installs bin/qmail-popup, bin/qmail-popup-runtime, bin/qmail-popup-logfile (755) and man/man8/qmail-popup.8 (644) under DESTDIR/var/qmail; the pair greets", () => {
    const destdir = tempDir("qmail-popup-install-");
    const result = make(["install", `DESTDIR=${destdir}`]);
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    // With DESTDIR, the account is not made here: it says what to run on the target host.
    expect(result.stdout).toContain(`installed under ${destdir}: on the host it is for, run make runtime-account as root (the account qmailpopup)\n`);
    const front = join(destdir, "var/qmail/bin/qmail-popup");
    const runtime = join(destdir, "var/qmail/bin/qmail-popup-runtime");
    const logfile = join(destdir, "var/qmail/bin/qmail-popup-logfile");
    const page = join(destdir, "var/qmail/man/man8/qmail-popup.8");
    expect([mode(front), mode(runtime), mode(logfile), mode(page)]).toEqual(["755", "755", "755", "644"]);
    expect(same(front, HOST_FRONT)).toBe(true);
    expect(same(runtime, HOST_RUNTIME)).toBe(true);
    expect(same(logfile, join(ROOT, "packaging/services/qmail-popup-logfile"))).toBe(true);
    expect(same(page, join(ROOT, "man/qmail-popup.8"))).toBe(true);
    // Nothing but the four files (no temporary left behind by the renames).
    expect(run("find", [destdir, "-type", "f"]).stdout.trim().split("\n").sort()).toEqual([front, runtime, logfile, page].sort());
    greets(front);
  });

  it("builds nothing: it only copies (no bun, esbuild, npm or node in its commands); every copy made before the first rename, the runtime renamed before the front", () => {
    const commands = make(["-n", "install", "DESTDIR=/nonexistent"]).stdout;
    expect(commands).toContain("sh packaging/install-files bin /nonexistent/var/qmail/bin dist/qmail-popup dist/qmail-popup-runtime packaging/services/qmail-popup-logfile\n");
    expect(commands).not.toMatch(/\b(bun|bunx|esbuild|npm|npx|node|deno|tsc)\b/);
    // With DESTDIR, no account is made on this host.
    expect(commands).not.toContain("qmailpopup >/dev/null");
    expect(make(["-n", "install"]).stdout).toContain("adduser --system --group --no-create-home --home /nonexistent --shell /usr/sbin/nologin qmailpopup");
    const script = readFileSync(join(ROOT, "packaging/install-files"), "latin1").split("\n");
    const at = (text: string) => script.findIndex((line) => line.includes(text));
    const copies = ['install -m 755 "$runtime"', 'install -m 755 "$front"', 'install -m 755 "$logfile"'].map(at);
    const renames = ['mv -f "$bin/.qmail-popup-runtime.new"', 'mv -f "$bin/.qmail-popup.new"'].map(at);
    expect([...copies, ...renames].every((line) => line > -1)).toBe(true);
    expect(Math.max(...copies)).toBeLessThan(Math.min(...renames));
    // A connection meanwhile finds the old front with the new runtime, never a front without one.
    expect(renames[0]).toBeLessThan(renames[1]!);
  });

  it("runs on a host without Node: node hidden, PATH=/usr/bin:/bin", () => {
    const destdir = tempDir("qmail-popup-install-nonode-");
    const script = `
      for dir in /usr/bin /bin; do [ -e "$dir/node" ] && { mount --bind /dev/null "$dir/node" || exit 97; }; done
      if command -v node >/dev/null; then echo "node still on PATH" >&2; exit 98; fi
      exec make --no-print-directory install DESTDIR="$1"`;
    const result = run("unshare", ["--mount", "--", "/bin/sh", "-c", script, "sh", destdir]);
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    greets(join(destdir, "var/qmail/bin/qmail-popup"));
  });

  it("QMAIL_POPUP_FRONT and QMAIL_POPUP_RUNTIME install other artifacts (the arm64 front, the FreeBSD runtime) unchanged", () => {
    const front = join(ROOT, "dist/qmail-popup-front-linux-arm64");
    const runtime = join(ROOT, "dist/qmail-popup-bun-freebsd-x64");
    expect(existsSync(front), "run make dist-ci").toBe(true);
    expect(existsSync(runtime), "run make dist-ci").toBe(true);
    const destdir = tempDir("qmail-popup-install-other-");
    const result = make(["install-bin", `DESTDIR=${destdir}`, "QMAIL_POPUP_FRONT=dist/qmail-popup-front-linux-arm64", "QMAIL_POPUP_RUNTIME=dist/qmail-popup-bun-freebsd-x64"]);
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    expect(same(join(destdir, "var/qmail/bin/qmail-popup"), front)).toBe(true);
    expect(same(join(destdir, "var/qmail/bin/qmail-popup-runtime"), runtime)).toBe(true);
  });

  for (const [variable, path] of [["QMAIL_POPUP_FRONT", "dist/no-such-front"], ["QMAIL_POPUP_RUNTIME", "dist/no-such-runtime"]] as const) {
    it(`a missing file (${variable}=${path}) is an error, and neither file is installed`, () => {
      const destdir = tempDir("qmail-popup-install-missing-");
      const result = make(["install", `DESTDIR=${destdir}`, `${variable}=${path}`]);
      expect(result.status).not.toBe(0);
      expect(result.stderr).toContain(`install-files: ${path} is missing: build it first (make), or give QMAIL_POPUP_FRONT= and QMAIL_POPUP_RUNTIME=\n`);
      expect(existsSync(join(destdir, "var/qmail/bin/qmail-popup"))).toBe(false);
      expect(existsSync(join(destdir, "var/qmail/bin/qmail-popup-runtime"))).toBe(false);
    });
  }

  it("honours PREFIX, BINDIR and MANDIR on the command line, but not PREFIX from the environment", () => {
    const destdir = tempDir("qmail-popup-install-prefix-");
    expect(make(["install", `DESTDIR=${destdir}`, "PREFIX=/opt/qmail"]).status).toBe(0);
    expect(existsSync(join(destdir, "opt/qmail/bin/qmail-popup"))).toBe(true);
    expect(existsSync(join(destdir, "opt/qmail/bin/qmail-popup-runtime"))).toBe(true);
    expect(existsSync(join(destdir, "opt/qmail/man/man8/qmail-popup.8"))).toBe(true);

    expect(make(["install", `DESTDIR=${destdir}`, "BINDIR=/usr/local/sbin", "MANDIR=/usr/local/share/man"]).status).toBe(0);
    expect(existsSync(join(destdir, "usr/local/sbin/qmail-popup"))).toBe(true);
    expect(existsSync(join(destdir, "usr/local/sbin/qmail-popup-runtime"))).toBe(true);
    expect(existsSync(join(destdir, "usr/local/share/man/man8/qmail-popup.8"))).toBe(true);
    greets(join(destdir, "usr/local/sbin/qmail-popup"));

    const fromEnvironment = tempDir("qmail-popup-install-envprefix-");
    expect(make(["install", `DESTDIR=${fromEnvironment}`], { PREFIX: "/should/not/be/used" }).status).toBe(0);
    expect(existsSync(join(fromEnvironment, "var/qmail/bin/qmail-popup"))).toBe(true);
    expect(existsSync(join(fromEnvironment, "var/qmail/bin/qmail-popup-runtime"))).toBe(true);
    expect(existsSync(join(fromEnvironment, "should"))).toBe(false);
  });

  it("replaces installed files by rename: a running copy keeps its file", () => {
    const destdir = tempDir("qmail-popup-install-replace-");
    expect(make(["install-bin", `DESTDIR=${destdir}`]).status).toBe(0);
    const front = join(destdir, "var/qmail/bin/qmail-popup");
    const runtime = join(destdir, "var/qmail/bin/qmail-popup-runtime");
    const before = [statSync(front).ino, statSync(runtime).ino];
    expect(make(["install-bin", `DESTDIR=${destdir}`]).status).toBe(0);
    expect(statSync(front).ino).not.toBe(before[0]);
    expect(statSync(runtime).ino).not.toBe(before[1]);
    greets(front);
  });

  it("make uninstall removes the four files", () => {
    const destdir = tempDir("qmail-popup-uninstall-");
    expect(make(["install", `DESTDIR=${destdir}`]).status).toBe(0);
    expect(make(["uninstall", `DESTDIR=${destdir}`]).status).toBe(0);
    expect(run("find", [destdir, "-type", "f"]).stdout).toBe("");
  });
});

/** A stand-in for qmail's own qmail-popup: it only says "original". */
const ORIGINAL = '#!/bin/sh\ncat >/dev/null\necho original\n';

function says(program: string): string {
  const result = run(program, ["mail.test", "/bin/true"], { input: "QUIT\r\n" });
  return result.stdout + result.stderr;
}

/** The files (hidden ones too) in dir, sorted. */
function listing(dir: string): string[] {
  return run("ls", ["-A1", dir]).stdout.split("\n").filter((name) => name !== "").sort();
}

describe("make install next to the administrator's own qmail-popup (issue #18)", () => {
  it("keeps it as qmail-popup.orig (a second install leaves that alone), and make uninstall puts it back", () => {
    const destdir = tempDir("qmail-popup-install-original-");
    const bin = join(destdir, "var/qmail/bin");
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, "qmail-popup"), ORIGINAL, { mode: 0o755 });
    expect(says(join(bin, "qmail-popup"))).toBe("original\n");

    const first = make(["install", `DESTDIR=${destdir}`]);
    expect(first.stderr).toBe("");
    expect(first.status).toBe(0);
    expect(first.stdout).toContain(`kept ${bin}/qmail-popup (not qmail-popup's) as ${bin}/qmail-popup.orig: make uninstall puts it back\n`);
    expect(listing(bin)).toEqual(["qmail-popup", "qmail-popup-logfile", "qmail-popup-runtime", "qmail-popup.orig"]);
    greets(join(bin, "qmail-popup"));
    expect(says(join(bin, "qmail-popup.orig"))).toBe("original\n");

    const second = make(["install", `DESTDIR=${destdir}`]);
    expect(second.status).toBe(0);
    expect(second.stdout).not.toContain("kept");
    expect(says(join(bin, "qmail-popup.orig"))).toBe("original\n");
    greets(join(bin, "qmail-popup"));

    const removed = make(["uninstall", `DESTDIR=${destdir}`]);
    expect(removed.stderr).toBe("");
    expect(removed.status).toBe(0);
    expect(removed.stdout).toContain(`put back ${bin}/qmail-popup (the one make install kept as qmail-popup.orig)\n`);
    expect(listing(bin)).toEqual(["qmail-popup"]);
    expect(says(join(bin, "qmail-popup"))).toBe("original\n");
    expect(run("find", [destdir, "-type", "f"]).stdout).toBe(`${bin}/qmail-popup\n`);
  });

  it("keeps qmail's own man page as qmail-popup.8.orig and puts it back", () => {
    const destdir = tempDir("qmail-popup-install-original-man-");
    const man8 = join(destdir, "var/qmail/man/man8");
    mkdirSync(man8, { recursive: true });
    const theirs = ".TH qmail-popup 8\n.SH NAME\nqmail-popup \\- read a POP username and password\n";
    writeFileSync(join(man8, "qmail-popup.8"), theirs);
    expect(make(["install", `DESTDIR=${destdir}`]).status).toBe(0);
    expect(same(join(man8, "qmail-popup.8"), join(ROOT, "man/qmail-popup.8"))).toBe(true);
    expect(readFileSync(join(man8, "qmail-popup.8.orig"), "latin1")).toBe(theirs);
    expect(make(["uninstall", `DESTDIR=${destdir}`]).status).toBe(0);
    expect(listing(man8)).toEqual(["qmail-popup.8"]);
    expect(readFileSync(join(man8, "qmail-popup.8"), "latin1")).toBe(theirs);
  });

  it("refuses to install over a qmail-popup not its own when qmail-popup.orig exists already, and changes nothing", () => {
    const destdir = tempDir("qmail-popup-install-two-originals-");
    const bin = join(destdir, "var/qmail/bin");
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, "qmail-popup"), ORIGINAL, { mode: 0o755 });
    writeFileSync(join(bin, "qmail-popup.orig"), ORIGINAL.replace("original", "older"), { mode: 0o755 });
    const result = make(["install-bin", `DESTDIR=${destdir}`]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain(`install-files: ${bin}/qmail-popup is not qmail-popup's and ${bin}/qmail-popup.orig exists: move one of them away first\n`);
    expect(listing(bin)).toEqual(["qmail-popup", "qmail-popup.orig"]);
    expect(says(join(bin, "qmail-popup"))).toBe("original\n");
  });

  it("make uninstall leaves a qmail-popup that is not its own", () => {
    const destdir = tempDir("qmail-popup-uninstall-theirs-");
    const bin = join(destdir, "var/qmail/bin");
    expect(make(["install-bin", `DESTDIR=${destdir}`]).status).toBe(0);
    // qmail reinstalled over ours meanwhile.
    writeFileSync(join(bin, "qmail-popup"), ORIGINAL, { mode: 0o755 });
    const result = make(["uninstall", `DESTDIR=${destdir}`]);
    expect(result.status).toBe(0);
    expect(result.stderr).toContain(`install-files: ${bin}/qmail-popup is not qmail-popup's: left as it is\n`);
    expect(listing(bin)).toEqual(["qmail-popup"]);
    expect(says(join(bin, "qmail-popup"))).toBe("original\n");
  });
});

/** The front compiled as make does, but saying it is version, into dir/qmail-popup. */
function frontOfVersion(version: string, dir: string): string {
  const front = join(dir, "qmail-popup");
  const built = run("gcc", ["-static", "-Os", "-std=c11", `-DVERSION="${version}"`, "-o", front, join(ROOT, "src/front/qmail-popup.c"), join(ROOT, "src/front/confine.c"), join(ROOT, "src/front/resident.c")]);
  expect(built.stderr).toBe("");
  expect(built.status).toBe(0);
  return front;
}

describe("make install refuses a front and a runtime that do not match (issue #18)", () => {
  it(`a front built as 0.0.9 with the ${VERSION} runtime is refused, nothing installed; the same front built as ${VERSION} is installed (the check can pass)`, () => {
    const older = frontOfVersion("0.0.9", tempDir("qmail-popup-front-009-"));
    const destdir = tempDir("qmail-popup-install-mismatch-");
    const refused = make(["install-bin", `DESTDIR=${destdir}`, `QMAIL_POPUP_FRONT=${older}`]);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain(`install-files: ${older} is qmail-popup 0.0.9 but dist/qmail-popup-runtime is qmail-popup ${VERSION}: install a front and a runtime from one release\n`);
    expect(run("find", [destdir, "-type", "f"]).stdout).toBe("");

    const matching = frontOfVersion(VERSION, tempDir("qmail-popup-front-same-"));
    const accepted = make(["install-bin", `DESTDIR=${destdir}`, `QMAIL_POPUP_FRONT=${matching}`]);
    expect(accepted.stderr).toBe("");
    expect(accepted.status).toBe(0);
    greets(join(destdir, "var/qmail/bin/qmail-popup"));
  });

  for (const [variable, other] of [["QMAIL_POPUP_RUNTIME", "/usr/bin/true"], ["QMAIL_POPUP_FRONT", "/usr/bin/true"]] as const) {
    it(`${variable}=${other} is refused, nothing installed`, () => {
      const destdir = tempDir("qmail-popup-install-true-");
      const result = make(["install", `DESTDIR=${destdir}`, `${variable}=${other}`]);
      expect(result.status).not.toBe(0);
      expect(result.stderr).toContain(
        variable === "QMAIL_POPUP_RUNTIME"
          ? `install-files: dist/qmail-popup is qmail-popup ${VERSION} but /usr/bin/true is not qmail-popup's runtime: install a front and a runtime from one release\n`
          : "install-files: /usr/bin/true does not carry one qmail-popup VERSION: it is not qmail-popup's front\n",
      );
      expect(run("find", [destdir, "-type", "f"]).stdout).toBe("");
    });
  }

  it("the arm64 front with the arm64 Node SEA runtime of the same release passes (the check reads any architecture's file)", () => {
    const destdir = tempDir("qmail-popup-install-cross-");
    const result = make(["install-bin", `DESTDIR=${destdir}`, "QMAIL_POPUP_FRONT=dist/qmail-popup-front-linux-arm64", "QMAIL_POPUP_RUNTIME=dist/qmail-popup-node-linux-arm64"]);
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
  });
});

describe("make install on a full disk (issue #18)", () => {
  it("fails, says why, keeps the installed pair working and leaves no hidden file behind", () => {
    const dir = tempDir("qmail-popup-install-full-");
    // Room for one pair, not for a second copy of the runtime beside it.
    const size = statSync(HOST_RUNTIME).size + statSync(HOST_FRONT).size + 8 * 1024 * 1024;
    expect(run("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir]).status).toBe(0);
    try {
      expect(make(["install-bin", `DESTDIR=${dir}`]).status).toBe(0);
      const bin = join(dir, "var/qmail/bin");
      const before = listing(bin).map((name) => [name, statSync(join(bin, name)).ino]);
      const result = make(["install-bin", `DESTDIR=${dir}`]);
      expect(result.status).not.toBe(0);
      expect(result.stderr).toContain("No space left on device");
      expect(result.stderr).toContain(`install-files: unable to copy the files into ${bin}: the installed files are as they were\n`);
      expect(listing(bin).map((name) => [name, statSync(join(bin, name)).ino])).toEqual(before);
      expect(listing(bin)).toEqual(["qmail-popup", "qmail-popup-logfile", "qmail-popup-runtime"]);
      greets(join(bin, "qmail-popup"));
    } finally {
      run("umount", ["-l", dir]);
    }
  });
});

/**
 * Runs script as root in a mount namespace where /etc, /usr and /var are
 * overlays whose changes live in a tmpfs that goes with the namespace: dpkg's
 * database, the diversions, /etc/passwd and /var/qmail seen there are copies,
 * so that neither dpkg -i nor make install can touch this host's own (a real
 * /var/qmail/bin/qmail-popup is hidden behind the stand-in, not replaced).
 * The account qmailpopup is removed there first, to see who makes it.
 */
function inScratchRoot(script: string, args: readonly string[]): SpawnSyncReturns<string> {
  const prelude = `set -eu
scratch=$SCRATCH
mount -t tmpfs tmpfs "$scratch"
for d in etc usr var; do
  mkdir "$scratch/$d.upper" "$scratch/$d.work"
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$scratch/$d.upper,workdir=$scratch/$d.work" "/$d"
done
if getent passwd qmailpopup >/dev/null; then userdel -f qmailpopup 2>/dev/null; fi
if getent group qmailpopup >/dev/null; then groupdel qmailpopup; fi
mkdir -p /var/qmail/bin
printf '${ORIGINAL.replace(/\n/g, "\\n")}' > /var/qmail/bin/qmail-popup
chmod 755 /var/qmail/bin/qmail-popup
# What the test reads: the files in /var/qmail/bin, what qmail-popup and qmail-popup.orig say, the diversion, the account.
state() {
  echo "== $1"
  echo "files: $(ls -A /var/qmail/bin 2>/dev/null | tr '\n' ' ')"
  for f in qmail-popup qmail-popup.orig; do
    [ ! -e /var/qmail/bin/$f ] || echo "$f: $(printf 'QUIT\r\n' | /var/qmail/bin/$f mail.test /bin/true 2>&1 | tr -d '\r' | tr '\n' ' ')"
  done
  echo "diversion: $(dpkg-divert --list /var/qmail/bin/qmail-popup)"
  echo "account: $(getent passwd qmailpopup || true)"
}
`;
  return run("unshare", ["--mount", "--propagation", "private", "--", "/bin/sh", "-c", prelude + script, "sh", ...args], {
    env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C", SCRATCH: tempDir("qmail-popup-scratch-root-") },
  });
}

/** state()'s blocks, by name. */
function states(stdout: string): Record<string, string[]> {
  const blocks: Record<string, string[]> = {};
  let current: string[] = [];
  for (const line of stdout.split("\n")) {
    if (line.startsWith("== ")) blocks[line.slice(3)] = current = [];
    else if (/^(files|qmail-popup|qmail-popup\.orig|diversion|account): /.test(line)) current.push(line.trimEnd());
  }
  return blocks;
}

const ACCOUNT = /^account: qmailpopup:x:\d+:\d+::\/nonexistent:\/usr\/sbin\/nologin$/;

describe("make install and make uninstall on this host's /var/qmail, in a scratch root (issue #18)", () => {
  it("make install makes the account, keeps the original as qmail-popup.orig; make uninstall puts it back", () => {
    const result = inScratchRoot(
      `state before
make --no-print-directory -C "$1" install >/dev/null
state installed
make --no-print-directory -C "$1" uninstall >/dev/null
state uninstalled
`,
      [ROOT],
    );
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    const blocks = states(result.stdout);
    expect(blocks.before).toEqual(["files: qmail-popup", "qmail-popup: original", "diversion:", "account:"]);
    expect(blocks.installed!.slice(0, 4)).toEqual([
      "files: qmail-popup qmail-popup-logfile qmail-popup-runtime qmail-popup.orig",
      "qmail-popup: +OK +OK",
      "qmail-popup.orig: original",
      "diversion:",
    ]);
    expect(blocks.installed![4]).toMatch(ACCOUNT);
    expect(blocks.uninstalled!.slice(0, 3)).toEqual(["files: qmail-popup", "qmail-popup: original", "diversion:"]);
    // The account stays.
    expect(blocks.uninstalled![3]).toMatch(ACCOUNT);
  }, 120_000);
});

/** The Debian packages a make target would install: the lists in its apt_install loops (make -n). */
function packagesOf(target: string): string[] {
  const commands = make(["-n", target]).stdout;
  return [...commands.matchAll(/for p in ([^;]*);/g)].flatMap((match) => match[1]!.trim().split(/\s+/)).sort();
}

describe("make demo installs only what the demo uses (issue #18)", () => {
  it("make demo: this host's C compiler and musl, tcpserver and python3; make test: those and the rest", () => {
    expect([...new Set(packagesOf("demo"))].sort()).toEqual(["gcc", "libc6-dev", `musl-dev:${DEB_ARCH}`, "python3", "ucspi-tcp"]);
    const test = new Set(packagesOf("test"));
    for (const name of ["gcc", "libc6-dev", `musl-dev:${DEB_ARCH}`, "python3", "ucspi-tcp", "gcc-aarch64-linux-gnu", "musl-dev:arm64", "xinetd", "socat", "stunnel4", "daemontools", "systemd", "haproxy", "fail2ban", "lintian", "qemu-user"])
      expect(test.has(name), name).toBe(true);
  });

  it("scripts/demo serves on PORT", async () => {
    const port = 20000 + (process.pid % 20000);
    const demo = spawn("sh", ["scripts/demo"], { cwd: ROOT, env: { PATH: "/usr/bin:/bin", PORT: String(port) }, stdio: ["ignore", "pipe", "pipe"], detached: true });
    let said = "";
    demo.stdout!.on("data", (chunk: Buffer) => (said += chunk.toString("latin1")));
    demo.stderr!.on("data", (chunk: Buffer) => (said += chunk.toString("latin1")));
    try {
      await new Promise<void>((done, fail) => {
        const check = () => (said.includes("tcpserver: status: 0/") ? done() : undefined);
        demo.stderr!.on("data", check);
        demo.on("exit", () => fail(new Error(`scripts/demo ended: ${said}`)));
      });
      expect(said).toContain(`qmail-popup demo on 127.0.0.1:${port}`);
      const client = await Client.connect(port);
      await client.send("USER alice\r\nPASS wonderland\r\nSTAT\r\nQUIT\r\n");
      expect(await client.untilClosed()).toBe("+OK\r\n+OK \r\n+OK \r\n+OK 2 250\r\n+OK \r\n");
    } finally {
      process.kill(-demo.pid!, "SIGTERM");
    }
  }, 60_000);
});

describe("the man page", () => {
  it("groff -man -ww -z on the installed page prints nothing", () => {
    const destdir = tempDir("qmail-popup-install-man-");
    expect(make(["install-man", `DESTDIR=${destdir}`]).status).toBe(0);
    const result = run("groff", ["-man", "-ww", "-z", join(destdir, "var/qmail/man/man8/qmail-popup.8")]);
    expect(result.stdout + result.stderr).toBe("");
    expect(result.status).toBe(0);
  });

  it("groff -ww does complain about a broken page (the check can fail)", () => {
    const dir = tempDir("qmail-popup-man-broken-");
    writeFileSync(join(dir, "broken.8"), '.TH broken 8\n.SH NAME\n.XX undefined macro\n\\*[nosuchstring]\n');
    const result = run("groff", ["-man", "-ww", "-z", join(dir, "broken.8")]);
    expect(result.stdout + result.stderr).not.toBe("");
  });

  it(`its .TH line carries the version, qmail-popup ${VERSION}`, () => {
    const th = readFileSync(join(ROOT, "man/qmail-popup.8"), "utf8").split("\n").find((line) => line.startsWith(".TH "));
    expect(th).toMatch(new RegExp(`^\\.TH qmail-popup 8 "[^"]+" "qmail-popup ${VERSION.replace(/\./g, "\\.")}"`));
  });
});

describe("scripts/check-versions", () => {
  it("src/version.ts, package.json, the man page and the packaging agree", () => {
    const result = run("sh", ["scripts/check-versions"]);
    expect(result.stderr).toBe("");
    expect(result.stdout).toContain(`${VERSION} everywhere`);
    expect(result.status).toBe(0);
  });

  it("finds a man page that disagrees (it can fail)", () => {
    const copy = tempDir("qmail-popup-versions-");
    for (const path of ["src/version.ts", "package.json", "man/qmail-popup.8", "packaging/debian/changelog", "packaging/freebsd/Makefile", "scripts/runtimes.lock"]) {
      mkdirSync(join(copy, path, ".."), { recursive: true });
      cpSync(join(ROOT, path), join(copy, path));
    }
    const page = join(copy, "man/qmail-popup.8");
    writeFileSync(page, readFileSync(page, "utf8").replace(`"qmail-popup ${VERSION}"`, '"qmail-popup 9.9.9"'));
    const result = run("sh", [join(ROOT, "scripts/check-versions")], { env: { PATH: "/usr/bin:/bin", QMAIL_POPUP_ROOT: copy } });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("man/qmail-popup.8 (.TH) says '9.9.9'");
  });
});

/**
 * The limits `softlimit -m 2000000` sets (data, stack, locked memory and
 * address space), set by python3 (the tests need no daemontools), then the
 * program on a pipe with QUIT.
 */
function underSoftlimit(program: string): SpawnSyncReturns<string> {
  const script = `import os, resource, sys
for limit in (resource.RLIMIT_DATA, resource.RLIMIT_STACK, resource.RLIMIT_MEMLOCK, resource.RLIMIT_AS):
    resource.setrlimit(limit, (2000000, resource.getrlimit(limit)[1]))
os.execv(sys.argv[1], sys.argv[1:])`;
  return run("python3", ["-c", script, program, "mail.test", "/bin/true"], { input: "QUIT\r\n" });
}

/** The overrides the package ships, as lintian names them: "tag [path]" (comments left out). */
const OVERRIDES = readFileSync(join(ROOT, "packaging/debian/lintian-overrides"), "utf8")
  .split("\n")
  .filter((line) => line.startsWith("qmail-popup: "))
  .map((line) => line.slice("qmail-popup: ".length));

/** What the front says on fd 2 where the runtime's account is missing (src/front/confine.c). */
const NO_ACCOUNT_WARNING =
  "qmail-popup: warning: no account qmailpopup in /etc/passwd and no QMAIL_POPUP_UID: the runtime runs as uid and gid 65534, shared with other daemons;" +
  " create the account (make runtime-account) or set QMAIL_POPUP_UID and QMAIL_POPUP_GID";

describe(`the Debian package, dist/qmail-popup_${VERSION}_${DEB_ARCH}.deb`, () => {
  it("exists (make dist-ci builds it)", () => {
    expect(existsSync(DEB), "run make deb").toBe(true);
  });

  it("has the control fields of this version and architecture", () => {
    const field = (name: string) => run("dpkg-deb", ["-f", DEB, name]).stdout.trim();
    expect(field("Package")).toBe("qmail-popup");
    expect(field("Version")).toBe(VERSION);
    expect(field("Architecture")).toBe(DEB_ARCH);
    expect(field("Depends")).toMatch(/^libc6 \(>= 2\.\d+\), adduser$/);
    expect(field("Section")).toBe("mail");
    expect(field("Description")).toContain("SASL");
  });

  it("holds root-owned files with the right modes, the front and its runtime side by side", () => {
    const listing = run("dpkg-deb", ["-c", DEB]).stdout;
    const files = listing.split("\n").filter((line) => line.startsWith("-")).map((line) => line.replace(/ +\d+ \d{4}-\d\d-\d\d \d\d:\d\d /, " "));
    expect(files.sort()).toEqual(
      [
        "-rwxr-xr-x root/root ./var/qmail/bin/qmail-popup",
        "-rwxr-xr-x root/root ./var/qmail/bin/qmail-popup-runtime",
        "-rwxr-xr-x root/root ./var/qmail/bin/qmail-popup-logfile",
        "-rw-r--r-- root/root ./usr/share/doc/qmail-popup/examples/README",
        "-rwxr-xr-x root/root ./usr/share/doc/qmail-popup/examples/daemontools/qmail-pop3d/log/run",
        "-rwxr-xr-x root/root ./usr/share/doc/qmail-popup/examples/daemontools/qmail-pop3d/run",
        "-rwxr-xr-x root/root ./usr/share/doc/qmail-popup/examples/daemontools/qmail-popup-resident/log/run",
        "-rwxr-xr-x root/root ./usr/share/doc/qmail-popup/examples/daemontools/qmail-popup-resident/run",
        "-rw-r--r-- root/root ./usr/share/doc/qmail-popup/examples/systemd/qmail-popup-resident.service",
        "-rw-r--r-- root/root ./usr/share/doc/qmail-popup/examples/fail2ban/filter.d/qmail-popup.conf",
        "-rw-r--r-- root/root ./usr/share/doc/qmail-popup/examples/fail2ban/jail.d/qmail-popup.conf",
        "-rw-r--r-- root/root ./usr/share/doc/qmail-popup/examples/inetd/inetd.conf",
        "-rwxr-xr-x root/root ./usr/share/doc/qmail-popup/examples/qmail-popup-logfile",
        "-rw-r--r-- root/root ./usr/share/doc/qmail-popup/examples/stunnel/qmail-pop3s.conf",
        "-rw-r--r-- root/root ./usr/share/doc/qmail-popup/examples/systemd/qmail-pop3d.socket",
        "-rw-r--r-- root/root ./usr/share/doc/qmail-popup/examples/systemd/qmail-pop3d@.service",
        "-rw-r--r-- root/root ./usr/share/doc/qmail-popup/examples/xinetd/qmail-pop3d",
        "-rw-r--r-- root/root ./usr/share/man/man8/qmail-popup.8.gz",
        "-rw-r--r-- root/root ./usr/share/doc/qmail-popup/copyright",
        "-rw-r--r-- root/root ./usr/share/doc/qmail-popup/changelog.gz",
        "-rw-r--r-- root/root ./usr/share/lintian/overrides/qmail-popup",
      ].sort(),
    );
  });

  it("installs into a scratch root (dpkg -x): the release's front and runtime as they are, the pair greets, the man page is this one", () => {
    const root = tempDir("qmail-popup-deb-root-");
    const result = run("dpkg", ["-x", DEB, root]);
    expect(result.status).toBe(0);
    expect(same(join(root, "var/qmail/bin/qmail-popup"), DEB_FRONT)).toBe(true);
    expect(same(join(root, "var/qmail/bin/qmail-popup-runtime"), DEB_RUNTIME)).toBe(true);
    greets(join(root, "var/qmail/bin/qmail-popup"));
    const page = gunzipSync(readFileSync(join(root, "usr/share/man/man8/qmail-popup.8.gz")));
    expect(page.equals(readFileSync(join(ROOT, "man/qmail-popup.8")))).toBe(true);
  });

  it("dpkg -i diverts the administrator's qmail-popup to qmail-popup.orig and makes the account; a reinstall keeps both; dpkg -r and dpkg -P put the original back and keep the account (scratch root)", () => {
    const result = inScratchRoot(
      `state before
dpkg -i "$1" >/dev/null
state installed
dpkg -i "$1" >/dev/null
state reinstalled
dpkg -r qmail-popup >/dev/null
state removed
dpkg -i "$1" >/dev/null
dpkg -P qmail-popup >/dev/null
state purged
rm /var/qmail/bin/qmail-popup
dpkg -i "$1" >/dev/null
state "installed with no original"
dpkg -r qmail-popup >/dev/null
state "removed with no original"
`,
      [DEB],
    );
    // dpkg -r says it cannot remove /var/qmail/bin while qmail-popup is back in it.
    expect(result.stderr.replace(/dpkg: warning: while removing qmail-popup, directory '\/var\/qmail\/bin' not empty so not removed\n/g, "")).toBe("");
    expect(result.status).toBe(0);
    const blocks = states(result.stdout);
    const diverted = "diversion: diversion of /var/qmail/bin/qmail-popup to /var/qmail/bin/qmail-popup.orig by qmail-popup";
    const ours = ["files: qmail-popup qmail-popup-logfile qmail-popup-runtime qmail-popup.orig", "qmail-popup: +OK +OK", "qmail-popup.orig: original", diverted];
    const original = ["files: qmail-popup", "qmail-popup: original", "diversion:"];
    expect(blocks.before).toEqual([...original, "account:"]);
    expect(blocks.installed!.slice(0, 4)).toEqual(ours);
    expect(blocks.installed![4]).toMatch(ACCOUNT);
    expect(blocks.reinstalled!.slice(0, 4)).toEqual(ours);
    expect(blocks.removed!.slice(0, 3)).toEqual(original);
    expect(blocks.removed![3]).toMatch(ACCOUNT);
    expect(blocks.purged!.slice(0, 3)).toEqual(original);
    expect(blocks.purged![3]).toMatch(ACCOUNT);
    expect(blocks["installed with no original"]!.slice(0, 3)).toEqual([
      "files: qmail-popup qmail-popup-logfile qmail-popup-runtime",
      "qmail-popup: +OK +OK",
      diverted,
    ]);
    expect(blocks["removed with no original"]!.slice(0, 2)).toEqual(["files:", "diversion:"]);
  }, 300_000);

  it("an upgrade from a package without maintainer scripts (as 0.1.0 was first built) diverts nothing of its own away: the new pair greets, dpkg -r leaves nothing (scratch root)", () => {
    const work = tempDir("qmail-popup-deb-old-");
    expect(run("dpkg-deb", ["-R", DEB, join(work, "tree")]).status).toBe(0);
    for (const script of ["preinst", "postinst", "postrm"]) rmSync(join(work, "tree/DEBIAN", script));
    const old = join(work, "old.deb");
    const built = run("dpkg-deb", ["-Zxz", "-z0", "-b", join(work, "tree"), old]);
    expect(built.status, built.stderr).toBe(0);
    const result = inScratchRoot(
      `rm /var/qmail/bin/qmail-popup
dpkg -i "$1" >/dev/null
state old
dpkg -i "$2" >/dev/null
state upgraded
dpkg -r qmail-popup >/dev/null
state removed
`,
      [old, DEB],
    );
    expect(result.stderr.replace(/.*Ignoring request to rename file '\/var\/qmail\/bin\/qmail-popup' owned by diverting package 'qmail-popup'\n/, "")).toBe("");
    expect(result.status).toBe(0);
    const blocks = states(result.stdout);
    // The old package made no account: the front says so on fd 2, and serves all the same.
    expect(blocks.old!.slice(0, 3)).toEqual([
      "files: qmail-popup qmail-popup-logfile qmail-popup-runtime",
      `qmail-popup: ${NO_ACCOUNT_WARNING} +OK +OK`,
      "diversion:",
    ]);
    expect(blocks.upgraded!.slice(0, 3)).toEqual([
      "files: qmail-popup qmail-popup-logfile qmail-popup-runtime",
      "qmail-popup: +OK +OK",
      "diversion: diversion of /var/qmail/bin/qmail-popup to /var/qmail/bin/qmail-popup.orig by qmail-popup",
    ]);
    expect(blocks.removed!.slice(0, 2)).toEqual(["files:", "diversion:"]);
  }, 300_000);

  it("dpkg -i refuses, changing nothing, where make install's qmail-popup.orig is beside a qmail-popup (scratch root)", () => {
    const result = inScratchRoot(
      `cp /var/qmail/bin/qmail-popup /var/qmail/bin/qmail-popup.orig
if dpkg -i "$1" >/dev/null 2>&1; then echo "dpkg -i succeeded"; fi
state refused
`,
      [DEB],
    );
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    expect(states(result.stdout).refused!.slice(0, 4)).toEqual(["files: qmail-popup qmail-popup.orig", "qmail-popup: original", "qmail-popup.orig: original", "diversion:"]);
    expect(result.stdout).not.toContain("dpkg -i succeeded");
  }, 300_000);

  // Why the front is static (and lintian's statically-linked-binary is overridden).
  it("its front starts under softlimit -m 2000000 and greets; the same front linked dynamically does not start (it can fail)", () => {
    const root = tempDir("qmail-popup-deb-softlimit-");
    expect(run("dpkg", ["-x", DEB, root]).status).toBe(0);
    const packaged = underSoftlimit(join(root, "var/qmail/bin/qmail-popup"));
    expect({ stdout: packaged.stdout, stderr: packaged.stderr, status: packaged.status }).toEqual({ stdout: "+OK\r\n+OK \r\n", stderr: "", status: 0 });

    const dynamic = tempDir("qmail-popup-dynamic-front-");
    const built = run("gcc", ["-Os", "-std=c11", `-DVERSION="${VERSION}"`, "-o", join(dynamic, "qmail-popup"), join(ROOT, "src/front/qmail-popup.c"), join(ROOT, "src/front/confine.c"), join(ROOT, "src/front/resident.c")]);
    expect(built.stderr).toBe("");
    expect(built.status).toBe(0);
    copyFileSync(join(root, "var/qmail/bin/qmail-popup-runtime"), join(dynamic, "qmail-popup-runtime"));
    greets(join(dynamic, "qmail-popup"));
    const refused = underSoftlimit(join(dynamic, "qmail-popup"));
    expect(refused.stdout).toBe("");
    expect(refused.stderr).toMatch(/error while loading shared libraries: libc\.so\.6: failed to map segment from shared object\n$/);
    expect(refused.status).toBe(127);
  });

  it("passes lintian with no error, every override used, and only Bun's two hardening warnings", () => {
    const result = run("lintian", ["--pedantic", "--display-info", "--show-overrides", DEB], { env: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8" } });
    const lines = (result.stdout + result.stderr).split("\n").filter((line) => /^[EWIO]: /.test(line));
    const errors = lines.filter((line) => line.startsWith("E: "));
    expect(errors, lines.join("\n")).toEqual([]);
    // The warnings left, documented in packaging/debian/README: Bun's runtime is
    // neither PIE nor linked with RELRO. A mismatched override would be one more.
    const warnings = lines.filter((line) => line.startsWith("W: ")).map((line) => line.replace(/^W: qmail-popup: /, ""));
    expect(warnings.sort()).toEqual(["hardening-no-pie [var/qmail/bin/qmail-popup-runtime]", "hardening-no-relro [var/qmail/bin/qmail-popup-runtime]"]);
    const overridden = lines.filter((line) => line.startsWith("O: ")).map((line) => line.replace(/^O: qmail-popup: /, ""));
    expect(overridden.sort()).toEqual([...OVERRIDES].sort());
    expect(lines.filter((line) => line.includes("unused-override"))).toEqual([]);
  }, 120_000);
});

// The port cannot be built or tested here (no FreeBSD); this checks what
// `make freebsd-port` writes: the skeleton and a distinfo for its distfiles.
describe("the FreeBSD port skeleton (make freebsd-port)", () => {
  it("ships the front's source as a distfile: dist/qmail-popup.c, with the runtimes and the man page in distinfo", () => {
    const result = make(["freebsd-port"]);
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    const port = join(ROOT, "dist/freebsd-port");
    // One file, as the port compiles it: qmail-popup.c with confine.h and resident.h in place of their #includes, then confine.c and resident.c.
    const source = (name: string) => readFileSync(join(ROOT, "src/front", name), "latin1");
    const include = (header: string) => `#include "${header}"\n`;
    const folded =
      source("qmail-popup.c").replace(include("confine.h"), source("confine.h")).replace(include("resident.h"), source("resident.h")) +
      source("confine.c").replace(include("confine.h"), "").replace("#define _GNU_SOURCE\n", "") +
      source("resident.c").replace(include("confine.h"), "").replace(include("resident.h"), "").replace("#define _GNU_SOURCE\n", "");
    expect(readFileSync(join(ROOT, "dist/qmail-popup.c"), "latin1") === folded, "dist/qmail-popup.c is src/front's three files in one").toBe(true);
    const timestamp = readFileSync(join(port, "distinfo"), "latin1").split("\n")[0];
    expect(timestamp).toMatch(/^TIMESTAMP = \d+$/);
    const entries = ["qmail-popup-bun-freebsd-arm64", "qmail-popup-bun-freebsd-x64", "qmail-popup.8", "qmail-popup.c"].flatMap((file) => {
      const path = join(ROOT, "dist", file);
      return [`SHA256 (qmail-popup-${VERSION}/${file}) = ${sha256(path)}`, `SIZE (qmail-popup-${VERSION}/${file}) = ${statSync(path).size}`];
    });
    expect(readFileSync(join(port, "distinfo"), "latin1")).toBe([timestamp, ...entries, ""].join("\n"));
    for (const file of ["Makefile", "pkg-descr", "pkg-plist"]) expect(same(join(port, file), join(ROOT, "packaging/freebsd", file))).toBe(true);
  });

  it("installs bin/qmail-popup, bin/qmail-popup-runtime and the man page; fetches exactly the distfiles in distinfo", () => {
    expect(readFileSync(join(ROOT, "packaging/freebsd/pkg-plist"), "latin1")).toBe("bin/qmail-popup\nbin/qmail-popup-runtime\nman/man8/qmail-popup.8.gz\n");
    const makefile = readFileSync(join(ROOT, "packaging/freebsd/Makefile"), "latin1");
    const distfiles = [...makefile.matchAll(/^DISTFILES(?:_amd64|_aarch64)?=\t+(.*)$/gm)].flatMap((match) => match[1]!.split(/\s+/));
    expect(distfiles.sort()).toEqual(["qmail-popup-bun-freebsd-arm64", "qmail-popup-bun-freebsd-x64", "qmail-popup.8", "qmail-popup.c"]);
  });

  // Linux, not FreeBSD: this shows only that the command is whole and builds a
  // static front from the distfile; what FreeBSD's cc and libc make of it is untested.
  it("its do-build command, run here with gcc for FreeBSD's cc, builds a static front that greets next to a runtime", () => {
    const makefile = readFileSync(join(ROOT, "packaging/freebsd/Makefile"), "latin1");
    const recipe = /^do-build:\n((?:\t.*\n)+)/m.exec(makefile)![1]!.replace(/\\\n\t*/g, " ").trim();
    const work = tempDir("qmail-popup-port-build-");
    const distdir = join(work, "distfiles");
    mkdirSync(join(distdir, `qmail-popup-${VERSION}`), { recursive: true });
    expect(make(["freebsd-port"]).status).toBe(0);
    copyFileSync(join(ROOT, "dist/qmail-popup.c"), join(distdir, `qmail-popup-${VERSION}`, "qmail-popup.c"));
    const variables: Record<string, string> = { CC: "gcc", CFLAGS: "-O2 -pipe", WRKSRC: work, DISTDIR: distdir, DIST_SUBDIR: `qmail-popup-${VERSION}`, DISTVERSION: VERSION };
    const command = recipe.replace(/\$\{(\w+)\}/g, (_, name: string) => {
      expect(variables, `the recipe uses \${${name}}`).toHaveProperty(name);
      return variables[name]!;
    });
    const built = run("/bin/sh", ["-c", command]);
    expect(built.stderr).toBe("");
    expect(built.status).toBe(0);
    const front = join(work, "qmail-popup");
    expect(run("file", ["-b", front]).stdout).toMatch(/, statically linked,/);
    expect(run("/bin/sh", ["-c", 'strings -a "$1" | grep -Fx "$2"', "sh", front, `qmail-popup ${VERSION}`]).stdout).toBe(`qmail-popup ${VERSION}\n`);
    copyFileSync(HOST_RUNTIME, join(work, "qmail-popup-runtime"));
    greets(front);
  });
});
