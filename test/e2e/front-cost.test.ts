// What a front costs in resident mode (issue #19), where it is most of a
// connection's cost: its own memory while it waits for the plan, and the page
// faults of a connection's processes. Linked with static glibc, the waiting
// front kept 80 KiB of its own; its end wiped all 256 KiB of the plan's
// buffer, faulting in pages nothing had written (99 faults a connection,
// where now about 30).

import { readFileSync } from "node:fs";
import { afterAll, expect, test } from "vitest";
import { FRONT_VARIANTS } from "../../scripts/lib/tcpserver.mjs";
import { Client, TcpServer } from "./harness.ts";

/** Resident mode, as every suite that asks for it runs it: dist/qmail-popup, the resident started once. */
const RESIDENT = FRONT_VARIANTS.find((variant) => variant.name === "resident")!;
const servers: TcpServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

/** Fields of /proc/PID/stat after the command's name (the third field first). */
function stat(pid: number): string[] {
  return readFileSync(`/proc/${pid}/stat`, "latin1").split(") ")[1]!.split(" ");
}

/** A connection to its greeting: the client and the pid of its front. */
async function greeted(server: TcpServer): Promise<{ client: Client; pid: number }> {
  const client = await Client.connect(server.port);
  await client.lines(1);
  expect(client.text).toMatch(/^\+OK[^\r\n]*\r\n$/);
  return { client, pid: await server.pidFor(client.localPort) };
}

async function quit(server: TcpServer, client: Client, pid: number): Promise<void> {
  await client.send("QUIT\r\n");
  expect(await client.untilClosed()).toMatch(/\r\n\+OK \r\n$/);
  await server.endOf(pid);
}

test("resident mode: a front waiting for its plan keeps at most 32 KiB of private memory", async () => {
  const server = await TcpServer.start({ variant: RESIDENT });
  servers.push(server);
  const { client, pid } = await greeted(server);
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, "latin1");
  const privateDirty = Number(/^Private_Dirty:\s+(\d+) kB$/m.exec(rollup)![1]);
  expect(privateDirty).toBeGreaterThan(0);
  expect(privateDirty, rollup).toBeLessThanOrEqual(32);
  await quit(server, client, pid);
});

test("resident mode: a connection's processes (a greeting and QUIT) take fewer than 50 page faults", async () => {
  const server = await TcpServer.start({ variant: RESIDENT });
  servers.push(server);
  const first = await greeted(server);
  // tcpserver: it reaps every process of a connection (the front), and counts their faults (cminflt).
  const tcpserver = Number(stat(first.pid)[1]);
  await quit(server, first.client, first.pid);
  const CONNECTIONS = 10;
  const before = Number(stat(tcpserver)[8]);
  for (let i = 0; i < CONNECTIONS; i++) {
    const { client, pid } = await greeted(server);
    await quit(server, client, pid);
  }
  const faults = (Number(stat(tcpserver)[8]) - before) / CONNECTIONS;
  expect(faults).toBeGreaterThan(0);
  expect(faults).toBeLessThan(50);
});
