// @ts-check
// scripts/bench.mjs: where things are, and the knobs (BENCH_* variables, listed in scripts/bench.mjs).

import { execFileSync } from "node:child_process";
import { statSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../lib/tcpserver.mjs";

export { ROOT };
export const DIST = join(ROOT, "dist");
export const OUT_DIR = join(DIST, "bench");
/** Where the variants run from: copies, so that a build meanwhile cannot swap them. */
export const RUN_DIR = join(OUT_DIR, "run");
export const FIXTURE_SRC = join(ROOT, "scripts/bench-fixtures");
export const HOSTNAME = "bench.example.org";

const env = process.env;
const quick = env.BENCH_QUICK !== undefined && env.BENCH_QUICK !== "" && env.BENCH_QUICK !== "0";

/**
 * @param {string} name
 * @param {number} normal
 * @param {number} short  with BENCH_QUICK
 */
function intEnv(name, normal, short) {
  const raw = env[name];
  if (raw === undefined || raw === "") return quick ? short : normal;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name}=${raw}: not a number`);
  return value;
}

/** @param {string | undefined} raw */
const list = (raw) => (raw ? raw.split(",").map((s) => s.trim()).filter(Boolean) : undefined);

export const config = {
  quick,
  greetings: intEnv("BENCH_GREETINGS", 300, 40),
  sessions: intEnv("BENCH_SESSIONS", 200, 20),
  warmup: intEnv("BENCH_WARMUP", 10, 3),
  rateSeconds: intEnv("BENCH_RATE_SECONDS", 10, 1),
  rateSlice: intEnv("BENCH_RATE_SLICE", 1, 1),
  concurrency: intEnv("BENCH_CONCURRENCY", 16, 16),
  held: intEnv("BENCH_HELD", 20, 5),
  // Resident mode's share of the resident is its growth over the connections held: more of them, less noise.
  residentHeld: intEnv("BENCH_RESIDENT_HELD", 1000, 200),
  // Issue #19: 10 000 idle connections at once in resident mode, and the total memory.
  residentHold: intEnv("BENCH_RESIDENT_HOLD", 10_000, 200),
  residentWorkers: intEnv("BENCH_RESIDENT_WORKERS", 0, 0),
  settleMs: intEnv("BENCH_SETTLE_MS", 500, 200),
  connectionTimeoutMs: intEnv("BENCH_TIMEOUT_MS", 30_000, 30_000),
  fixtures: env.BENCH_FIXTURES || "c",
  runtimeFloors: env.BENCH_RUNTIME_FLOORS === undefined || env.BENCH_RUNTIME_FLOORS === "" ? !quick : env.BENCH_RUNTIME_FLOORS !== "0",
  variants: list(env.BENCH_VARIANTS),
  /** NAME=RUNTIME: that runtime behind a copy of the front, as variant ab-NAME. */
  ab: list(env.BENCH_AB)?.map((entry) => {
    const [name, runtime] = entry.split("=", 2);
    if (!name || !runtime) throw new Error(`BENCH_AB: ${entry}: NAME=RUNTIME`);
    return { name, runtime };
  }),
  pageCache: env.BENCH_PAGE_CACHE === "1",
  ref: env.QMAIL_POPUP_REF,
  out: env.BENCH_OUT,
};

/**
 * What a command prints, trimmed; undefined if it fails.
 * @param {string} file
 * @param {readonly string[]} args
 */
export function commandOutput(file, args) {
  try {
    return execFileSync(file, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 20_000 }).trim();
  } catch {
    return undefined;
  }
}

/** @param {string} name  a command, looked up in PATH */
export function which(name) {
  for (const dir of (env.PATH ?? "/usr/bin:/bin").split(":")) {
    const path = join(dir || ".", name);
    try {
      if (statSync(path).isFile()) return path;
    } catch {}
  }
  return undefined;
}
