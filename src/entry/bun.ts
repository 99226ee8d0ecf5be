// qmail-popup on Bun: the compiled binary, or `bun src/entry/bun.ts hostname subprogram [args...]`.
import { bunPlatform } from "../platform/bun.ts";
import { main } from "../main.ts";

main(bunPlatform());
