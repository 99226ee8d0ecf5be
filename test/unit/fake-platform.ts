// A Platform for serve's tests. Reads are scripted per descriptor, writes
// recorded per descriptor, the clock moves only when a read waits (a read
// with nothing left to come waits out its deadline at once), and exit
// throws, as the process would end there. It keeps the contract the real
// platforms keep (src/platform/types.ts): readLinePart returns at most up
// to the first LF, and no read is made into an empty buffer (it throws).

import { ALIVE } from "../../src/core/front.ts";
import type { Platform } from "../../src/platform/types.ts";

/**
 * What comes to a descriptor, in order: bytes (a string is one byte per
 * char), time passing with nothing, or end of file. After the last, nothing
 * ever comes: a read waits until its deadline.
 */
export type Arrival = string | Uint8Array | { readonly waitMs: number } | "eof";

/** What exit throws: the process ends here with this status. */
export class Exit extends Error {
  constructor(readonly status: number) {
    super(`exit ${status}`);
  }
}

/** A read into a buffer of no bytes: never made by a correct caller. */
export class EmptyBufferRead extends Error {}

export interface FakeOptions {
  /** The control socket's number; undefined as when the runtime is started without one. Default 10. */
  readonly controlFd?: number | undefined;
  /** What the front says on the control socket (the introduction), in chunks; after them, end of file. */
  readonly control?: readonly Arrival[];
  /** What arrives on each descriptor. */
  readonly reads?: Readonly<Record<number, readonly Arrival[]>>;
  /** Descriptors whose writes fail (the peer is gone). */
  readonly brokenWrites?: readonly number[];
  readonly unixSeconds?: number;
  readonly startMs?: number;
  /**
   * Whether exit throws Exit (default). main() calls exit where no one
   * awaits it, so a thrown Exit would be an unhandled rejection: for main,
   * exit records the status and returns, as if the process had ended.
   */
  readonly exitThrows?: boolean;
}

/** One read asked of the fake: where, how much room, and what it gave. */
export interface ReadCall {
  readonly kind: "readLinePart" | "read" | "readControl";
  readonly fd: number;
  /** The buffer handed in, kept: what is left in it after the session is visible. */
  readonly buffer: Uint8Array;
  readonly deadlineMs: number | undefined;
  readonly result: number | "timeout";
}

const LF = 0x0a;

export const latin1 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
export const bytesOfLatin1 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "latin1"));

class Input {
  /** Arrived and not yet read. */
  pending: Uint8Array = new Uint8Array(0);
  constructor(readonly script: Arrival[]) {}
}

export class FakePlatform implements Platform {
  readonly controlFd: number | undefined;
  /** Every read asked, in order. */
  readonly reads: ReadCall[] = [];
  /** Everything written, per descriptor (copies, as written). */
  private readonly writes = new Map<number, Uint8Array[]>();
  /** The arrays handed to writeControl, kept: they may be wiped after. */
  readonly handedToControl: Uint8Array[] = [];
  /** What the front received on the control socket, as it was when written. */
  private readonly controlCopies: Uint8Array[] = [];
  /** Each call, in order: `version`, `write 1`, `readLinePart 0`, `writeControl`, `forbidDumps`, `exit 0`, … (keep-alives apart). */
  readonly events: string[] = [];
  /** The versions said to the front (the first writeControl, if it holds one), apart from said(). */
  readonly versions: string[] = [];
  /** Where each keep-alive (`alive`) was said: the number of events before it. Apart from events and said(). */
  readonly alivesAt: number[] = [];
  readonly exits: number[] = [];
  /** Resolves with the first exit status. */
  readonly exited: Promise<number>;
  private resolveExited!: (status: number) => void;
  private now: number;
  private readonly inputs = new Map<number, Input>();
  private readonly control: Input;
  private readonly brokenWrites: ReadonlySet<number>;
  private readonly seconds: number;
  private readonly exitThrows: boolean;

  constructor(options: FakeOptions = {}) {
    this.controlFd = "controlFd" in options ? options.controlFd : 10;
    this.control = new Input([...(options.control ?? []), "eof"]);
    for (const [fd, script] of Object.entries(options.reads ?? {})) this.inputs.set(Number(fd), new Input([...script]));
    this.brokenWrites = new Set(options.brokenWrites ?? []);
    this.seconds = options.unixSeconds ?? 1_700_000_000;
    this.now = options.startMs ?? 5_000;
    this.exitThrows = options.exitThrows ?? true;
    this.exited = new Promise((resolve) => (this.resolveExited = resolve));
  }

  unixSeconds(): number {
    return this.seconds;
  }

  nowMs(): number {
    return this.now;
  }

  async readLinePart(fd: number, buffer: Uint8Array, deadlineMs: number): Promise<number | "timeout"> {
    return this.take("readLinePart", fd, this.inputOf(fd), buffer, deadlineMs);
  }

  async read(fd: number, buffer: Uint8Array, deadlineMs: number): Promise<number | "timeout"> {
    return this.take("read", fd, this.inputOf(fd), buffer, deadlineMs);
  }

  readControl(fd: number, buffer: Uint8Array): number {
    if (fd !== this.controlFd) throw new Error(`readControl on fd ${fd}, the control socket is ${this.controlFd}`);
    const got = this.take("readControl", fd, this.control, buffer, undefined);
    if (got === "timeout") throw new Error("the control script ran out without an end of file");
    return got;
  }

  writeControl(fd: number, bytes: Uint8Array): boolean {
    if (fd !== this.controlFd) throw new Error(`writeControl on fd ${fd}, the control socket is ${this.controlFd}`);
    const text = latin1(bytes);
    if (text === latin1(ALIVE)) {
      this.alivesAt.push(this.events.length);
      return true;
    }
    const version = /^([0-9]+):version=(.*),$/s.exec(text);
    if (version !== null && this.handedToControl.length === 0 && this.versions.length === 0) {
      this.events.push("version");
      this.versions.push(version[2]!);
      return true;
    }
    this.events.push("writeControl");
    this.handedToControl.push(bytes);
    this.controlCopies.push(bytes.slice());
    return true;
  }

  async write(fd: number, bytes: Uint8Array, _deadlineMs: number): Promise<boolean> {
    this.events.push(`write ${fd}`);
    if (this.brokenWrites.has(fd)) return false;
    const list = this.writes.get(fd) ?? [];
    list.push(bytes.slice());
    this.writes.set(fd, list);
    return true;
  }

  forbidDumps(): void {
    this.events.push("forbidDumps");
  }

  endWithFront(frontPid: number): void {
    this.events.push(`endWithFront ${frontPid}`);
  }

  exit(status: number): never {
    this.events.push(`exit ${status}`);
    this.exits.push(status);
    this.resolveExited(status);
    if (this.exitThrows) throw new Exit(status);
    return undefined as never;
  }

  /** What was written to fd, as a byte string; undefined if nothing ever was. */
  written(fd: number): string | undefined {
    const list = this.writes.get(fd);
    return list === undefined ? undefined : list.map(latin1).join("");
  }

  /** Descriptors written to, in ascending order. */
  writtenFds(): number[] {
    return [...this.writes.keys()].sort((a, b) => a - b);
  }

  /** What the front received on the control socket, as a byte string: the version and keep-alives apart. */
  said(): string {
    return this.controlCopies.map(latin1).join("");
  }

  /** What is still to be read on fd: arrived but unread, then what is yet to arrive. */
  unread(fd: number): string {
    const input = this.inputs.get(fd);
    if (input === undefined) return "";
    const rest = input.script.map((arrival) => (typeof arrival === "string" ? arrival : arrival instanceof Uint8Array ? latin1(arrival) : ""));
    return latin1(input.pending) + rest.join("");
  }

  private inputOf(fd: number): Input {
    let input = this.inputs.get(fd);
    if (input === undefined) {
      input = new Input([]);
      this.inputs.set(fd, input);
    }
    return input;
  }

  /**
   * The read itself: waits (moving the clock) until bytes are there, end of
   * file, or the deadline; then gives at most buffer.length bytes, and for
   * readLinePart no byte past the first LF.
   */
  private take(kind: ReadCall["kind"], fd: number, input: Input, buffer: Uint8Array, deadlineMs: number | undefined): number | "timeout" {
    this.events.push(`${kind} ${fd}`);
    if (buffer.length === 0) throw new EmptyBufferRead(`${kind} on fd ${fd} into an empty buffer`);
    const result = this.arrive(input, deadlineMs);
    let got: number | "timeout" = result === "ready" ? 0 : result === "eof" ? 0 : "timeout";
    if (result === "ready") {
      let length = Math.min(buffer.length, input.pending.length);
      if (kind === "readLinePart") {
        const lf = input.pending.subarray(0, length).indexOf(LF);
        if (lf >= 0) length = lf + 1;
      }
      buffer.set(input.pending.subarray(0, length));
      input.pending = input.pending.subarray(length);
      got = length;
    }
    this.reads.push({ kind, fd, buffer, deadlineMs, result: got });
    return got;
  }

  private arrive(input: Input, deadlineMs: number | undefined): "ready" | "eof" | "timeout" {
    for (;;) {
      if (input.pending.length > 0) return "ready";
      const next = input.script[0];
      if (next === undefined) {
        if (deadlineMs === undefined) return "timeout";
        this.now = Math.max(this.now, deadlineMs);
        return "timeout";
      }
      if (next === "eof") return "eof";
      if (typeof next === "string" || next instanceof Uint8Array) {
        input.pending = typeof next === "string" ? bytesOfLatin1(next) : next.slice();
        input.script.shift();
        continue;
      }
      if (deadlineMs !== undefined && this.now + next.waitMs > deadlineMs) {
        input.script[0] = { waitMs: this.now + next.waitMs - deadlineMs };
        this.now = Math.max(this.now, deadlineMs);
        return "timeout";
      }
      this.now += next.waitMs;
      input.script.shift();
    }
  }
}
