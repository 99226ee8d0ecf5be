// qmail-popup on Bun: the compiled binary, or `bun src/entry/bun.ts hostname subprogram [args...]`.
// `--resident ...`: a resident worker (src/resident/worker.ts), started by `qmail-popup --resident`.
import { bunPlatform } from "../platform/bun.ts";
import { main } from "../main.ts";

if (process.argv[2] === "--resident") void import("../resident/worker.ts").then(({ residentWorker }) => residentWorker(process.argv.slice(3)));
else main(bunPlatform());
