// The platform contract (src/platform/types.ts), exercised on real
// descriptors by one runtime: `platform-driver CONTROLFD node|bun|deno`,
// started as the front starts the runtime (the control socket's number
// its first argument). platforms.test.ts sets up the descriptors:
//
//   fd 1  a socket: the results, as JSON, written with the platform's own write
//   fd 3  a socket holding "A\r\nB\r\nLONG LINE\r\n"
//   fd 4  a pipe holding "A\r\nB\r\n", then end of file
//   fd 5  a socket on which nothing ever arrives (its peer stays open)
//   fd 6  a socket the test reads: "hello\r\n", then 1 MiB
//   fd 7  the control socket (blocking): 1 MiB to the front, then its answer and end of file
//   fd 8  a socket holding "READ ME\r\nTOO"
//   fd 9  a socket whose peer is gone
//
// It ends with platform.exit(42). Everything in its table is the same on
// every runtime (platforms.test.ts compares); timings are reported apart,
// for the test to bound. The numbers here are platforms.test.ts's too: it
// does not import this file, which runs when loaded.

import { readFileSync, readlinkSync } from "node:fs";
import type { Platform } from "../../src/platform/types.ts";

const RESULTS_STATUS = 42;
/** What the driver writes to fd 6 and to the control socket after "hello": more than a socket buffer holds. */
const LARGE_LENGTH = 1 << 20;
/** How long the reads on fd 5 wait for nothing. */
const IDLE_DEADLINE_MS = 300;
/** The control socket's answer is read into buffers this long. */
const CONTROL_ROOM = 5;

const LF = 0x0a;
const text = (bytes: Uint8Array): string => String.fromCharCode(...bytes);
const bytesOf = (value: string): Uint8Array => Uint8Array.from(value, (char) => char.charCodeAt(0));

/** The large writes: byte i is i % 251, a pattern that shows a byte lost or repeated. */
function large(): Uint8Array {
  const bytes = new Uint8Array(LARGE_LENGTH);
  for (let i = 0; i < LARGE_LENGTH; i++) bytes[i] = i % 251;
  return bytes;
}

/** What fd is (`socket`, `pipe`), so that a harness that set up something else shows. */
function kindOf(fd: number): string {
  return readlinkSync(`/proc/self/fd/${fd}`).replace(/:.*/, "");
}

/** Whether fd is in blocking mode: O_NONBLOCK (04000) clear in its flags. */
function blocking(fd: number): boolean {
  const flags = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "latin1"));
  return flags !== null && (parseInt(flags[1]!, 8) & 0o4000) === 0;
}

/** How a call ended: its value, or the name of what it threw. */
async function outcome<T>(call: () => Promise<T> | T): Promise<T | string> {
  try {
    return await call();
  } catch (error) {
    return `threw ${error instanceof Error ? error.name : String(error)}`;
  }
}

/**
 * One line through readLinePart, however many calls it takes (Node's
 * platform gives a byte a call, libc's a socket's whole line): each call
 * within its buffer, and none past an LF.
 */
async function lineThrough(platform: Platform, fd: number, room: number): Promise<{ line: string; withinContract: boolean }> {
  let line = "";
  let withinContract = true;
  for (;;) {
    const buffer = new Uint8Array(room);
    const got = await platform.readLinePart(fd, buffer, platform.nowMs() + 5000);
    if (got === "timeout" || got === 0) return { line: `${line}<${got}>`, withinContract };
    if (got > room) withinContract = false;
    const chunk = buffer.subarray(0, got);
    const lf = chunk.indexOf(LF);
    if (lf >= 0 && lf !== got - 1) withinContract = false;
    line += text(chunk);
    if (lf >= 0) return { line, withinContract };
  }
}

/** A read that must time out: its result and how long it took. */
async function idle(platform: Platform, call: (deadlineMs: number) => Promise<number | "timeout">): Promise<{ result: number | "timeout"; elapsedMs: number }> {
  const start = Date.now();
  const result = await call(platform.nowMs() + IDLE_DEADLINE_MS);
  return { result, elapsedMs: Date.now() - start };
}

async function exercise(platform: Platform) {
  const deadline = () => platform.nowMs() + 5000;
  const seconds = platform.unixSeconds();
  const descriptors = [3, 4, 5, 6, 7, 8, 9].map((fd) => `${fd} ${kindOf(fd)}`);

  // fd 3, a socket: a line at a time, the rest left unread; an empty buffer refused without a read.
  const socketA = await lineThrough(platform, 3, 64);
  const emptyLinePart = await outcome(() => platform.readLinePart(3, new Uint8Array(0), deadline()));
  const emptySubarrayLinePart = await outcome(() => platform.readLinePart(3, new Uint8Array(16).subarray(16), deadline()));
  const emptyRead = await outcome(() => platform.read(3, new Uint8Array(0), deadline()));
  // A deadline already passed ends the read though bytes are waiting, and takes none of them.
  const pastLinePart = await platform.readLinePart(3, new Uint8Array(64), platform.nowMs() - 1);
  const socketB = await lineThrough(platform, 3, 64);
  const socketLong = await lineThrough(platform, 3, 4);

  // fd 4, a pipe: the same, then end of file.
  const pipeA = await lineThrough(platform, 4, 64);
  const pipeB = await lineThrough(platform, 4, 64);
  const pipeEnd = await platform.readLinePart(4, new Uint8Array(64), deadline());

  // fd 5: nothing comes.
  const idleLinePart = await idle(platform, (deadlineMs) => platform.readLinePart(5, new Uint8Array(64), deadlineMs));
  const idleRead = await idle(platform, (deadlineMs) => platform.read(5, new Uint8Array(64), deadlineMs));

  // fd 8: read takes what is there, past an LF, within its buffer.
  const readFirst = new Uint8Array(4);
  const readFirstGot = await platform.read(8, readFirst, deadline());
  const pastRead = await platform.read(8, new Uint8Array(64), platform.nowMs() - 1);
  const readRest = new Uint8Array(64);
  const readRestGot = await platform.read(8, readRest, deadline());

  // fd 6: writes, a short one and one larger than the socket's buffer.
  const writeShort = await platform.write(6, bytesOf("hello\r\n"), deadline());
  const writeLarge = await platform.write(6, large(), deadline());
  // fd 6 was blocking: a write leaves it so (fd 2 and fd 5 are shared with the launcher's logger).
  const writeLeavesBlocking = blocking(6);

  // fd 9: the peer is gone (its end of file says so first): the write fails, the process lives.
  const goneEnd = await platform.readLinePart(9, new Uint8Array(8), deadline());
  const writeGone = await platform.write(9, bytesOf("anyone?\r\n"), deadline());

  // fd 7, the control socket: 1 MiB out, then the front's answer, CONTROL_ROOM bytes at a time, then end of file.
  const controlWrite = platform.writeControl(7, large());
  const controlReads: string[] = [];
  for (let i = 0; i < 10; i++) {
    const buffer = new Uint8Array(CONTROL_ROOM);
    const got = platform.readControl(7, buffer);
    controlReads.push(got === 0 ? "<0>" : text(buffer.subarray(0, got)));
    if (got === 0) break;
  }
  const controlStaysBlocking = blocking(7);

  return {
    table: {
      descriptors,
      controlFd: platform.controlFd,
      unixSecondsIsNow: Number.isInteger(seconds) && Math.abs(seconds - Date.now() / 1000) < 5,
      socketLines: [socketA, socketB, socketLong],
      emptyLinePart,
      emptySubarrayLinePart,
      emptyRead,
      pastLinePart,
      pastRead,
      pipeLines: [pipeA, pipeB],
      pipeEnd,
      idleLinePart: idleLinePart.result,
      idleRead: idleRead.result,
      readFirst: [readFirstGot, text(readFirst.subarray(0, Number(readFirstGot)))],
      readRest: [readRestGot, text(readRest.subarray(0, Number(readRestGot)))],
      writeShort,
      writeLarge,
      writeLeavesBlocking,
      goneEnd,
      writeGone,
      controlWrite,
      controlReads,
      controlStaysBlocking,
    },
    timings: { idleLinePartMs: idleLinePart.elapsedMs, idleReadMs: idleRead.elapsedMs },
  };
}

async function platformNamed(name: string | undefined): Promise<Platform> {
  switch (name) {
    case "node":
      return (await import("../../src/platform/node.ts")).nodePlatform();
    case "bun":
      return (await import("../../src/platform/bun.ts")).bunPlatform();
    case "deno":
      return (await import("../../src/platform/deno.ts")).denoPlatform();
    default:
      throw new Error(`usage: platform-driver CONTROLFD node|bun|deno (not ${name})`);
  }
}

async function main(): Promise<void> {
  const platform = await platformNamed(process.argv[3]);
  const results = await exercise(platform);
  const written = await platform.write(1, bytesOf(JSON.stringify(results) + "\n"), platform.nowMs() + 5000);
  platform.exit(written ? RESULTS_STATUS : 1);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(2);
});
