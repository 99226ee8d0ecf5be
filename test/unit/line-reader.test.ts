import { describe, expect, it } from "vitest";
import { COMMAND_LINE_LIMIT, LineReader, type LineEvent } from "../../src/core/line-reader.ts";

/** The bytes of a string, one byte per character (latin1): `\xe9` is the byte 0xe9. */
const bin = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "latin1"));
const repeat = (byte: string, count: number): string => byte.repeat(count);

/** Feeds a chunk to the end, as a caller would, collecting every event in order. */
function feedAll(reader: LineReader, chunk: Uint8Array): LineEvent[] {
  const events: LineEvent[] = [];
  let rest = chunk;
  while (rest.length > 0) {
    const { consumed, event } = reader.feed(rest);
    expect(consumed).toBeGreaterThan(0);
    expect(consumed).toBeLessThanOrEqual(rest.length);
    if (event !== undefined) events.push(event);
    rest = rest.subarray(consumed);
  }
  return events;
}

/** Feeds one byte at a time; every feed takes exactly its one byte. */
function feedBytewise(reader: LineReader, chunk: Uint8Array): LineEvent[] {
  const events: LineEvent[] = [];
  for (let i = 0; i < chunk.length; i++) {
    const { consumed, event } = reader.feed(chunk.subarray(i, i + 1));
    expect(consumed).toBe(1);
    if (event !== undefined) events.push(event);
  }
  return events;
}

const line = (text: string): LineEvent => ({ kind: "line", line: bin(text) });

/** The reader's private buffer, to show what stays in memory. */
const internalBuffer = (reader: LineReader): Uint8Array => (reader as unknown as { buffer: Uint8Array }).buffer;

describe("line endings", () => {
  it("ends a line at LF", () => {
    const reader = new LineReader();
    const result = reader.feed(bin("USER alice\n"));
    expect(result.consumed).toBe(11);
    expect(result.event).toEqual(line("USER alice"));
  });

  it("drops one CR immediately before the LF", () => {
    const result = new LineReader().feed(bin("USER alice\r\n"));
    expect(result.consumed).toBe(12);
    expect(result.event).toEqual(line("USER alice"));
  });

  it("drops exactly one CR: `a\\r\\r\\n` keeps one CR", () => {
    expect(new LineReader().feed(bin("a\r\r\n")).event).toEqual(line("a\r"));
  });

  it("keeps a bare CR as an ordinary byte", () => {
    expect(new LineReader().feed(bin("a\rb\r\n")).event).toEqual(line("a\rb"));
    expect(new LineReader().feed(bin("\rNOOP\n")).event).toEqual(line("\rNOOP"));
  });

  it("does not end a line at a bare CR, even at the end of a chunk", () => {
    const reader = new LineReader();
    const first = reader.feed(bin("NOOP\r"));
    expect(first).toEqual({ consumed: 5 });
    expect(reader.feed(bin("x\r\n")).event).toEqual(line("NOOP\rx"));
  });

  it("drops a CR that arrived in an earlier chunk than its LF", () => {
    const reader = new LineReader();
    expect(reader.feed(bin("NOOP\r")).event).toBeUndefined();
    expect(reader.feed(bin("\n")).event).toEqual(line("NOOP"));
  });

  it("gives an empty line for CRLF and for LF alone", () => {
    expect(new LineReader().feed(bin("\r\n")).event).toEqual(line(""));
    expect(new LineReader().feed(bin("\n")).event).toEqual(line(""));
  });

  it("passes 8-bit bytes through unchanged", () => {
    const reader = new LineReader();
    const event = reader.feed(bin("PASS \xe9t\xe9\xff\xc3\x28\r\n")).event;
    expect(event).toEqual({ kind: "line", line: new Uint8Array([...bin("PASS "), 0xe9, 0x74, 0xe9, 0xff, 0xc3, 0x28]) });
  });
});

describe("feeding stops after the first LF", () => {
  it("reports only the bytes up to and including the LF as consumed", () => {
    const reader = new LineReader();
    const input = bin("PASS secret\r\nSTAT\r\nLIST\r\n");
    const result = reader.feed(input);
    expect(result.consumed).toBe(13);
    expect(result.event).toEqual(line("PASS secret"));
    // Nothing after the LF was taken: the reader holds nothing of STAT.
    expect(reader.pending).toBe(0);
    // The rest, fed again, is read line by line.
    expect(feedAll(reader, input.subarray(result.consumed))).toEqual([line("STAT"), line("LIST")]);
  });

  it("takes a whole chunk without LF and reports no event", () => {
    const reader = new LineReader();
    const result = reader.feed(bin("USER al"));
    expect(result).toEqual({ consumed: 7 });
    expect(reader.pending).toBe(7);
    expect(reader.feed(bin("ice\r\n"))).toEqual({ consumed: 5, event: line("USER alice") });
    expect(reader.pending).toBe(0);
  });

  it("takes nothing from an empty chunk", () => {
    expect(new LineReader().feed(new Uint8Array(0))).toEqual({ consumed: 0 });
  });

  it("gives the same event one byte at a time as in one feed", () => {
    const input = bin("APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n");
    const whole = feedAll(new LineReader(), input);
    const bytewise = feedBytewise(new LineReader(), input);
    expect(whole).toEqual([line("APOP mrose c4c9334bac560ecc979e58001b3e22fb")]);
    expect(bytewise).toEqual(whole);
  });

  it("gives the same events for several lines, too-long and NUL lines whatever the chunking", () => {
    const input = bin("NOOP\r\n" + repeat("x", 1500) + "\r\nUS\0ER a\r\nQUIT\r\n");
    const expected: LineEvent[] = [line("NOOP"), { kind: "too-long" }, { kind: "nul" }, line("QUIT")];
    expect(feedAll(new LineReader(), input)).toEqual(expected);
    expect(feedBytewise(new LineReader(), input)).toEqual(expected);
    for (const size of [2, 3, 7, 100, 1023, 1024, 1025]) {
      const reader = new LineReader();
      const events: LineEvent[] = [];
      for (let start = 0; start < input.length; start += size) events.push(...feedAll(reader, input.subarray(start, start + size)));
      expect(events, `chunks of ${size}`).toEqual(expected);
    }
  });

  it("returns a line that later feeds do not change (a copy, not a view of the buffer)", () => {
    const reader = new LineReader();
    const first = reader.feed(bin("USER alice\r\n")).event;
    reader.feed(bin("PASS zzzzzzzzzzzz\r\n"));
    reader.feed(bin("half a line"));
    reader.wipe();
    expect(first).toEqual(line("USER alice"));
  });
});

describe("the 1024-byte limit, CRLF included", () => {
  it("is 1024 by default", () => {
    expect(COMMAND_LINE_LIMIT).toBe(1024);
    expect(new LineReader().limit).toBe(1024);
  });

  it("accepts a 1022-byte line + CRLF (1024 bytes)", () => {
    const text = repeat("a", 1022);
    expect(feedAll(new LineReader(), bin(text + "\r\n"))).toEqual([line(text)]);
  });

  it("refuses a 1023-byte line + CRLF (1025 bytes) as too-long", () => {
    expect(feedAll(new LineReader(), bin(repeat("a", 1023) + "\r\n"))).toEqual([{ kind: "too-long" }]);
  });

  it("accepts a 1023-byte line + bare LF (1024 bytes)", () => {
    const text = repeat("a", 1023);
    expect(feedAll(new LineReader(), bin(text + "\n"))).toEqual([line(text)]);
  });

  it("refuses a 1024-byte line + bare LF (1025 bytes)", () => {
    expect(feedAll(new LineReader(), bin(repeat("a", 1024) + "\n"))).toEqual([{ kind: "too-long" }]);
  });

  it("keeps the boundary the same one byte at a time", () => {
    const ok = repeat("b", 1022);
    expect(feedBytewise(new LineReader(), bin(ok + "\r\n"))).toEqual([line(ok)]);
    expect(feedBytewise(new LineReader(), bin(repeat("b", 1023) + "\r\n"))).toEqual([{ kind: "too-long" }]);
  });

  it("applies a smaller limit given to the constructor", () => {
    const reader = new LineReader(8);
    expect(feedAll(reader, bin("123456\r\n"))).toEqual([line("123456")]);
    expect(feedAll(reader, bin("1234567\r\n"))).toEqual([{ kind: "too-long" }]);
    expect(feedAll(reader, bin("1234567\n"))).toEqual([line("1234567")]);
  });

  it("reports too-long only when the LF arrives", () => {
    const reader = new LineReader();
    expect(reader.feed(bin(repeat("z", 5000)))).toEqual({ consumed: 5000 });
    expect(reader.feed(bin("zz\r\nNOOP\r\n"))).toEqual({ consumed: 4, event: { kind: "too-long" } });
  });

  it("reads the next line normally after a too-long one", () => {
    const reader = new LineReader();
    const input = bin(repeat("z", 5000) + "\r\nNOOP\r\n");
    const first = reader.feed(input);
    expect(first).toEqual({ consumed: 5002, event: { kind: "too-long" } });
    expect(reader.pending).toBe(0);
    expect(reader.feed(input.subarray(first.consumed))).toEqual({ consumed: 6, event: line("NOOP") });
  });

  it("keeps memory bounded: 10 MB without LF never holds more than the limit", () => {
    const reader = new LineReader();
    const chunk = new Uint8Array(64 * 1024).fill(0x41);
    let fed = 0;
    let maxPending = 0;
    while (fed < 10 * 1024 * 1024) {
      const result = reader.feed(chunk);
      expect(result.consumed).toBe(chunk.length);
      expect(result.event).toBeUndefined();
      maxPending = Math.max(maxPending, reader.pending);
      fed += chunk.length;
    }
    expect(maxPending).toBeLessThanOrEqual(reader.limit);
    expect(internalBuffer(reader).length).toBeLessThanOrEqual(reader.limit);
    expect(reader.feed(bin("\r\nQUIT\r\n"))).toEqual({ consumed: 2, event: { kind: "too-long" } });
    expect(reader.pending).toBe(0);
    expect(feedAll(reader, bin("QUIT\r\n"))).toEqual([line("QUIT")]);
  });
});

describe("NUL bytes", () => {
  it.each([
    ["at the start", "\0USER alice\r\n"],
    ["inside the verb", "US\0ER alice\r\n"],
    ["inside the argument", "PASS se\0cret\r\n"],
    ["just before the CRLF", "PASS secret\0\r\n"],
    ["between CR and LF", "PASS secret\r\0\n"],
    ["alone", "\0\n"],
  ])("gives `nul` for a NUL %s", (_where, text) => {
    expect(feedAll(new LineReader(), bin(text))).toEqual([{ kind: "nul" }]);
  });

  it("reads the next line normally after a NUL line", () => {
    const reader = new LineReader();
    expect(feedAll(reader, bin("USER a\0b\r\nUSER ab\r\n"))).toEqual([{ kind: "nul" }, line("USER ab")]);
  });

  it("gives `nul` when the NUL came in an earlier feed than the LF", () => {
    const reader = new LineReader();
    expect(reader.feed(bin("PASS a\0")).event).toBeUndefined();
    expect(reader.feed(bin("bc\r\n")).event).toEqual({ kind: "nul" });
    expect(reader.feed(bin("NOOP\r\n")).event).toEqual(line("NOOP"));
  });
});

describe("wipe()", () => {
  it("zeroes what the reader holds of an unfinished line", () => {
    const reader = new LineReader();
    reader.feed(bin("PASS hunter2"));
    expect(reader.pending).toBe(12);
    expect(internalBuffer(reader).some((byte) => byte !== 0)).toBe(true);
    reader.wipe();
    expect(reader.pending).toBe(0);
    expect(internalBuffer(reader).every((byte) => byte === 0)).toBe(true);
  });

  it("leaves nothing of a finished line in the buffer either", () => {
    const reader = new LineReader();
    reader.feed(bin("PASS hunter2\r\n"));
    expect(internalBuffer(reader).every((byte) => byte === 0)).toBe(true);
  });

  it("leaves the reader usable", () => {
    const reader = new LineReader();
    reader.feed(bin("PASS hunter2"));
    reader.wipe();
    expect(reader.feed(bin("NOOP\r\n"))).toEqual({ consumed: 6, event: line("NOOP") });
  });
});
