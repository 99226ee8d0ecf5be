// qmail-popup on Node: `node dist/qmail-popup-node.mjs hostname subprogram [args...]`.
import { nodePlatform } from "../platform/node.ts";
import { main } from "../main.ts";

main(nodePlatform());
