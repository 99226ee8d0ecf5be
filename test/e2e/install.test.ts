// make install / uninstall, the man page, the version check and the Debian
// package (issue #3). `make test` builds what these use (make dist-ci:
// dist/qmail-popup, dist/qmail-popup-bun-freebsd-x64 and the .deb).

import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { ROOT, tempDir } from "./harness.ts";

const VERSION = /export const VERSION = "([^"]+)";/.exec(readFileSync(join(ROOT, "src/version.ts"), "utf8"))![1]!;
const DEB_ARCH = process.arch === "arm64" ? "arm64" : "amd64";
const DEB = join(ROOT, "dist", `qmail-popup_${VERSION}_${DEB_ARCH}.deb`);
const HOST_BINARY = join(ROOT, "dist/qmail-popup");
const FREEBSD_BINARY = join(ROOT, "dist/qmail-popup-bun-freebsd-x64");

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

/** qmail-popup on a pipe, as tcpserver would start it: greets, answers QUIT. */
function greets(binary: string): void {
  const result = run(binary, ["mail.test", "/bin/true"], { input: "QUIT\r\n" });
  expect(result.stderr).toBe("");
  expect(result.stdout).toBe("+OK\r\n+OK \r\n");
  expect(result.status).toBe(0);
}

describe("make install", () => {
  it("installs bin/qmail-popup (755) and man/man8/qmail-popup.8 (644) under DESTDIR/var/qmail; the binary greets", () => {
    const destdir = tempDir("qmail-popup-install-");
    const result = make(["install", `DESTDIR=${destdir}`]);
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    const binary = join(destdir, "var/qmail/bin/qmail-popup");
    const page = join(destdir, "var/qmail/man/man8/qmail-popup.8");
    expect(mode(binary)).toBe("755");
    expect(mode(page)).toBe("644");
    expect(same(binary, HOST_BINARY)).toBe(true);
    expect(same(page, join(ROOT, "man/qmail-popup.8"))).toBe(true);
    // Nothing but the two files (no temporary left behind by the rename).
    expect(run("find", [destdir, "-type", "f"]).stdout.trim().split("\n").sort()).toEqual([binary, page].sort());
    greets(binary);
  });

  it("builds nothing: it only copies (no bun, esbuild, npm or node in its commands)", () => {
    const commands = make(["-n", "install", "DESTDIR=/nonexistent"]).stdout;
    expect(commands).toContain("install -m 755 dist/qmail-popup");
    expect(commands).not.toMatch(/\b(bun|bunx|esbuild|npm|npx|node|deno|tsc)\b/);
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

  it("QMAIL_POPUP_BINARY installs another artifact (the FreeBSD one) unchanged", () => {
    expect(existsSync(FREEBSD_BINARY), "run make dist-ci").toBe(true);
    const destdir = tempDir("qmail-popup-install-freebsd-");
    const result = make(["install-bin", `DESTDIR=${destdir}`, "QMAIL_POPUP_BINARY=dist/qmail-popup-bun-freebsd-x64"]);
    expect(result.status).toBe(0);
    expect(same(join(destdir, "var/qmail/bin/qmail-popup"), FREEBSD_BINARY)).toBe(true);
  });

  it("a missing binary is an error, not an empty install", () => {
    const destdir = tempDir("qmail-popup-install-missing-");
    const result = make(["install", `DESTDIR=${destdir}`, "QMAIL_POPUP_BINARY=dist/no-such-binary"]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain("dist/no-such-binary is missing");
    expect(existsSync(join(destdir, "var/qmail/bin/qmail-popup"))).toBe(false);
  });

  it("honours PREFIX, BINDIR and MANDIR on the command line, but not PREFIX from the environment", () => {
    const destdir = tempDir("qmail-popup-install-prefix-");
    expect(make(["install", `DESTDIR=${destdir}`, "PREFIX=/opt/qmail"]).status).toBe(0);
    expect(existsSync(join(destdir, "opt/qmail/bin/qmail-popup"))).toBe(true);
    expect(existsSync(join(destdir, "opt/qmail/man/man8/qmail-popup.8"))).toBe(true);

    expect(make(["install", `DESTDIR=${destdir}`, "BINDIR=/usr/local/sbin", "MANDIR=/usr/local/share/man"]).status).toBe(0);
    expect(existsSync(join(destdir, "usr/local/sbin/qmail-popup"))).toBe(true);
    expect(existsSync(join(destdir, "usr/local/share/man/man8/qmail-popup.8"))).toBe(true);

    const fromEnvironment = tempDir("qmail-popup-install-envprefix-");
    expect(make(["install", `DESTDIR=${fromEnvironment}`], { PREFIX: "/should/not/be/used" }).status).toBe(0);
    expect(existsSync(join(fromEnvironment, "var/qmail/bin/qmail-popup"))).toBe(true);
    expect(existsSync(join(fromEnvironment, "should"))).toBe(false);
  });

  it("replaces an installed binary by rename: a running copy keeps its file", () => {
    const destdir = tempDir("qmail-popup-install-replace-");
    expect(make(["install-bin", `DESTDIR=${destdir}`]).status).toBe(0);
    const binary = join(destdir, "var/qmail/bin/qmail-popup");
    const before = statSync(binary).ino;
    expect(make(["install-bin", `DESTDIR=${destdir}`]).status).toBe(0);
    expect(statSync(binary).ino).not.toBe(before);
    greets(binary);
  });

  it("make uninstall removes both files", () => {
    const destdir = tempDir("qmail-popup-uninstall-");
    expect(make(["install", `DESTDIR=${destdir}`]).status).toBe(0);
    expect(make(["uninstall", `DESTDIR=${destdir}`]).status).toBe(0);
    expect(existsSync(join(destdir, "var/qmail/bin/qmail-popup"))).toBe(false);
    expect(existsSync(join(destdir, "var/qmail/man/man8/qmail-popup.8"))).toBe(false);
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

describe(`the Debian package, dist/qmail-popup_${VERSION}_${DEB_ARCH}.deb`, () => {
  it("exists (make dist-ci builds it)", () => {
    expect(existsSync(DEB), "run make deb").toBe(true);
  });

  it.skipIf(!existsSync(DEB))("has the control fields of this version and architecture", () => {
    const field = (name: string) => run("dpkg-deb", ["-f", DEB, name]).stdout.trim();
    expect(field("Package")).toBe("qmail-popup");
    expect(field("Version")).toBe(VERSION);
    expect(field("Architecture")).toBe(DEB_ARCH);
    expect(field("Depends")).toMatch(/^libc6 \(>= 2\.\d+\)$/);
    expect(field("Section")).toBe("mail");
  });

  it.skipIf(!existsSync(DEB))("holds root-owned files with the right modes", () => {
    const listing = run("dpkg-deb", ["-c", DEB]).stdout;
    expect(listing).toMatch(/^-rwxr-xr-x root\/root .* \.\/var\/qmail\/bin\/qmail-popup$/m);
    expect(listing).toMatch(/^-rw-r--r-- root\/root .* \.\/usr\/share\/man\/man8\/qmail-popup\.8\.gz$/m);
    expect(listing).toMatch(/^-rw-r--r-- root\/root .* \.\/usr\/share\/doc\/qmail-popup\/copyright$/m);
    expect(listing).toMatch(/^-rw-r--r-- root\/root .* \.\/usr\/share\/doc\/qmail-popup\/changelog\.gz$/m);
  });

  it.skipIf(!existsSync(DEB))("installs into a scratch root (dpkg -x), where the binary greets and the man page is this one", () => {
    const root = tempDir("qmail-popup-deb-root-");
    const result = run("dpkg", ["-x", DEB, root]);
    expect(result.status).toBe(0);
    greets(join(root, "var/qmail/bin/qmail-popup"));
    const page = gunzipSync(readFileSync(join(root, "usr/share/man/man8/qmail-popup.8.gz")));
    expect(page.equals(readFileSync(join(ROOT, "man/qmail-popup.8")))).toBe(true);
  });

  it.skipIf(!existsSync(DEB))("passes lintian with no error", () => {
    const result = run("lintian", ["--pedantic", "--display-info", DEB], { env: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8" } });
    const lines = (result.stdout + result.stderr).split("\n").filter((line) => /^[EWI]: /.test(line));
    const errors = lines.filter((line) => line.startsWith("E: "));
    expect(errors, lines.join("\n")).toEqual([]);
    // The warnings left, documented in packaging/debian/README: Bun's runtime is
    // neither PIE nor linked with RELRO.
    const warnings = lines.filter((line) => line.startsWith("W: ")).map((line) => line.replace(/^W: qmail-popup: /, ""));
    expect(warnings.sort()).toEqual(["hardening-no-pie [var/qmail/bin/qmail-popup]", "hardening-no-relro [var/qmail/bin/qmail-popup]"]);
  }, 120_000);
});
