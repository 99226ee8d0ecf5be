// The checked libc wrapper (src/platform/libc.ts): no call can hand libc a
// length larger than the JavaScript buffer it writes into or reads from.
// The fake libc records what reaches it; a real one would write past the array.

import { describe, expect, it } from "vitest";
import { checked, checkedLength, libcDescriptorOps, type Libc } from "../../src/platform/libc.ts";

interface Call {
  readonly name: string;
  readonly length: number;
  readonly bufferLength: number;
}

/** The parent fakeLibc's getppid reports. */
const FRONT_PID = 4242;

/** A libc that records each call and answers as a blocking socket holding `pending` would. */
function fakeLibc(pending: Uint8Array = new Uint8Array(0)): { libc: Libc; calls: Call[]; flags: number[]; timeouts: number[] } {
  const calls: Call[] = [];
  /** The descriptor's file status flags after each F_SETFL. */
  const flags: number[] = [];
  const timeouts: number[] = [];
  let current = 0o2; // O_RDWR
  const libc: Libc = {
    poll: (fds, count, timeoutMs) => (calls.push({ name: "poll", length: count * 8, bufferLength: fds.byteLength }), timeouts.push(timeoutMs), 1),
    read: (_fd, buffer, length) => {
      calls.push({ name: "read", length, bufferLength: buffer.byteLength });
      const n = Math.min(length, pending.length);
      buffer.set(pending.subarray(0, n));
      return n;
    },
    write: (_fd, buffer, length) => (calls.push({ name: "write", length, bufferLength: buffer.byteLength }), length),
    recv: (_fd, buffer, length) => {
      calls.push({ name: "recv", length, bufferLength: buffer.byteLength });
      const n = Math.min(length, pending.length);
      buffer.set(pending.subarray(0, n));
      return n;
    },
    fcntl: (_fd, command, argument) => {
      if (command === 3) return current;
      current = argument;
      flags.push(argument);
      return 0;
    },
    prctl: () => (calls.push({ name: "prctl", length: 0, bufferLength: 0 }), 0),
    getppid: () => (calls.push({ name: "getppid", length: 0, bufferLength: 0 }), FRONT_PID),
    pwritev2: (_fd, iovec, count) => (calls.push({ name: "pwritev2", length: count * 16, bufferLength: iovec.byteLength }), 0),
  };
  return { libc, calls, flags, timeouts };
}

describe("checkedLength", () => {
  it("accepts 0 to the buffer's length", () => {
    expect(checkedLength(new Uint8Array(4), 0)).toBe(0);
    expect(checkedLength(new Uint8Array(4), 4)).toBe(4);
  });
  it.each([5, -1, 1.5, Number.NaN])("refuses %s for a buffer of 4", (length) => {
    expect(() => checkedLength(new Uint8Array(4), length)).toThrow(RangeError);
  });
  it("counts a subarray's own length, not its buffer's", () => {
    const whole = new Uint8Array(16);
    expect(() => checkedLength(whole.subarray(12), 5)).toThrow(RangeError);
    expect(checkedLength(whole.subarray(12), 4)).toBe(4);
  });
});

describe("checked: each call that takes a buffer", () => {
  const { libc, calls } = fakeLibc(new Uint8Array(64));
  const safe = checked(libc);
  it.each([
    ["read", () => safe.read(0, new Uint8Array(8), 9)],
    ["write", () => safe.write(1, new Uint8Array(8), 9)],
    ["recv", () => safe.recv(0, new Uint8Array(8), 9, 0)],
    ["poll", () => safe.poll(new Uint8Array(8), 2, 0)],
    ["pwritev2", () => safe.pwritev2!(1, new Uint8Array(16), 2, -1, 8)],
    ["read into an empty subarray", () => safe.read(0, new Uint8Array(8).subarray(8), 1)],
  ])("%s with a length past the buffer never reaches libc", (_name, call) => {
    const before = calls.length;
    expect(call).toThrow(RangeError);
    expect(calls.length).toBe(before);
  });
  it("lengths within the buffer pass unchanged", () => {
    calls.length = 0;
    safe.read(0, new Uint8Array(8), 8);
    safe.write(1, new Uint8Array(8), 3);
    safe.recv(0, new Uint8Array(8), 8, 2);
    safe.poll(new Uint8Array(8), 1, 0);
    expect(calls.map(({ name, length }) => `${name} ${length}`)).toEqual(["read 8", "write 3", "recv 8", "poll 8"]);
  });
});

describe("the descriptor operations on top of it", () => {
  const now = () => 0;
  it("readLinePart takes up to the first LF, never past it, and wipes what it only looked at", async () => {
    const { libc, calls } = fakeLibc(new TextEncoder().encode("USER a\r\nPASS secret\r\n"));
    const buffer = new Uint8Array(64);
    expect(await libcDescriptorOps(libc, "linux", now).readLinePart(0, buffer, 1000)).toBe(8);
    expect(new TextDecoder().decode(buffer.subarray(0, 8))).toBe("USER a\r\n");
    expect(buffer.subarray(8).every((byte) => byte === 0)).toBe(true);
    expect(calls.filter(({ name }) => name === "read").map(({ length }) => length)).toEqual([8]);
  });
  it("readLinePart and read refuse an empty buffer instead of reading a byte past it", async () => {
    const { libc, calls } = fakeLibc(new Uint8Array([1, 2, 3]));
    const ops = libcDescriptorOps(libc, "linux", now);
    const full = new Uint8Array(4).subarray(4);
    await expect(ops.readLinePart(0, full, 1000)).rejects.toThrow(RangeError);
    await expect(ops.read(0, full, 1000)).rejects.toThrow(RangeError);
    expect(calls).toEqual([]);
  });
  it("forbidDumps calls prctl on Linux only", () => {
    const linux = fakeLibc();
    libcDescriptorOps(linux.libc, "linux", now).forbidDumps();
    expect(linux.calls.map(({ name }) => name)).toEqual(["prctl"]);
    const freebsd = fakeLibc();
    libcDescriptorOps(freebsd.libc, "freebsd", now).forbidDumps();
    expect(freebsd.calls).toEqual([]);
  });
  it("endWithFront arms the parent-death signal on Linux, then refuses to go on where the front is already gone", () => {
    const linux = fakeLibc();
    libcDescriptorOps(linux.libc, "linux", now).endWithFront(FRONT_PID);
    expect(linux.calls.map(({ name }) => name)).toEqual(["prctl", "getppid"]);
    const freebsd = fakeLibc();
    libcDescriptorOps(freebsd.libc, "freebsd", now).endWithFront(FRONT_PID);
    expect(freebsd.calls.map(({ name }) => name)).toEqual(["getppid"]);
    expect(() => libcDescriptorOps(fakeLibc().libc, "linux", now).endWithFront(FRONT_PID + 1)).toThrow("the front is gone");
  });
  it("writeControl and write hand libc the rest of the bytes each time", async () => {
    const { libc, calls } = fakeLibc();
    const ops = libcDescriptorOps(libc, "linux", now);
    expect(ops.writeControl(3, new Uint8Array(10))).toBe(true);
    expect(await ops.write(1, new Uint8Array(7), 1000)).toBe(true);
    expect(calls.filter(({ name }) => name === "write").map(({ length, bufferLength }) => [length, bufferLength])).toEqual([[10, 10], [7, 7]]);
  });
  it("a deadline that has passed ends a read though bytes are waiting, and a write before it starts", async () => {
    const { libc, calls } = fakeLibc(new TextEncoder().encode("AAAA"));
    const ops = libcDescriptorOps(libc, "linux", () => 5000);
    expect(await ops.readLinePart(0, new Uint8Array(8), 5000)).toBe("timeout");
    expect(await ops.read(0, new Uint8Array(8), 4000)).toBe("timeout");
    expect(await ops.write(1, new Uint8Array(8), 5000)).toBe(false);
    expect(calls.filter(({ name }) => name !== "poll")).toEqual([]);
  });
  it("write is non-blocking, and puts the descriptor's flags back after (fd 2 and fd 5 may be shared)", async () => {
    const { libc, flags } = fakeLibc();
    expect(await libcDescriptorOps(libc, "linux", now).write(5, new Uint8Array(3), 1000)).toBe(true);
    expect(flags).toEqual([0o2 | 0o4000, 0o2]);
  });
  it("write, where pwritev2 can (Linux), makes only that write non-blocking (RWF_NOWAIT): the shared descriptor's flags are never touched", async () => {
    const { libc, flags } = fakeLibc();
    const iovecs: [bigint, bigint, number, number][] = [];
    const bytes = new Uint8Array(12);
    const nowait: Libc = {
      ...libc,
      addressOf: (buffer) => 0x1000n + BigInt(buffer.byteOffset),
      pwritev2: (_fd, iovec, count, offset, writeFlags) => {
        const view = new DataView(iovec.buffer, iovec.byteOffset);
        iovecs.push([view.getBigUint64(0, true), view.getBigUint64(8, true), offset, writeFlags]);
        expect(count).toBe(1);
        return 5;
      },
    };
    expect(await libcDescriptorOps(nowait, "linux", now).write(5, bytes, 1000)).toBe(true);
    expect(flags).toEqual([]);
    // 12 bytes in writes of 5: each iovec is the rest, where it starts; offset -1 (the file's position), RWF_NOWAIT.
    expect(iovecs).toEqual([[0x1000n, 12n, -1, 8], [0x1005n, 7n, -1, 8], [0x100an, 2n, -1, 8]]);
  });
  it("write falls back to one non-blocking write, flags put back, where pwritev2 cannot (a regular file, an older kernel)", async () => {
    const { libc, flags } = fakeLibc();
    const unsupported: Libc = { ...libc, addressOf: () => 0x1000n, pwritev2: () => -1 };
    expect(await libcDescriptorOps(unsupported, "linux", now).write(5, new Uint8Array(3), 1000)).toBe(true);
    expect(flags).toEqual([0o2 | 0o4000, 0o2]);
  });
  it("write gives up when the descriptor stays refused though poll says it is ready", async () => {
    const { libc, flags } = fakeLibc();
    const refusing = { ...libc, write: () => -1 };
    expect(await libcDescriptorOps(refusing, "linux", now).write(5, new Uint8Array(3), 1000)).toBe(false);
    expect(flags).toEqual(Array.from({ length: 10 }, () => [0o2 | 0o4000, 0o2]).flat());
  });
  it("poll's timeout fits its int: a longer wait is cut, never wrapped", async () => {
    const { libc, timeouts } = fakeLibc(new Uint8Array([0x41]));
    await libcDescriptorOps(libc, "linux", now).read(0, new Uint8Array(8), 4294968 * 1000);
    expect(timeouts).toEqual([2 ** 31 - 1]);
  });
});
