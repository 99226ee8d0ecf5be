// qmail-popup's runtime on Node: `node dist/qmail-popup-node.mjs`, started by the front.
import { nodePlatform } from "../platform/node.ts";
import { main } from "../main.ts";

// SIGUSR1 would open Node's inspector, a debugger anyone on the host can
// reach. A listener of our own takes the signal instead: it is ignored.
// (Node >= 22.14 has --disable-sigusr1 for the window before this line:
// the SEA is built with it; see the man page for the bundle.)
process.on("SIGUSR1", () => {});

main(nodePlatform());
