// make install / uninstall, the man page, the version check, the Debian
// package and the FreeBSD port skeleton (issue #3). `make test` builds what
// these use (make all and make dist-ci: dist/qmail-popup and
// dist/qmail-popup-runtime, the matrix, the .deb).
//
// qmail-popup is installed as two files side by side: bin/qmail-popup, the
// front (static C), and bin/qmail-popup-runtime, which the front starts.

import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { ROOT, tempDir } from "./harness.ts";

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
  it("installs bin/qmail-popup and bin/qmail-popup-runtime (755) and man/man8/qmail-popup.8 (644) under DESTDIR/var/qmail; the pair greets", () => {
    const destdir = tempDir("qmail-popup-install-");
    const result = make(["install", `DESTDIR=${destdir}`]);
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    const front = join(destdir, "var/qmail/bin/qmail-popup");
    const runtime = join(destdir, "var/qmail/bin/qmail-popup-runtime");
    const page = join(destdir, "var/qmail/man/man8/qmail-popup.8");
    expect([mode(front), mode(runtime), mode(page)]).toEqual(["755", "755", "644"]);
    expect(same(front, HOST_FRONT)).toBe(true);
    expect(same(runtime, HOST_RUNTIME)).toBe(true);
    expect(same(page, join(ROOT, "man/qmail-popup.8"))).toBe(true);
    // Nothing but the three files (no temporary left behind by the renames).
    expect(run("find", [destdir, "-type", "f"]).stdout.trim().split("\n").sort()).toEqual([front, runtime, page].sort());
    greets(front);
  });

  it("builds nothing: it only copies (no bun, esbuild, npm or node in its commands), the runtime first", () => {
    const commands = make(["-n", "install", "DESTDIR=/nonexistent"]).stdout.split("\n");
    const bin = "/nonexistent/var/qmail/bin";
    const runtimeRenamed = commands.indexOf(`mv -f ${bin}/.qmail-popup-runtime.new ${bin}/qmail-popup-runtime`);
    const frontInstalled = commands.indexOf(`install -m 755 dist/qmail-popup ${bin}/.qmail-popup.new`);
    expect(commands).toContain(`install -m 755 dist/qmail-popup-runtime ${bin}/.qmail-popup-runtime.new`);
    expect(commands).toContain(`mv -f ${bin}/.qmail-popup.new ${bin}/qmail-popup`);
    // A connection meanwhile finds the old front with the new runtime, never a front without one.
    expect(runtimeRenamed).toBeGreaterThan(-1);
    expect(frontInstalled).toBeGreaterThan(runtimeRenamed);
    expect(commands.join("\n")).not.toMatch(/\b(bun|bunx|esbuild|npm|npx|node|deno|tsc)\b/);
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
      expect(result.stderr).toContain(`${path} is missing: build it first (make), or give QMAIL_POPUP_FRONT= and QMAIL_POPUP_RUNTIME=\n`);
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

  it("make uninstall removes the three files", () => {
    const destdir = tempDir("qmail-popup-uninstall-");
    expect(make(["install", `DESTDIR=${destdir}`]).status).toBe(0);
    expect(make(["uninstall", `DESTDIR=${destdir}`]).status).toBe(0);
    expect(run("find", [destdir, "-type", "f"]).stdout).toBe("");
  });
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

describe(`the Debian package, dist/qmail-popup_${VERSION}_${DEB_ARCH}.deb`, () => {
  it("exists (make dist-ci builds it)", () => {
    expect(existsSync(DEB), "run make deb").toBe(true);
  });

  it("has the control fields of this version and architecture", () => {
    const field = (name: string) => run("dpkg-deb", ["-f", DEB, name]).stdout.trim();
    expect(field("Package")).toBe("qmail-popup");
    expect(field("Version")).toBe(VERSION);
    expect(field("Architecture")).toBe(DEB_ARCH);
    expect(field("Depends")).toMatch(/^libc6 \(>= 2\.\d+\)$/);
    expect(field("Section")).toBe("mail");
  });

  it("holds root-owned files with the right modes, the front and its runtime side by side", () => {
    const listing = run("dpkg-deb", ["-c", DEB]).stdout;
    const files = listing.split("\n").filter((line) => line.startsWith("-")).map((line) => line.replace(/ +\d+ \d{4}-\d\d-\d\d \d\d:\d\d /, " "));
    expect(files.sort()).toEqual(
      [
        "-rwxr-xr-x root/root ./var/qmail/bin/qmail-popup",
        "-rwxr-xr-x root/root ./var/qmail/bin/qmail-popup-runtime",
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

  // Why the front is static (and lintian's statically-linked-binary is overridden).
  it("its front starts under softlimit -m 2000000 and greets; the same front linked dynamically does not start (it can fail)", () => {
    const root = tempDir("qmail-popup-deb-softlimit-");
    expect(run("dpkg", ["-x", DEB, root]).status).toBe(0);
    const packaged = underSoftlimit(join(root, "var/qmail/bin/qmail-popup"));
    expect({ stdout: packaged.stdout, stderr: packaged.stderr, status: packaged.status }).toEqual({ stdout: "+OK\r\n+OK \r\n", stderr: "", status: 0 });

    const dynamic = tempDir("qmail-popup-dynamic-front-");
    const built = run("gcc", ["-Os", "-std=c11", `-DVERSION="${VERSION}"`, "-o", join(dynamic, "qmail-popup"), join(ROOT, "src/front/qmail-popup.c"), join(ROOT, "src/front/confine.c")]);
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
    // One file, as the port compiles it: qmail-popup.c with confine.h in place of its #include, then confine.c.
    const source = (name: string) => readFileSync(join(ROOT, "src/front", name), "latin1");
    const include = '#include "confine.h"\n';
    const folded = source("qmail-popup.c").replace(include, source("confine.h")) + source("confine.c").replace(include, "").replace("#define _GNU_SOURCE\n", "");
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
