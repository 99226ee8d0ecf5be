// @ts-check
// scripts/bench.mjs: statistics, the tables on stdout, the JSON file.

import { realpathSync, statSync } from "node:fs";

/** @param {readonly number[]} samples */
export function stats(samples) {
  if (samples.length === 0) return undefined;
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (/** @type {number} */ i) => /** @type {number} */ (sorted[Math.min(sorted.length - 1, Math.max(0, i))]);
  const middle = sorted.length / 2;
  return {
    n: sorted.length,
    median: sorted.length % 2 ? at(Math.floor(middle)) : (at(middle - 1) + at(middle)) / 2,
    p99: at(Math.ceil(0.99 * sorted.length) - 1),
    mean: sorted.reduce((a, b) => a + b, 0) / sorted.length,
    min: at(0),
    max: at(sorted.length - 1),
  };
}

/** @param {readonly number[]} values */
export function median(values) {
  return stats(values)?.median;
}

/** @param {string | undefined} path  @returns the size of the file it leads to */
export function fileSize(path) {
  try {
    return path === undefined ? undefined : statSync(realpathSync(path)).size;
  } catch {
    return undefined;
  }
}

/** @param {string | undefined} path */
export function mtimeOf(path) {
  try {
    return path === undefined ? undefined : statSync(path).mtime.toISOString();
  } catch {
    return undefined;
  }
}

/**
 * Plain columns: the first left-aligned, the others right-aligned.
 * @param {string[]} headers
 * @param {string[][]} rows
 */
function table(headers, rows) {
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => String(row[i]).length)));
  const line = (/** @type {string[]} */ cells) => cells.map((cell, i) => (i === 0 ? String(cell).padEnd(widths[i] ?? 0) : String(cell).padStart(widths[i] ?? 0))).join("  ");
  return [line(headers), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

/** @typedef {number | undefined | null} Maybe */
const fmt = (/** @type {Maybe} */ value, digits = 2) => (value === undefined || value === null || Number.isNaN(value) ? "n/a" : value.toFixed(digits));
const ratio = (/** @type {Maybe} */ value, /** @type {Maybe} */ floor, digits = 1) => (value == null || floor == null || floor === 0 ? "n/a" : `${(value / floor).toFixed(digits)}x`);
const mb = (/** @type {Maybe} */ kB, digits = 1) => (kB == null ? "n/a" : (kB / 1024).toFixed(digits));
const size = (/** @type {Maybe} */ bytes) => (bytes == null ? "n/a" : bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`);
const signed = (/** @type {number} */ value, digits = 2) => `${value >= 0 ? "+" : ""}${value.toFixed(digits)}`;

/**
 * What one variant costs over another of the same run: greeting (median) and CPU per connection.
 * @param {any} with_  @param {any} without
 */
function difference(with_, without) {
  /** @param {string} key  @param {string} unit */
  const change = (key, unit, digits = 2) => {
    const a = with_?.greeting?.[key];
    const b = without?.greeting?.[key];
    return typeof a === "number" && typeof b === "number" ? `${signed(a - b, digits)}${unit} (${ratio(a, b, 2)})` : "n/a";
  };
  return `greeting ${change("median", " ms")}; per connection: CPU ${change("cpu_ms_per_connection", " ms")}, minor page faults ${change("minor_faults_per_connection", "", 0)}`;
}

/**
 * The report on stdout.
 * @param {any} report  what goes into the JSON file
 */
export function printReport(report) {
  const { config, machine } = report;
  /** @type {any[]} */
  const rows = report.variants;
  const byId = new Map(rows.map((r) => [r.id, r]));
  const floor = byId.get("floor");
  console.log(`qmail-popup bench ${report.date}  ${machine.cpus} x ${machine.cpu}  Linux ${machine.kernel}  load ${machine.load_before[0].toFixed(2)} before, ${machine.load_after[0].toFixed(2)} after`);
  console.log(
    `greeting: ${config.greetings} rounds (+${config.warmup} warm-up); session: ${config.sessions} rounds, ${config.fixtures} fixtures; ` +
      `rate: ${config.rateSeconds} s per variant at concurrency ${config.concurrency}; memory: ${config.held} held connections`,
  );
  console.log("");
  console.log(
    table(
      ["variant", "greet med ms", "x", "greet p99 ms", "session med ms", "session p99 ms", `conn/s @${config.concurrency}`, "x", "CPU ms/greet", "x", "faults/greet", "CPU ms/session"],
      rows.map((r) => [
        r.label,
        fmt(r.greeting?.median), ratio(r.greeting?.median, floor?.greeting?.median),
        fmt(r.greeting?.p99),
        fmt(r.session?.median), fmt(r.session?.p99),
        fmt(r.rate?.per_second, 0), ratio(r.rate?.per_second, floor?.rate?.per_second, 2),
        fmt(r.greeting?.cpu_ms_per_connection, 2), ratio(r.greeting?.cpu_ms_per_connection, floor?.greeting?.cpu_ms_per_connection),
        fmt(r.greeting?.minor_faults_per_connection + r.greeting?.major_faults_per_connection, 0),
        fmt(r.session?.cpu_ms_per_connection, 2),
      ]),
    ),
  );
  console.log(`x: to the C floor of this run. CPU and page faults: tcpserver's reaped children (every process of a connection) over the phase, per connection.`);
  /** @type {[string, string, string][]} */
  const costs = [
    ["the front (front + compiled hello against the hello alone; the runtime refuses to serve without the front, so this pair stands for with and without it)", "front-hello", "hello"],
    ["qmail-popup's own work (front + Bun runtime against front + compiled hello)", "bun-compiled", "front-hello"],
    ["the runtime's confinement (front + Bun runtime against the same behind the front built without it)", "bun-compiled", "bun-unconfined"],
    ["page cache (the runtime paged in by exec against by a read)", "page-exec", "page-read"],
    ["resident mode against the C floor (issue #19: greeting <= 1.2x, CPU <= 1.25x)", "resident", "floor"],
    ...rows.filter((r) => r.id.startsWith("ab-")).map((r) => /** @type {[string, string, string]} */ ([`${r.label} against the project`, r.id, "bun-compiled"])),
  ];
  console.log("");
  for (const [what, a, b] of costs) if (byId.has(a) && byId.has(b)) console.log(`${what}:\n  ${difference(byId.get(a), byId.get(b))}`);
  console.log("");
  console.log(
    `memory: MiB per connection, median over ${config.held} held connections (PSS shares pages among them). Idle: after the greeting, ` +
      `all the connection's processes added up; logged in: the process tcpserver started, waiting, and its child, the login program.`,
  );
  console.log(
    table(
      ["variant", "idle: processes", "private KiB/conn", "PSS", "PrivDirty", "logged in: waits", "PSS", "PrivDirty", "child PSS", "child PrivDirty", "file that runs", "its runtime"],
      rows.map((r) => [
        r.label,
        [...(r.memory?.idle?.self?.processes ?? ["n/a"]), ...(r.memory?.idle?.resident ? ["resident"] : [])].join(","),
        r.memory?.idle?.per_connection_kB === undefined ? "n/a" : r.memory.idle.per_connection_kB.toFixed(0),
        mb(r.memory?.idle?.self?.pss_kB), mb(r.memory?.idle?.self?.private_dirty_kB),
        r.memory?.loggedIn?.self?.processes?.join(",") ?? "n/a",
        mb(r.memory?.loggedIn?.self?.pss_kB, 2), mb(r.memory?.loggedIn?.self?.private_dirty_kB, 2),
        mb(r.memory?.loggedIn?.child?.pss_kB, 2), mb(r.memory?.loggedIn?.child?.private_dirty_kB, 2),
        size(r.size.bytes), r.size.interpreter ? size(r.size.interpreter_bytes) : "-",
      ]),
    ),
  );
  const stand = floor?.memory?.idle?.stand_in;
  if (stand) console.log(`the C floor's idle connections: ${stand.join(" ")} (printf exits at once), ${fmt(floor.memory.idle.per_connection_kB, 0)} private KiB per idle connection`);
  const hold = report.resident_hold;
  if (hold) {
    const m = hold.memory;
    console.log(
      `resident mode, ${hold.held} of ${hold.wanted} idle connections held at once (${hold.workers} workers, at most ${hold.sessions_per_worker} sessions each): ` +
        `${fmt(hold.seconds, 1)} s to open and greet them all; ` +
        (m
          ? `total private ${mb(m.total_private_kB)} MiB (${m.fronts} fronts ${mb(m.fronts_private_kB)} MiB, the resident ${mb(m.resident_private_kB)} MiB, ${mb(m.resident_private_before_kB)} MiB before), ` +
            `PSS ${mb(m.total_pss_kB)} MiB; per connection ${fmt(m.per_connection_kB, 0)} private KiB (the front's and the resident's growth), ${fmt(m.total_pss_per_connection_kB, 0)} KiB PSS`
          : "no memory read") +
        (hold.errors.length ? `; ${hold.errors.length} errors, first: ${hold.errors[0]}` : ""),
    );
  }
  const front = rows.find((r) => r.size.front_bytes !== undefined);
  if (front) console.log(`the front (${front.size.front}): ${size(front.size.front_bytes)}, in every "front +" row besides the file that runs`);
  const notes = [];
  for (const r of rows) {
    const errors = [...(r.greeting?.errors ?? []), ...(r.session?.errors ?? []), ...(r.rate?.errors ?? []), ...(r.memory?.idle?.errors ?? []), ...(r.memory?.loggedIn?.errors ?? [])];
    if (errors.length) notes.push(`${r.id}: ${errors.length} errors, first: ${errors[0]}`);
    if (r.other_stderr.count) notes.push(`${r.id}: ${r.other_stderr.count} other stderr lines, first: ${r.other_stderr.first[0]}`);
    // The C qmail-popup ends every session with die(): exit 1.
    const odd = Object.entries(r.exit_statuses).filter(([status]) => status !== "exit 0" && !(r.id === "ref" && status === "exit 1"));
    if (odd.length) notes.push(`${r.id}: exit statuses ${JSON.stringify(r.exit_statuses)}`);
  }
  for (const skip of report.skipped) notes.push(`${skip.id}: skipped: ${skip.why}`);
  if (notes.length) console.log("");
  for (const note of notes) console.log(`note: ${note}`);
}
