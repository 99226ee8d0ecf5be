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

/** A libc that records each call and answers as a socket holding `pending` would. */
/** The parent fakeLibc's getppid reports. */
const FRONT_PID = 4242;

function fakeLibc(pending: Uint8Array = new Uint8Array(0)): { libc: Libc; calls: Call[] } {
  const calls: Call[] = [];
  const libc: Libc = {
    poll: (fds, count) => (calls.push({ name: "poll", length: count * 8, bufferLength: fds.byteLength }), 1),
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
    prctl: () => (calls.push({ name: "prctl", length: 0, bufferLength: 0 }), 0),
    getppid: () => (calls.push({ name: "getppid", length: 0, bufferLength: 0 }), FRONT_PID),
  };
  return { libc, calls };
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
});
