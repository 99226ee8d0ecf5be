// @ts-check
// scripts/bench.mjs: the phases (greeting and session rounds, the rate, memory held).

import { LineClient, errorText, greetingOnce } from "./client.mjs";
import { config } from "./config.mjs";
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
