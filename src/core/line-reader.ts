// The command-line reader: accumulates bytes up to LF into a fixed buffer.
// The caller feeds it only bytes it has already read, and reads no further
// than the LF (see the platform's readLine), so nothing past a line is ever
// consumed from the descriptor.

import { allocateBytes, copyBytes } from "./bytes.ts";

export type LineEvent =
  | { readonly kind: "line"; readonly line: Uint8Array }
  | { readonly kind: "too-long" }
  | { readonly kind: "nul" };

const LF = 0x0a;
const CR = 0x0d;

/** The longest command line accepted, CRLF included (RFC 1939 allows 255; clients send less). */
export const COMMAND_LINE_LIMIT = 1024;

/**
 * The most a client may send before a login, in all its lines: far more
 * than any login takes (a few commands and a SASL response or two), and
 * little enough that a client streaming bytes at any rate costs the
 * runtime a bounded time (the manual's BOUNDS). Past it the session ends.
 */
export const INPUT_LIMIT = 65536;

export class LineReader {
  private readonly buffer: Uint8Array;
  private length = 0;
  private tooLong = false;
  private sawNul = false;

  /** limit: the longest line accepted, LF and its CR included (a feed may ask for less). */
  constructor(readonly limit: number = COMMAND_LINE_LIMIT) {
    this.buffer = allocateBytes(limit);
  }

  /**
   * Feeds bytes; stops after the first LF. Returns how many bytes it took
   * and, when that LF ended a line, what the line was. Bytes of an
   * over-long line are counted and dropped, so memory stays at `limit`.
   */
  feed(chunk: Uint8Array, limit: number = this.limit): { consumed: number; event?: LineEvent } {
    limit = Math.min(limit, this.limit);
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i]!;
      if (byte === LF) return { consumed: i + 1, event: this.finishLine() };
      if (byte === 0) this.sawNul = true;
      // Keep one byte of room for the LF itself: the limit counts the CRLF.
      if (this.length < limit - 1) this.buffer[this.length++] = byte;
      else this.tooLong = true;
    }
    return { consumed: chunk.length };
  }

  /** Bytes held for the current, unfinished line: never more than the limit. */
  get pending(): number {
    return this.length;
  }

  /** Drops the current line and overwrites what the reader holds (a password may have passed through it). */
  wipe(): void {
    this.buffer.fill(0);
    this.length = 0;
    this.tooLong = false;
    this.sawNul = false;
  }

  private finishLine(): LineEvent {
    let end = this.length;
    if (end > 0 && this.buffer[end - 1] === CR) end--;
    const event: LineEvent = this.tooLong
      ? { kind: "too-long" }
      : this.sawNul
        ? { kind: "nul" }
        : { kind: "line", line: copyBytes(this.buffer.subarray(0, end)) };
    this.buffer.fill(0, 0, this.length);
    this.length = 0;
    this.tooLong = false;
    this.sawNul = false;
    return event;
  }
}
