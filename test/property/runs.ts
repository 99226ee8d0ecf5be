// How many cases a property runs: FUZZ_RUNS (make fuzz sets 200 000), else
// 1000; FUZZ_SEED replays a failure. One place for every property file.

import fc from "fast-check";

const DEFAULT_RUNS = 1000;
export const RUNS = process.env.FUZZ_RUNS !== undefined && /^[0-9]+$/.test(process.env.FUZZ_RUNS) ? Number(process.env.FUZZ_RUNS) : DEFAULT_RUNS;
const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : undefined;
/** A long run may take minutes per property: no per-test timeout then. */
export const TIMEOUT = RUNS > DEFAULT_RUNS ? 24 * 3600 * 1000 : 30_000;

export function check<Ts extends [unknown, ...unknown[]]>(property: fc.IProperty<Ts>, runs = RUNS): void {
  fc.assert(property, { numRuns: runs, ...(SEED !== undefined ? { seed: SEED } : {}) });
}
