// @ts-check
// scripts/bench.mjs: what runs under tcpserver, and from where.

import { spawnSync } from "node:child_process";
import { chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, openSync, readSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { arch } from "node:os";
import { basename, dirname, join, relative, resolve } from "node:path";
import { FRONT_VARIANTS } from "../lib/tcpserver.mjs";
import { DIST, FIXTURE_SRC, HOSTNAME, OUT_DIR, ROOT, RUN_DIR, commandOutput, config, which } from "./config.mjs";

/**
 * @typedef {object} Variant
 * @property {string} id
 * @property {string} label
 * @property {"floor" | "hello" | "popup"} kind  floor: greets and exits, ended by a half-close;
 *   hello: greets, answers one read (QUIT), no session; popup: a qmail-popup, sessions too
 * @property {string[]} argv  what tcpserver runs (after prepare(), the copies in run/)
 * @property {string} [front]  the front it runs behind: a copy goes next to the runtime
 * @property {string} [runtime]  the program behind the front (qmail-popup-runtime)
 * @property {string} [runs]  the file that runs (for a script runtime, the script's bundle)
 * @property {string} [interpreter]  what runs that file, if not the file itself
 * @property {"exec" | "read"} [paged]  BENCH_PAGE_CACHE: how the runtime comes into the page cache
 * @property {string} [resident]  resident mode: the socket of the resident (started beside tcpserver) the front hands connections to
 * @property {Record<string, string>} [env]  tcpserver's environment besides PATH
 * @property {string[]} [holds]  the floor: what runs in its place for the memory phase (it exits at once: no idle connection)
 */

/**
 * The fixtures' checkpassword and post-login stand-in: C (compiled here) or
 * sh; and the floor's idle stand-in (floor-hold.c), C whenever there is a cc.
 */
export function fixtures() {
  const dir = join(OUT_DIR, "fixtures");
  const cc = which("cc") ?? which("gcc");
  /** @param {string} name  @param {string[]} [flags] */
  const compiled = (name, flags = ["-O2"]) => {
    mkdirSync(dir, { recursive: true });
    const made = spawnSync(/** @type {string} */ (cc), [...flags, "-Wall", "-o", join(dir, name), join(FIXTURE_SRC, `${name}.c`)], { encoding: "utf8" });
    if (made.status !== 0) throw new Error(`cc ${name}.c failed:\n${made.stderr}`);
    return join(dir, name);
  };
  // Static, as small as a C program gets: no dynamic loader, no shared libc pages to dirty.
  const floorHold = cc === undefined ? undefined : compiled("floor-hold", ["-static", "-Os"]);
  if (config.fixtures === "c") {
    if (cc !== undefined) return { kind: "c", checkpassword: compiled("checkpassword"), pop3d: compiled("pop3d"), floorHold };
    process.stderr.write("bench: no cc: using the sh fixtures\n");
  } else if (config.fixtures !== "sh") throw new Error(`BENCH_FIXTURES=${config.fixtures}: c or sh`);
  return { kind: "sh", checkpassword: join(FIXTURE_SRC, "checkpassword"), pop3d: join(FIXTURE_SRC, "pop3d"), floorHold };
}

function referenceBinary() {
  if (config.ref) return resolve(config.ref);
  for (const candidate of ["var/qmail/bin/qmail-popup", "usr/sbin/qmail-popup", "usr/bin/qmail-popup", "qmail-popup"]) {
    const path = join(OUT_DIR, "ref", candidate);
    if (existsSync(path)) return path;
  }
  return undefined;
}

/**
 * A runtime that is a script (`exec INTERPRETER [OPTIONS] FILE "$@"`, as
 * `make variants` writes them): its interpreter and the file it runs.
 * @param {string} runtime
 */
function scriptTarget(runtime) {
  // The head only: a compiled runtime is 100 MiB, and BENCH_PAGE_CACHE wants it unread.
  const head = Buffer.alloc(4096);
  let fd;
  try {
    fd = openSync(runtime, "r");
    const text = head.toString("latin1", 0, readSync(fd, head));
    const exec = text.startsWith("#!") ? /^(?:\w+=\S+ )*exec (\S+) (?:.* )?(\S+) "\$@"$/m.exec(text) : null;
    return exec ? { interpreter: exec[1], runs: exec[2] } : {};
  } catch {
    return {};
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

const FRONT_LABELS = /** @type {Record<string, string>} */ ({
  "bun-compiled": "qmail-popup: front + Bun runtime",
  "node-sea": "front + Node SEA",
  node: "front + node dist/qmail-popup-node.mjs",
  "bun-source": "front + bun src/entry/bun.ts",
  deno: "front + deno run dist/qmail-popup-deno.mjs",
  resident: "resident mode: front + resident Bun workers",
});

/**
 * Every variant, in the table's order; those not wanted or not built are
 * skipped, with the reason.
 * @param {{ checkpassword: string, pop3d: string, floorHold?: string }} fx
 */
export function defineVariants(fx) {
  const args = [HOSTNAME, fx.checkpassword, fx.pop3d];
  const front = join(DIST, "qmail-popup");
  const hello = join(OUT_DIR, "hello");
  const helloSource = join(FIXTURE_SRC, "hello.mjs");
  const deno = join(ROOT, "node_modules/.bin/deno");
  const ref = referenceBinary();
  /**
   * A runtime behind a copy of the front.
   * @param {string} id  @param {string} label  @param {string} runtime
   * @returns {Variant}
   */
  const behindFront = (id, label, runtime) => ({ id, label, kind: "popup", argv: [front, ...args], front, runtime, runs: runtime, ...scriptTarget(runtime) });
  const [project, ...others] = FRONT_VARIANTS.map(({ name, command, resident }) => {
    const variant = behindFront(name, FRONT_LABELS[name] ?? name, join(dirname(/** @type {string} */ (command[0])), "qmail-popup-runtime"));
    if (resident === undefined) return variant;
    // The bench's own resident, beside the copies prepare() makes: in a directory of root's.
    const socket = join(RUN_DIR, name, "socket");
    return { ...variant, resident: socket, env: { QMAIL_POPUP_RESIDENT: socket, QMAIL_POPUP_RESIDENT_ONLY: "1" } };
  });
  const bunRuntime = join(DIST, "qmail-popup-runtime");
  const unconfined = join(DIST, "test-fixtures/qmail-popup-unconfined");
  /** @type {Variant[]} */
  const all = [
    { id: "floor", kind: "floor", label: "C floor: printf '+OK\\r\\n'", argv: ["/usr/bin/printf", "+OK\\r\\n"], runs: "/usr/bin/printf", holds: fx.floorHold === undefined ? undefined : [fx.floorHold] },
    { id: "hello", kind: "hello", label: "Bun floor: compiled hello", argv: [hello], runs: hello },
    { ...behindFront("front-hello", "front + compiled hello", hello), kind: "hello" },
    /** @type {Variant} */ (project),
    // The cost of the runtime's confinement (src/front/confine.c): the same pair, the front built without it.
    { ...behindFront("bun-unconfined", "front unconfined + Bun runtime", bunRuntime), front: unconfined, argv: [unconfined, ...args] },
    ...(config.ab ?? []).map(({ name, runtime }) => behindFront(`ab-${name}`, `A/B ${name}: front + ${relative(ROOT, resolve(runtime))}`, resolve(runtime))),
    { ...behindFront("page-exec", "front + Bun runtime, paged in by exec", bunRuntime), paged: "exec" },
    { ...behindFront("page-read", "front + Bun runtime, paged in by a read", bunRuntime), paged: "read" },
    ...others,
    { id: "node-hello", kind: "hello", label: "Node floor: node hello.mjs", argv: [process.execPath, helloSource], runs: helloSource, interpreter: process.execPath },
    { id: "deno-hello", kind: "hello", label: "Deno floor: deno run hello.mjs", argv: [deno, "run", "--allow-all", "--no-config", "--quiet", helloSource], runs: helloSource, interpreter: deno },
    { id: "ref", kind: "popup", label: `C qmail-popup ${ref ? relative(ROOT, ref) || ref : ""}`, argv: ref ? [ref, ...args] : [], runs: ref },
  ];
  /** @type {Variant[]} */
  const chosen = [];
  /** @type {{ id: string, why: string }[]} */
  const skipped = [];
  /** @param {Variant} variant */
  const wanted = (variant) => {
    if (variant.paged) return config.pageCache;
    if (variant.id === "floor" || variant.id.startsWith("ab-")) return true;
    if (config.variants) return config.variants.includes(variant.id);
    return config.runtimeFloors || !["node-hello", "deno-hello"].includes(variant.id);
  };
  for (const variant of all.filter(wanted)) {
    const missing = [variant.front, variant.runtime, variant.runs, variant.interpreter].filter((path) => path !== undefined).find((path) => !existsSync(path));
    if (variant.runs === undefined) skipped.push({ id: variant.id, why: "no C qmail-popup: set QMAIL_POPUP_REF or put one in dist/bench/ref/" });
    else if (missing !== undefined) skipped.push({ id: variant.id, why: `${relative(ROOT, missing) || missing} is missing (make bench builds it)` });
    else chosen.push(variant);
  }
  return { chosen, skipped };
}

/**
 * @param {string} from
 * @param {string} to
 */
function copyExecutable(from, to) {
  rmSync(to, { force: true });
  copyFileSync(realpathSync(from), to);
  chmodSync(to, statSync(from).mode & 0o7777);
}

/**
 * Runs what dist/ built from copies in dist/bench/run/ (another build in the
 * same checkout may replace them while the benchmark runs: "text busy", or two
 * builds mixed); a front and its runtime side by side in run/ID/, as installed.
 * A script runtime runs in place, behind the copy of the front beside it
 * (make variants): the front lets a runtime read only its own directory,
 * where its bundle lies.
 * @param {Variant[]} variants
 */
export function prepare(variants) {
  mkdirSync(RUN_DIR, { recursive: true });
  for (const variant of variants) {
    if (variant.interpreter !== undefined && variant.runtime !== undefined) {
      variant.argv = [join(dirname(variant.runtime), "qmail-popup"), ...variant.argv.slice(1)];
    } else if (variant.front !== undefined && variant.runtime !== undefined) {
      const dir = join(RUN_DIR, variant.id);
      mkdirSync(dir, { recursive: true });
      copyExecutable(variant.front, join(dir, "qmail-popup"));
      copyExecutable(variant.runtime, join(dir, "qmail-popup-runtime"));
      variant.argv = [join(dir, "qmail-popup"), ...variant.argv.slice(1)];
    } else if (variant.runs !== undefined && variant.argv[0] === variant.runs && variant.runs.startsWith(DIST + "/")) {
      const copy = join(RUN_DIR, basename(variant.runs));
      copyExecutable(variant.runs, copy);
      variant.argv = [copy, ...variant.argv.slice(1)];
    }
  }
}

/**
 * BENCH_PAGE_CACHE=1: empties the page cache (root only), then reads the
 * runtime of the "read" variant with cat(1); the "exec" one comes in by the
 * page faults of its first run. Returns why it cannot, or undefined.
 * @param {Variant[]} variants
 */
export function dropPageCache(variants) {
  spawnSync("sync");
  try {
    writeFileSync("/proc/sys/vm/drop_caches", "1\n");
  } catch (error) {
    return `cannot drop the page cache: ${error instanceof Error ? error.message : error}`;
  }
  for (const variant of variants.filter((v) => v.paged === "read")) {
    const runtime = join(dirname(/** @type {string} */ (variant.argv[0])), "qmail-popup-runtime");
    spawnSync("cat", [runtime], { stdio: "ignore" });
  }
  return undefined;
}

/**
 * The versions of what ran.
 * @param {Variant[]} variants
 */
export function versions(variants) {
  /** @type {Record<string, string | undefined>} */
  const out = { node_bench: process.version };
  for (const interpreter of new Set(variants.map((v) => v.interpreter).filter((i) => i !== undefined))) {
    out[basename(interpreter)] = commandOutput(interpreter, ["--version"])?.split("\n")[0];
  }
  const pinned = join(ROOT, `node_modules/.cache/qmail-popup-runtimes/node-linux-${arch() === "arm64" ? "arm64" : "x64"}/bin/node`);
  if (variants.some((v) => v.id === "node-sea") && existsSync(pinned)) out.sea_node = commandOutput(pinned, ["--version"]);
  if (variants.some((v) => v.runtime !== undefined && !v.interpreter)) out.bun_compiled = commandOutput(join(ROOT, "node_modules/.bin/bun"), ["--version"]);
  out.tcpserver = which("tcpserver");
  return out;
}
