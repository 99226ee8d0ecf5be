// Resident mode's "full" (issue #19, item 4: "Resident absent, refusing,
// full or dying: the front starts its own runtime as today (or answers
// -ERR [SYS/TEMP], if the administrator says so), with a line on fd 2
// either way"). resident.test.ts covers absent and impostor; here, a
// resident at its session limit: QMAIL_POPUP_RESIDENT_SESSIONS=1, one
// worker, its one session held open.
//
// The positive control comes first in each case: with the held session
// closed, the next front is the resident's (it starts no runtime of its own).
// Synchronisation: tcpserver's -v lines, the client's bytes, /proc; no sleeps.

import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { ROOT, startResident } from "../../scripts/lib/tcpserver.mjs";
import { Client, TcpServer, makeHomes, standInResident } from "./harness.ts";

const FRONT = join(ROOT, "dist/qmail-popup");
const HERE = `/run/qmail-popup-test-${process.pid}`;
/** Long enough for a front's own runtime to greet on a busy machine; the resident's greets in milliseconds. */
const GREETING_MS = 15_000;
const homes = makeHomes(["alice"]);
const servers: { stop(): Promise<void> }[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

/** The processes whose parent is pid. */
function children(pid: number): number[] {
  return spawnSync("pgrep", ["-P", String(pid)], { encoding: "latin1" }).stdout.split("\n").filter(Boolean).map(Number);
}

/** A resident of one worker that serves one session at a time, and a tcpserver whose fronts hand their connections to it. */
async function fullable(name: string, only: boolean): Promise<{ socket: string; front: TcpServer }> {
  const socket = join(HERE, name);
  servers.push(await startResident(socket, FRONT, { PATH: "/usr/bin:/bin", QMAIL_POPUP_RESIDENT_SESSIONS: "1" }, 1));
  const variant = { name: "resident", command: [FRONT], env: { QMAIL_POPUP_RESIDENT: socket, ...(only ? { QMAIL_POPUP_RESIDENT_ONLY: "1" } : {}) } };
  const front = await TcpServer.start({ variant, homes });
  servers.push(front);
  return { socket, front };
}

/** A client greeted by the resident: its front has no child (no runtime of its own). */
async function servedByResident(front: TcpServer): Promise<Client> {
  const client = await Client.connect(front.port);
  const pid = await front.pidFor(client.localPort);
  await client.until(() => client.text.length > 0 || client.closed, "the resident's greeting", GREETING_MS);
  expect(client.text).toBe("+OK\r\n");
  expect(children(pid)).toEqual([]);
  return client;
}

async function quit(client: Client): Promise<void> {
  await client.send("QUIT\r\n");
  expect(await client.untilClosed()).toBe("+OK\r\n+OK \r\n");
}

describe("a resident at its session limit (QMAIL_POPUP_RESIDENT_SESSIONS=1, one worker, its session held open)", () => {
  test("the next front starts its own runtime, says so on fd 2, and serves the client; with the held session closed, the resident serves again", async () => {
    const { socket, front } = await fullable("full", false);
    // The positive control: the resident serves a session, and with it closed, the next one.
    await quit(await servedByResident(front));
    const held = await servedByResident(front);
    const before = front.log.length;

    // Full: this front must not wait in the socket's queue for a slot that may never free.
    const next = await Client.connect(front.port);
    const pid = await front.pidFor(next.localPort);
    await next.until(() => next.text.length > 0 || next.closed, "a greeting while the resident is full", GREETING_MS);
    expect(next.text).toBe("+OK\r\n");
    expect(front.log.slice(before)).toContain(`qmail-popup: resident ${socket}: full`);
    await next.send("USER alice\r\nPASS wonderland\r\nQUIT\r\n");
    expect(await next.untilClosed()).toBe("+OK\r\n+OK \r\n+OK \r\n+OK \r\n");
    expect(await front.endOf(pid)).toBe("0");

    await quit(held);
    await quit(await servedByResident(front));
  });

  test("with QMAIL_POPUP_RESIDENT_ONLY, the next front answers -ERR [SYS/TEMP] and says why on fd 2; with the held session closed, the resident serves again", async () => {
    const { socket, front } = await fullable("full-only", true);
    await quit(await servedByResident(front));
    const held = await servedByResident(front);
    const before = front.log.length;

    const next = await Client.connect(front.port);
    const pid = await front.pidFor(next.localPort);
    await next.until(() => next.closed, "an answer while the resident is full", GREETING_MS);
    expect(next.text).toBe("-ERR [SYS/TEMP] unable to run qmail-popup\r\n");
    expect(await front.endOf(pid)).toBe("1");
    const said = front.log.slice(before);
    expect(said).toContain(`qmail-popup: resident ${socket}: full`);
    expect(said).toContain("qmail-popup: QMAIL_POPUP_RESIDENT_ONLY is set: no runtime of our own\n");

    await quit(held);
    await quit(await servedByResident(front));
  });

  test("a resident that ends a front's connection without a word (as a worker dying before its first): the front serves the client with its own runtime and says so on fd 2", async () => {
    // A stand-in as the runtime's account (what the front's SO_PEERCRED check wants): it takes the hand-over, then closes.
    const account = Number(spawnSync("id", ["-u", "qmailpopup"], { encoding: "latin1" }).stdout.trim());
    const { socket, said, ended } = await standInResident(join(HERE, "wordless"), account);
    const front = await TcpServer.start({ variant: { name: "resident", command: [FRONT], env: { QMAIL_POPUP_RESIDENT: socket } }, homes });
    servers.push(front);
    const client = await Client.connect(front.port);
    const pid = await front.pidFor(client.localPort);
    await client.until(() => client.text.length > 0 || client.closed, "a greeting from the front's own runtime", GREETING_MS);
    await client.send("QUIT\r\n");
    expect(await client.untilClosed()).toBe("+OK\r\n+OK \r\n");
    expect(await front.endOf(pid)).toBe("0");
    expect(front.log).toContain(`qmail-popup: resident ${socket}: the connection was ended without a word: not used`);
    await ended;
    // The positive control: the stand-in did take the hand-over, bytes and descriptors.
    expect(said()).toMatch(/took bytes [1-9][0-9]* descriptors [1-9]/);
  });
});
