// @ts-check
// scripts/bench.mjs: what it reads of /proc (Linux).

import { readFileSync, readdirSync } from "node:fs";
import { commandOutput } from "./config.mjs";

export const CLK_TCK = Number(commandOutput("getconf", ["CLK_TCK"])) || 100;

/**
 * /proc/PID/stat, the fields after "(comm)": [state, ppid, ...].
 * @param {number | string} pid
 */
function procStat(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "latin1");
    return text.slice(text.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/**
 * What a process's reaped children used: CPU time (ms, cutime + cstime) and
 * page faults (cminflt, cmajflt). A child's own reaped children count in it:
 * tcpserver's hold every connection's processes that were waited for (the
 * front waits for its runtime).
 * @param {number} pid
 */
export function childrenUsage(pid) {
  const fields = procStat(pid);
  if (fields === undefined) return undefined;
  // stat fields 11-17 (1-based, comm is 2): index 8 to 14 after the comm.
  const [cminflt, cmajflt, cutime, cstime] = [8, 10, 13, 14].map((i) => Number(fields[i]));
  return { cpuMs: (((cutime ?? NaN) + (cstime ?? NaN)) * 1000) / CLK_TCK, minorFaults: cminflt ?? NaN, majorFaults: cmajflt ?? NaN };
}

/** ppid -> [pid] over the whole of /proc. */
export function childrenTable() {
  /** @type {Map<number, number[]>} */
  const table = new Map();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = procStat(entry);
    if (fields === undefined) continue;
    const ppid = Number(fields[1]);
    table.set(ppid, [...(table.get(ppid) ?? []), Number(entry)]);
  }
  return table;
}

/**
 * pid and all its descendants, parents first.
 * @param {number} pid
 * @param {Map<number, number[]>} table  from childrenTable()
 * @returns {number[]}
 */
export function processTree(pid, table) {
  return [pid, ...(table.get(pid) ?? []).flatMap((child) => processTree(child, table))];
}

/**
 * Rss, Pss, Private_Dirty, ... (kB) from /proc/PID/smaps_rollup.
 * @param {number} pid
 * @returns {Record<string, number> | undefined}
 */
export function smapsRollup(pid) {
  let text;
  try {
    text = readFileSync(`/proc/${pid}/smaps_rollup`, "latin1");
  } catch {
    return undefined;
  }
  /** @type {Record<string, number>} */
  const values = {};
  for (const match of text.matchAll(/^(\w+):\s+(\d+) kB$/gm)) values[/** @type {string} */ (match[1])] = Number(match[2]);
  return values;
}

/** @param {number} pid */
export function commOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/comm`, "latin1").trim();
  } catch {
    return undefined;
  }
}

/**
 * What a running process and its descendants used, live and reaped: a
 * resident's CPU over a phase (its workers are never reaped by tcpserver).
 * @param {number} pid
 */
export function treeUsage(pid) {
  const table = childrenTable();
  let cpuMs = 0;
  let minorFaults = 0;
  let majorFaults = 0;
  for (const each of processTree(pid, table)) {
    const fields = procStat(each);
    if (fields === undefined) continue;
    // utime, stime, cutime, cstime: fields 14-17; minflt, cminflt, majflt, cmajflt: 10-13 (index 7 to 14 after the comm).
    const [minflt, cminflt, majflt, cmajflt, utime, stime, cutime, cstime] = [7, 8, 9, 10, 11, 12, 13, 14].map((i) => Number(fields[i]));
    cpuMs += (((utime ?? 0) + (stime ?? 0) + (cutime ?? 0) + (cstime ?? 0)) * 1000) / CLK_TCK;
    minorFaults += (minflt ?? 0) + (cminflt ?? 0);
    majorFaults += (majflt ?? 0) + (cmajflt ?? 0);
  }
  return { cpuMs, minorFaults, majorFaults };
}
