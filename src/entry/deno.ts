// qmail-popup on Deno: `deno run -A dist/qmail-popup-deno.mjs hostname subprogram [args...]`.
import { denoPlatform } from "../platform/deno.ts";
import { main } from "../main.ts";

main(denoPlatform());
