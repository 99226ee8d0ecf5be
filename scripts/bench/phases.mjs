// @ts-check
// scripts/bench.mjs: the phases (greeting and session rounds, the rate, memory held).

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ServerProcess, startResident } from "../lib/tcpserver.mjs";
import { LineClient, errorText, greetingOnce } from "./client.mjs";
import { RUN_DIR, config } from "./config.mjs";
import { childrenTable, childrenUsage, commOf, processTree, smapsRollup, treeUsage } from "./proc.mjs";
import { median } from "./report.mjs";

/**
 * @typedef {{ variant: import("./variants.mjs").Variant, server: import("../lib/tcpserver.mjs").ServerProcess, resident?: number }} Run
 *   resident: the pid of the resident serving the run (resident mode): its CPU and memory count too
 */

/** Set on SIGINT/SIGTERM/SIGHUP: every phase stops at its next step. */
export const state = { interrupted: false };

/** @param {number} ms */
export const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

/** @param {Run} run */
export const greet = (run) => greetingOnce(run.server.port, run.variant.kind === "floor");

/**
 * @template T
 * @param {T[]} list
 * @param {number} by
 */
function rotated(list, by) {
  const k = by % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}

/** @param {string} text */
export function progress(text) {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${text}`);
}

/** @param {string} text */
export function progressDone(text) {
  if (state.interrupted) return;
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K`);
  process.stderr.write(`${text}\n`);
}

/** @param {Run} run */
const usageOf = (run) => {
  const fronts = run.server.pid === undefined ? undefined : childrenUsage(run.server.pid);
  if (run.resident === undefined || fronts === undefined) return fronts;
  const resident = treeUsage(run.resident);
  return { cpuMs: fronts.cpuMs + resident.cpuMs, minorFaults: fronts.minorFaults + resident.minorFaults, majorFaults: fronts.majorFaults + resident.majorFaults };
};

/**
 * Round by round, one connection per variant per round, in an order rotated
 * each round; the first config.warmup rounds untimed. CPU per connection:
 * what tcpserver's reaped children used over the phase.
 * @param {string} name
 * @param {Run[]} runs
 * @param {number} rounds
 * @param {(run: Run) => Promise<number>} once
 */
export async function interleaved(name, runs, rounds, once) {
  const samples = new Map(runs.map((run) => [run.variant.id, /** @type {number[]} */ ([])]));
  const errors = new Map(runs.map((run) => [run.variant.id, /** @type {string[]} */ ([])]));
  const before = new Map();
  for (const run of runs) {
    await run.server.quiesce();
    before.set(run.variant.id, { usage: usageOf(run), ends: run.server.ends });
  }
  const total = config.warmup + rounds;
  const started = Date.now();
  for (let round = 0; round < total && !state.interrupted; round++) {
    if (round % 10 === 0) progress(`${name}: round ${round}/${total}`);
    for (const run of rotated(runs, round)) {
      try {
        const ms = await once(run);
        if (round >= config.warmup) samples.get(run.variant.id)?.push(ms);
      } catch (error) {
        errors.get(run.variant.id)?.push(errorText(error));
      }
    }
  }
  /** @type {Map<string, { cpuMs: number, minorFaults: number, majorFaults: number } | undefined>} */
  const usage = new Map();
  for (const run of runs) {
    await run.server.quiesce();
    const { usage: start, ends } = before.get(run.variant.id);
    const connections = run.server.ends - ends;
    const end = usageOf(run);
    /** @param {"cpuMs" | "minorFaults" | "majorFaults"} key */
    const per = (key) => ((end?.[key] ?? NaN) - (start?.[key] ?? NaN)) / connections;
    usage.set(run.variant.id, connections > 0 ? { cpuMs: per("cpuMs"), minorFaults: per("minorFaults"), majorFaults: per("majorFaults") } : undefined);
  }
  progressDone(`${name}: ${total} rounds in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { samples, errors, usage };
}

/**
 * config.concurrency clients doing greeting+QUIT for sliceMs.
 * @param {Run} run
 * @param {number} sliceMs
 */
async function rateSlice(run, sliceMs) {
  const start = process.hrtime.bigint();
  const stopAt = start + BigInt(sliceMs) * 1_000_000n;
  let completed = 0;
  /** @type {string[]} */
  const errors = [];
  let last = start;
  const worker = async () => {
    while (process.hrtime.bigint() < stopAt && !state.interrupted) {
      try {
        await greet(run);
        completed++;
        last = process.hrtime.bigint();
      } catch (error) {
        errors.push(errorText(error));
      }
    }
  };
  await Promise.all(Array.from({ length: config.concurrency }, worker));
  return { completed, seconds: Number(last - start) / 1e9, errors };
}

/**
 * Sustained greeting+QUIT connections per second: slices of config.rateSlice
 * seconds, variant after variant, round after round.
 * @param {Run[]} runs
 */
export async function ratePhase(runs) {
  const slices = Math.max(1, Math.round(config.rateSeconds / config.rateSlice));
  const totals = new Map(runs.map((run) => [run.variant.id, { completed: 0, seconds: 0, errors: /** @type {string[]} */ ([]), sliceRates: /** @type {number[]} */ ([]) }]));
  const started = Date.now();
  for (let round = 0; round < slices && !state.interrupted; round++) {
    progress(`rate: slice ${round + 1}/${slices}`);
    for (const run of rotated(runs, round)) {
      await run.server.quiesce();
      const slice = await rateSlice(run, config.rateSlice * 1000);
      const total = totals.get(run.variant.id);
      if (total === undefined) continue;
      total.completed += slice.completed;
      total.seconds += slice.seconds;
      total.errors.push(...slice.errors);
      total.sliceRates.push(slice.seconds > 0 ? slice.completed / slice.seconds : 0);
    }
  }
  for (const run of runs) await run.server.quiesce();
  progressDone(`rate: ${slices} slices of ${config.rateSlice} s at concurrency ${config.concurrency} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return new Map(
    [...totals].map(([id, r]) => [
      id,
      { per_second: r.seconds > 0 ? r.completed / r.seconds : undefined, median_slice_per_second: median(r.sliceRates), completed: r.completed, seconds: r.seconds, concurrency: config.concurrency, slice_rates: r.sliceRates, errors: r.errors },
    ]),
  );
}

/**
 * PSS, Private_Dirty and RSS (kB) added up over processes.
 * @param {number[]} pids
 */
function memoryOfProcesses(pids) {
  const each = pids.map((pid) => smapsRollup(pid) ?? {});
  /** @param {string} key */
  const sum = (key) => each.reduce((total, kB) => total + (kB[key] ?? 0), 0);
  return { pss: sum("Pss"), privateDirty: sum("Private_Dirty"), private: sum("Private_Dirty") + sum("Private_Clean"), rss: sum("Rss"), comm: pids.map((pid) => commOf(pid) ?? "?").join("+") };
}

/**
 * Medians over the connections.
 * @param {ReturnType<typeof memoryOfProcesses>[]} samples
 */
function summarise(samples) {
  if (samples.length === 0) return undefined;
  return {
    n: samples.length,
    pss_kB: median(samples.map((s) => s.pss)),
    private_dirty_kB: median(samples.map((s) => s.privateDirty)),
    private_kB: median(samples.map((s) => s.private)),
    rss_kB: median(samples.map((s) => s.rss)),
    pss_sum_kB: samples.reduce((total, s) => total + s.pss, 0),
    processes: [...new Set(samples.map((s) => s.comm))],
  };
}

/**
 * config.held connections, idle after the greeting or logged in, and
 * /proc/PID/smaps_rollup of their processes: idle, the pid tcpserver
 * started and all below it (the front and the runtime); logged in, that
 * pid (the front, waiting) and, apart, below it (the login program).
 * @param {Run} run
 * @param {boolean} loggedIn
 */
export async function memoryOf(run, loggedIn) {
  /** @type {LineClient[]} */
  const clients = [];
  /** @type {{ errors: string[], self?: ReturnType<typeof summarise>, child?: ReturnType<typeof summarise>, resident?: { before_kB: number, held_kB: number, growth_per_connection_kB: number }, per_connection_kB?: number }} */
  const result = { errors: [] };
  // A resident's private memory (all its processes) before and with the connections held: its share is the growth.
  const residentPrivate = () => (run.resident === undefined ? 0 : memoryOfProcesses(processTree(run.resident, childrenTable())).private);
  const residentBefore = residentPrivate();
  try {
    const held = run.resident !== undefined && !loggedIn ? config.residentHeld : config.held;
    for (let i = 0; i < held; i++) {
      const client = await LineClient.connect(run.server.port);
      clients.push(client);
      client.pid = await run.server.pidFor(client.localPort);
      await (loggedIn ? client.logIn() : client.ok("greeting"));
    }
    await sleep(config.settleMs);
    const table = childrenTable();
    const trees = clients.map((client) => processTree(client.pid, table));
    if (loggedIn) {
      result.self = summarise(trees.map((tree) => memoryOfProcesses(tree.slice(0, 1))));
      result.child = summarise(trees.map((tree) => memoryOfProcesses(tree.slice(1))));
      for (const tree of trees) if (tree.length !== 2) result.errors.push(`pid ${tree[0]} has ${tree.length - 1} processes below it`);
    } else {
      result.self = summarise(trees.map(memoryOfProcesses));
      // Private memory per idle connection: the front's (and its runtime's), plus a resident's growth shared out.
      const held = residentPrivate();
      const growth = run.resident === undefined ? 0 : (held - residentBefore) / clients.length;
      if (run.resident !== undefined) result.resident = { before_kB: residentBefore, held_kB: held, growth_per_connection_kB: growth };
      result.per_connection_kB = (result.self?.private_kB ?? NaN) + growth;
    }
  } catch (error) {
    result.errors.push(errorText(error));
  } finally {
    for (const client of clients) client.send("QUIT\r\n");
    await Promise.race([Promise.all(clients.map((client) => client.whenClosed().catch(() => {}))), sleep(10_000)]);
    for (const client of clients) client.destroy();
    await run.server.quiesce();
  }
  return result;
}

/** The hard limit on this process's descriptors (/proc/self/limits), which its children inherit. */
function descriptorLimit() {
  const match = /^Max open files\s+\d+\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "latin1"));
  return match ? Number(match[1]) : 1024;
}

/**
 * Resident mode's hold phase (issue #19): config.residentHold idle
 * connections at once, greeted, through a resident and a tcpserver of their
 * own (variant's front), and the total memory: every front (the children of
 * tcpserver) and the resident with its workers, private and PSS, read once
 * all are greeted. A worker holds 5 descriptors per session (0, 1, 2, 5 and
 * the control socket) under the hard RLIMIT_NOFILE the resident raises its
 * soft limit to: a worker per 2000 connections, each bounded below that
 * limit (QMAIL_POPUP_RESIDENT_SESSIONS); this process holds one per
 * connection. Connections open 16 at a time, each batch greeted before the
 * next (tcpserver listens with a backlog of 20); tcpserver's -v lines are not
 * waited for, only the greetings.
 * @param {import("./variants.mjs").Variant} variant
 * @param {Set<ServerProcess>} servers  where the servers started go, to be stopped whatever happens
 */
export async function residentHold(variant, servers) {
  const wanted = config.residentHold;
  const limit = descriptorLimit();
  const workers = config.residentWorkers || Math.max(2, Math.ceil(wanted / 2000));
  const perWorker = Math.floor((limit - 64) / 5);
  const socket = join(RUN_DIR, "resident-hold", "socket");
  const front = /** @type {string} */ (variant.argv[0]);
  const result = {
    wanted, workers, sessions_per_worker: perWorker, descriptor_limit: limit,
    held: 0, seconds: NaN, errors: /** @type {string[]} */ ([]),
    /** @type {undefined | Record<string, number>} */ memory: undefined,
  };
  if (wanted + 64 > limit) result.errors.push(`this process may hold ${limit} descriptors: fewer than ${wanted} connections and its own`);
  const resident = await startResident(socket, front, { PATH: "/usr/bin:/bin", QMAIL_POPUP_RESIDENT_SESSIONS: String(perWorker) }, workers);
  servers.add(resident);
  const env = { PATH: "/usr/bin:/bin", ...variant.env, QMAIL_POPUP_RESIDENT: socket };
  const server = await ServerProcess.tcpserver({ command: variant.argv, env, fd5: "/dev/null", group: true, maxConnections: wanted + 16 });
  servers.add(server);
  /** @type {LineClient[]} */
  const clients = [];
  const residentPrivate = () => memoryOfProcesses(processTree(/** @type {number} */ (resident.pid), childrenTable()));
  // A session or two per worker first: "before" is a resident that has served, not one just started.
  for (let i = 0; i < 2 * workers; i++) await greetingOnce(server.port, false).catch((error) => result.errors.push(`warm-up: ${errorText(error)}`));
  await server.quiesce();
  const before = residentPrivate();
  const started = process.hrtime.bigint();
  try {
    for (let opened = 0; opened < wanted && !state.interrupted; ) {
      if (opened % 1000 === 0) progress(`hold: ${opened}/${wanted} idle connections in resident mode`);
      const batch = Math.min(16, wanted - opened);
      const outcomes = await Promise.allSettled(
        Array.from({ length: batch }, async () => {
          const client = await LineClient.connect(server.port);
          clients.push(client);
          await client.ok("greeting");
        }),
      );
      opened += batch;
      const failed = outcomes.filter((outcome) => outcome.status === "rejected");
      if (failed.length > 0) {
        result.errors.push(...failed.map((outcome) => errorText(/** @type {PromiseRejectedResult} */ (outcome).reason)));
        break;
      }
      result.held = opened;
    }
    result.seconds = Number(process.hrtime.bigint() - started) / 1e9;
    await sleep(config.settleMs);
    const table = childrenTable();
    const fronts = memoryOfProcesses(table.get(/** @type {number} */ (server.pid)) ?? []);
    const held = memoryOfProcesses(processTree(/** @type {number} */ (resident.pid), table));
    const fronts_count = (table.get(/** @type {number} */ (server.pid)) ?? []).length;
    result.memory = {
      fronts: fronts_count,
      fronts_private_kB: fronts.private,
      fronts_pss_kB: fronts.pss,
      resident_private_before_kB: before.private,
      resident_private_kB: held.private,
      resident_pss_kB: held.pss,
      total_private_kB: fronts.private + held.private,
      total_pss_kB: fronts.pss + held.pss,
      // As memory.idle.per_connection_kB: the front's own, plus the resident's growth shared out.
      per_connection_kB: result.held > 0 ? (fronts.private + held.private - before.private) / result.held : NaN,
      total_pss_per_connection_kB: result.held > 0 ? (fronts.pss + held.pss) / result.held : NaN,
    };
  } catch (error) {
    result.errors.push(errorText(error));
  } finally {
    for (const client of clients) client.destroy();
    await server.stop();
    servers.delete(server);
    await resident.stop();
    servers.delete(resident);
  }
  progressDone(`hold: ${result.held} of ${wanted} idle connections at once in resident mode in ${result.seconds.toFixed(1)} s (${workers} workers)`);
  return result;
}
