#!/usr/bin/env node
// @ts-check
// qmail-popup benchmark (issues #7, #12, #13): `make bench`, which builds what
// it runs first (all, variants, dist/bench/hello) and installs tcpserver.
//
// One tcpserver on 127.0.0.1 per variant, started as the end-to-end tests start
// theirs (scripts/lib/tcpserver.mjs: -v -R -H -l localhost, environment PATH
// only, fd 5 on /dev/null), synchronised on tcpserver's own -v lines.
// Per variant it measures:
//   greeting   connect -> first CRLF, then QUIT (the C floor: a half-close) and
//              the server's close;
//   session    connect -> USER -> PASS -> STAT -> QUIT -> "+OK " of the QUIT,
//              with a fast checkpassword and post-login stand-in (scripts/bench-fixtures/:
//              C compiled here with cc into dist/bench/fixtures/, or the sh twins
//              with BENCH_FIXTURES=sh); qmail-popups only;
//   rate       sustained greeting+QUIT connections per second at concurrency 16 (issue #19 compares conn/s at 16 clients);
//   cpu        user+system CPU and page faults per connection: tcpserver's
//              cutime+cstime and cminflt+cmajflt (all of a connection's processes: the
//              front waits for its runtime) over the greeting and session phases;
//   memory     PSS, Private_Dirty (and RSS) from /proc/PID/smaps_rollup, with 20
//              connections idle after the greeting (the front and its runtime added
//              up) and with 20 logged in (the front, waiting, and the login program);
//              private KiB per idle connection (memory.idle.per_connection_kB) for
//              every row: resident mode's is the front's plus the resident's growth
//              over BENCH_RESIDENT_HELD connections shared out; the floor's is that of
//              its idle stand-in, dist/bench/fixtures/floor-hold (scripts/bench-fixtures/
//              floor-hold.c, static: greets as printf does, then reads until EOF or input),
//              since printf exits at once and holds no connection;
//   hold       resident mode only: BENCH_RESIDENT_HOLD idle connections at once
//              (10 000; 200 with BENCH_QUICK), through a resident and a tcpserver of
//              their own: the time it took and the total memory (every front and the
//              resident: private and PSS), in resident_hold of the JSON. The limits it
//              needs: tcpserver -c above it; a worker per 2 000 sessions
//              (BENCH_RESIDENT_WORKERS), each holding 5 descriptors per session under
//              the hard RLIMIT_NOFILE the resident raises it to; the bench's own
//              descriptors (one per connection) under its hard limit, which Node takes;
//   size       of the file that runs, and of its runtime where that is another file.
// Greeting and session timings are interleaved round by round, one connection per
// variant per round, in an order rotated each round, so that drift hits all variants
// alike; the rate runs in 1 s slices, variant after variant, round after round.
// Every ratio is to the C floor of the same run; the cost of the front and of
// qmail-popup's own work are differences within the run.
//
// Output: the tables on stdout, everything (raw samples too) in
// dist/bench/bench-<UTC time>.json and dist/bench/latest.json.
//
// Variants (a missing artifact is skipped with a note; what dist/ built runs from
// copies in dist/bench/run/, each runtime next to a copy of the front):
//   floor         /usr/bin/printf '+OK\r\n': the C floor (starts, greets, exits)
//   hello         dist/bench/hello: scripts/bench-fixtures/hello.mjs compiled as the
//                 runtime is (BUN_FLAGS, the hardened Bun): greets, reads QUIT, answers,
//                 exits: the Bun floor
//   front-hello   that hello as qmail-popup-runtime behind the front: it reads the
//                 introduction and announces its end (end=0) as the runtime does. The
//                 runtime alone refuses to serve, so this pair is the front's cost:
//                 with and without it
//   bun-compiled  dist/qmail-popup + dist/qmail-popup-runtime: the project as installed
//   bun-unconfined  the same runtime behind dist/test-fixtures/qmail-popup-unconfined, the front
//                 built with -DQMAIL_POPUP_UNCONFINED (the runtime's account, but no
//                 no_new_privs, Landlock, seccomp or RLIMIT_FSIZE): the confinement's cost
//   node-sea, node, bun-source, deno   dist/variants/NAME/ (make variants)
//   node-hello, deno-hello   hello.mjs under node and deno run: the interpreted
//                 runtimes' floors (BENCH_RUNTIME_FLOORS=1; on by default, off with BENCH_QUICK)
//   ab-NAME       BENCH_AB=NAME=RUNTIME[,...]: another runtime behind the front, e.g. one
//                 built with other flags, compared with bun-compiled in the same run
//   page-exec, page-read   BENCH_PAGE_CACHE=1 (root): the page cache emptied
//                 (drop_caches), then the Bun runtime paged in by its first exec's page
//                 faults, and by a read (cat) before its first exec
//   ref           a C qmail-popup, run as `qmail-popup hostname subprogram`: $QMAIL_POPUP_REF,
//                 else the first of dist/bench/ref/{var/qmail/bin,usr/sbin,usr/bin,}/qmail-popup.
//                 No Debian release on deb.debian.org packages qmail/netqmail any more
//                 (bookworm, bullseye, trixie, sid: no candidate; buster is archived), so
//                 put a qmail-popup built from netqmail/notqmail there.
//
// Environment (defaults in brackets; BENCH_QUICK's in braces):
//   BENCH_QUICK=1          a short run, under a minute
//   BENCH_GREETINGS [300] {40}   greeting rounds   BENCH_SESSIONS [200] {20}  session rounds
//   BENCH_WARMUP [10] {3}        untimed rounds first
//   BENCH_RATE_SECONDS [10] {1}  rate time per variant   BENCH_RATE_SLICE [1]  seconds per slice
//   BENCH_CONCURRENCY [16]       BENCH_HELD [20] {5}  connections held for the memory measurement
//   BENCH_RESIDENT_HELD [1000] {200}  idle connections held in resident mode: the resident's growth over them, shared out
//   BENCH_RESIDENT_HOLD [10000] {200}  idle connections held at once in resident mode (the hold phase; 0: none)
//   BENCH_RESIDENT_WORKERS  the hold phase's resident's workers [one per 2000 connections, at least 2]
//   BENCH_SETTLE_MS [500] {200}  wait before reading smaps of held connections
//   BENCH_VARIANTS         a comma list of ids to run (floor is always run)
//   BENCH_RUNTIME_FLOORS [1] {0}, BENCH_AB, BENCH_PAGE_CACHE: above
//   BENCH_FIXTURES [c]     c, or sh (c needs cc; without cc, sh)
//   BENCH_OUT              the JSON file [dist/bench/bench-<time>.json]
//   QMAIL_POPUP_REF        a C qmail-popup to compare with
//
// All tcpservers run in their own process group and are killed with all their
// children at the end, on an error and on Ctrl-C (SIGINT/SIGTERM/SIGHUP).

import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { arch, cpus, loadavg, release } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { ServerProcess, startResident } from "./lib/tcpserver.mjs";
import { destroySockets, errorText, sessionOnce } from "./bench/client.mjs";
import { OUT_DIR, ROOT, commandOutput, config, which } from "./bench/config.mjs";
import { greet, interleaved, memoryOf, progress, progressDone, ratePhase, residentHold, state } from "./bench/phases.mjs";
import { CLK_TCK } from "./bench/proc.mjs";
import { fileSize, mtimeOf, printReport, stats } from "./bench/report.mjs";
import { defineVariants, dropPageCache, fixtures, prepare, versions } from "./bench/variants.mjs";

/** @typedef {import("./bench/phases.mjs").Run} Run */

/** Every tcpserver started, to be stopped at the end whatever happens. */
const servers = /** @type {Set<ServerProcess>} */ (new Set());

async function stopAll() {
  await Promise.all([...servers].map((server) => server.stop()));
  servers.clear();
}

for (const signal of /** @type {const} */ (["SIGINT", "SIGTERM", "SIGHUP"])) {
  process.on(signal, () => {
    if (state.interrupted) return;
    state.interrupted = true;
    process.stderr.write(`\nbench: ${signal}: stopping the servers\n`);
    destroySockets();
    stopAll().finally(() => process.exit(130));
  });
}
process.on("exit", () => {
  for (const server of servers) server.killNow();
});

/** @param {{ cpuMs: number, minorFaults: number, majorFaults: number } | undefined} usage */
const perConnection = (usage) => ({ cpu_ms_per_connection: usage?.cpuMs, minor_faults_per_connection: usage?.minorFaults, major_faults_per_connection: usage?.majorFaults });

/** @param {number} raw  a wait status */
const describeStatus = (raw) => ((raw & 0x7f) === 0 ? `exit ${raw >> 8}` : `signal ${raw & 0x7f}`);

async function main() {
  if (which("tcpserver") === undefined) throw new Error("tcpserver is missing: make test-deps (Debian's ucspi-tcp)");
  mkdirSync(OUT_DIR, { recursive: true });
  const fx = fixtures();
  const { chosen, skipped } = defineVariants(fx);
  for (const skip of skipped) process.stderr.write(`bench: skipping ${skip.id}: ${skip.why}\n`);
  prepare(chosen);
  const popups = chosen.filter((v) => v.kind === "popup").length;
  const estimate = (config.warmup + config.greetings) * chosen.length * 0.04 + (config.warmup + config.sessions) * popups * 0.06 + config.rateSeconds * chosen.length + 2 * chosen.length * (config.held * 0.1 + config.settleMs / 1000);
  process.stderr.write(`bench: ${chosen.map((v) => v.id).join(", ")}; ${fx.kind} fixtures; about ${Math.ceil(estimate / 10) * 10} s\n`);
  if (config.pageCache) {
    const why = dropPageCache(chosen);
    if (why !== undefined) {
      process.stderr.write(`bench: BENCH_PAGE_CACHE: ${why}\n`);
      for (const variant of chosen.filter((v) => v.paged)) skipped.push({ id: variant.id, why });
      chosen.splice(0, chosen.length, ...chosen.filter((v) => !v.paged));
    }
  }

  const loadBefore = loadavg();
  if ((loadBefore[0] ?? 0) > cpus().length / 2) process.stderr.write(`bench: the machine is busy (load ${loadBefore.map((l) => l.toFixed(2)).join(" ")}): absolute numbers will be noisy\n`);
  /** @type {Run[]} */
  const working = [];
  for (const variant of chosen) {
    // Resident mode: the resident first (the front it runs is the variant's copy), then tcpserver.
    const resident = variant.resident === undefined ? undefined : await startResident(variant.resident, variant.argv[0]);
    if (resident !== undefined) servers.add(resident);
    const env = { PATH: "/usr/bin:/bin", ...variant.env };
    const server = await ServerProcess.tcpserver({ command: variant.argv, env, fd5: "/dev/null", group: true, maxConnections: Math.max(64, (variant.resident ? config.residentHeld : config.held) + config.concurrency + 8) });
    servers.add(server);
    // Each variant must greet; one with a broken greeting is dropped with its reason.
    try {
      await greet({ variant, server, resident: resident?.pid });
      working.push({ variant, server, resident: resident?.pid });
    } catch (error) {
      skipped.push({ id: variant.id, why: `greeting failed: ${errorText(error)}; stderr: ${server.otherLines.join(" | ")}` });
      process.stderr.write(`bench: dropping ${variant.id}: ${errorText(error)}\n`);
      await server.stop();
      servers.delete(server);
    }
  }

  const greeting = await interleaved("greeting", working, config.greetings, greet);
  const sessionRuns = working.filter((run) => run.variant.kind === "popup");
  const session = sessionRuns.length ? await interleaved("session", sessionRuns, config.sessions, (run) => sessionOnce(run.server.port)) : undefined;
  const rate = config.rateSeconds > 0 ? await ratePhase(working) : undefined;
  const memory = new Map();
  if (config.held > 0) {
    for (const run of working) {
      if (state.interrupted) break;
      progress(`memory: ${run.variant.id}`);
      if (run.variant.kind === "floor") {
        // printf exits at once: its idle stand-in (floor-hold.c) holds the connections, under a tcpserver of its own.
        if (run.variant.holds === undefined) continue;
        const holding = await ServerProcess.tcpserver({ command: run.variant.holds, fd5: "/dev/null", group: true, maxConnections: config.held + 8 });
        servers.add(holding);
        memory.set(run.variant.id, { idle: { ...(await memoryOf({ variant: run.variant, server: holding }, false)), stand_in: run.variant.holds } });
        await holding.stop();
        servers.delete(holding);
        continue;
      }
      const idle = await memoryOf(run, false);
      memory.set(run.variant.id, run.variant.kind === "hello" ? { idle } : { idle, loggedIn: await memoryOf(run, true) });
    }
    progressDone(`memory: ${config.held} connections held per variant (resident mode: ${config.residentHeld})`);
  }
  // Resident mode's many idle connections at once (issue #19): a resident and a tcpserver of their own.
  const residentRun = working.find((run) => run.variant.resident !== undefined);
  const hold = residentRun !== undefined && config.residentHold > 0 && !state.interrupted ? await residentHold(residentRun.variant, servers) : undefined;
  if (state.interrupted) return;

  const rows = working.map(({ variant, server }) => {
    const id = variant.id;
    const g = greeting.samples.get(id) ?? [];
    const s = session?.samples.get(id);
    return {
      id,
      label: variant.label,
      kind: variant.kind,
      argv: variant.argv,
      greeting: { ...stats(g), ...perConnection(greeting.usage.get(id)), errors: greeting.errors.get(id), samples_ms: g },
      session: s && { ...stats(s), ...perConnection(session?.usage.get(id)), errors: session?.errors.get(id), samples_ms: s },
      rate: rate?.get(id),
      memory: memory.get(id),
      size: {
        runs: variant.runs, bytes: fileSize(variant.runs), built: mtimeOf(variant.runs),
        front: variant.front && relative(ROOT, variant.front), front_bytes: fileSize(variant.front),
        interpreter: variant.interpreter, interpreter_bytes: fileSize(variant.interpreter),
      },
      exit_statuses: Object.fromEntries([...server.endStatuses()].map(([raw, count]) => [describeStatus(raw), count])),
      other_stderr: { count: server.otherCount, first: server.otherLines },
    };
  });
  await stopAll();

  const when = new Date();
  const report = {
    date: when.toISOString(),
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? "?", kernel: release(), arch: arch(), load_before: loadBefore, load_after: loadavg() },
    versions: versions(chosen),
    source: {
      commit: commandOutput("git", ["-C", ROOT, "rev-parse", "HEAD"]),
      // Artifacts in dist/ may be older than the working tree: see each variant's size.built.
      src_changes: commandOutput("git", ["-C", ROOT, "status", "--porcelain", "--", "src"])?.split("\n").filter(Boolean),
    },
    config: { ...config, fixtures: fx.kind, clk_tck: CLK_TCK },
    floor: "floor",
    resident_hold: hold,
    skipped,
    variants: rows,
  };
  printReport(report);
  const outFile = config.out ? resolve(config.out) : join(OUT_DIR, `bench-${when.toISOString().replace(/[-:]/g, "").replace(/\..*/, "")}.json`);
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, JSON.stringify(report, null, 2) + "\n");
  copyFileSync(outFile, join(OUT_DIR, "latest.json"));
  console.log("");
  console.log(`json: ${relative(process.cwd(), outFile) || outFile}`);
}

main()
  .catch((error) => {
    process.stderr.write(`bench: ${error instanceof Error ? error.stack : error}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    destroySockets();
    await stopAll();
  });
