// Passwords left in memory. Whatever a step refuses, the line it was given
// and every buffer the core decoded that line into hold zeros when it
// returns; after a login, only the spawnAuth's name and secret hold
// anything. The buffers are found by watching bytes.ts, through which the
// core makes every array that may hold a secret (allocateBytes, copyBytes:
// see bytes.ts for why).

import { readFileSync } from "node:fs";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { configOf } from "./config-of.ts";
import { decodeBase64 } from "../../src/core/base64.ts";
import type { Config } from "../../src/core/config.ts";
import { decodeCramMd5, decodePlain, decodeResponse } from "../../src/core/sasl.ts";
import { handleLine, initialState, type Action } from "../../src/core/session.ts";

/** Every array the core made through bytes.ts since the last beforeEach. */
const made = vi.hoisted(() => [] as Uint8Array[]);

vi.mock("../../src/core/bytes.ts", async (importOriginal) => {
  const bytes = await importOriginal<typeof import("../../src/core/bytes.ts")>();
  const watched =
    <A extends unknown[]>(make: (...args: A) => Uint8Array) =>
    (...args: A): Uint8Array => {
      const array = make(...args);
      made.push(array);
      return array;
    };
  return { ...bytes, allocateBytes: watched(bytes.allocateBytes), copyBytes: watched(bytes.copyBytes), concatBytes: watched(bytes.concatBytes) };
});

beforeEach(() => {
  made.length = 0;
});

const bytes = (text: string) => new Uint8Array(Buffer.from(text, "latin1"));
const b64 = (text: string) => Buffer.from(text, "latin1").toString("base64");
const zero = (array: Uint8Array) => array.every((byte) => byte === 0);

/** Valid base64, then a junk quad: the decoder has written the rest before it finds out. */
const thenJunk = (text: string) => b64(text) + "*AAA";

/**
 * Runs the lines; the last one is the step under test. Returns that step,
 * its line (as handed to handleLine) and what the core made during it.
 */
function lastStep(config: Config, lines: readonly string[]) {
  let state = initialState(config, bytes("<1896.697170952@postoffice.reston.mci.net>"));
  for (const text of lines.slice(0, -1)) state = handleLine(config, state, { kind: "line", line: bytes(text) }).state;
  made.length = 0;
  const line = bytes(lines.at(-1)!);
  const step = handleLine(config, state, { kind: "line", line });
  return { step, line, made: [...made] };
}

function expectRefusedAndWiped(config: Config, lines: readonly string[]): void {
  const { step, line, made } = lastStep(config, lines);
  const replies = step.actions.map((action) => (action.kind === "reply" ? action.text : action.kind));
  expect(replies, "a refusal").toEqual([expect.stringMatching(/^-ERR /)]);
  expect(step.state.sasl, "the exchange is over").toBeUndefined();
  expect(zero(line), "the line").toBe(true);
  made.forEach((array, i) => expect(zero(array), `buffer ${i} of ${made.length}: ${JSON.stringify([...array])}`).toBe(true));
}

const plain = configOf();
const cram = configOf({ POP3AUTH: "cram" });
const DIGEST = "b913a602c7eda7a495b4e6e7334d3890";

describe("every refusal wipes the line and what was decoded from it", () => {
  describe("PLAIN", () => {
    it.each([
      ["valid base64, then junk", thenJunk("\0alice\0wonderland")],
      ["padding in the middle", b64("\0alice\0wonderlan") + b64("d")],
      ["pad bits that are not zero", b64("\0alice\0wonderlan").slice(0, -2) + "h="],
      ["no NUL", b64("alice wonderland")],
      ["one NUL", b64("alice\0wonderland")],
      ["three NULs", b64("\0alice\0wonder\0land")],
      ["no password", b64("\0alice\0")],
      ["no name", b64("\0\0wonderland")],
      ["another authzid", b64("root\0alice\0wonderland")],
      ["cancelled", "*"],
      ["not base64 at all", "alice:wonderland"],
    ])("%s: as initial response and as continuation", (_case, response) => {
      expectRefusedAndWiped(plain, [`AUTH PLAIN ${response}`]);
      expectRefusedAndWiped(plain, ["AUTH PLAIN", response]);
    });

    it("`=` (empty) as initial response", () => {
      expectRefusedAndWiped(plain, ["AUTH PLAIN ="]);
    });
  });

  describe("LOGIN, the username step", () => {
    it.each([
      ["valid base64, then junk", thenJunk("alice")],
      ["a NUL in the name", b64("al\0ice")],
      ["cancelled", "*"],
    ])("%s: as initial response and as continuation", (_case, response) => {
      expectRefusedAndWiped(plain, [`AUTH LOGIN ${response}`]);
      expectRefusedAndWiped(plain, ["AUTH LOGIN", response]);
    });

    it("an empty name: `=` as initial response, an empty line as continuation", () => {
      expectRefusedAndWiped(plain, ["AUTH LOGIN ="]);
      expectRefusedAndWiped(plain, ["AUTH LOGIN", ""]);
    });
  });

  describe("LOGIN, the password step", () => {
    it.each([
      ["valid base64, then junk", thenJunk("wonderland")],
      ["a NUL in the password", b64("wonder\0land")],
      ["an empty password", ""],
      ["cancelled", "*"],
    ])("%s: after the name as initial response and as continuation", (_case, response) => {
      expectRefusedAndWiped(plain, [`AUTH LOGIN ${b64("alice")}`, response]);
      expectRefusedAndWiped(plain, ["AUTH LOGIN", b64("alice"), response]);
    });
  });

  describe("CRAM-MD5", () => {
    it.each([
      ["valid base64, then junk", thenJunk(`tim ${DIGEST}`)],
      ["a NUL in the name", b64(`t\0m ${DIGEST}`)],
      ["no name", b64(` ${DIGEST}`)],
      ["no space", b64(`tim${DIGEST}`)],
      ["an upper-case digest", b64(`tim ${DIGEST.toUpperCase()}`)],
      ["a short digest", b64(`tim ${DIGEST.slice(1)}`)],
      ["cancelled", "*"],
    ])("%s", (_case, response) => {
      expectRefusedAndWiped(cram, ["AUTH CRAM-MD5", response]);
    });

    it("an initial response (the challenge must come first)", () => {
      expectRefusedAndWiped(cram, [`AUTH CRAM-MD5 ${b64(`tim ${DIGEST}`)}`]);
    });
  });

  it("AUTH refused before TLS where UCSPITLS=!, or in APOP-only mode, with an initial response", () => {
    const response = b64("\0alice\0wonderland");
    const { step, line } = lastStep(configOf({ UCSPITLS: "!" }), [`AUTH PLAIN ${response}`]);
    expect(step.actions).toContainEqual({ kind: "quit", status: 1 });
    expect(zero(line)).toBe(true);
    expectRefusedAndWiped(configOf({ POP3AUTH: "apop" }), [`AUTH PLAIN ${response}`]);
  });

  it("PASS and APOP refused", () => {
    expectRefusedAndWiped(plain, ["PASS wonderland"]);
    expectRefusedAndWiped(configOf({ POP3AUTH: "+apop" }), ["APOP mrose"]);
  });
});

describe("a login keeps only the name and the secret it hands over", () => {
  const spawnOf = (actions: readonly Action[]) => actions.find((action) => action.kind === "spawnAuth");

  it.each([
    ["USER/PASS", plain, ["USER alice", "PASS wonderland"]],
    ["APOP", configOf({ POP3AUTH: "+apop" }), ["APOP mrose c4c9334bac560ecc979e58001b3e22fb"]],
    ["PLAIN, initial response", plain, [`AUTH PLAIN ${b64("\0alice\0wonderland")}`]],
    ["PLAIN, continuation", plain, ["AUTH PLAIN", b64("alice\0alice\0wonderland")]],
    ["LOGIN", plain, ["AUTH LOGIN", b64("alice"), b64("wonderland")]],
    ["CRAM-MD5", cram, ["AUTH CRAM-MD5", b64(`tim ${DIGEST}`)]],
  ] as const)("%s", (_case, config, lines) => {
    const { step, line, made } = lastStep(config, lines);
    const spawn = spawnOf(step.actions);
    if (spawn?.kind !== "spawnAuth") throw new Error("no login");
    expect(zero(line), "the line").toBe(true);
    for (const array of made) if (array !== spawn.name && array !== spawn.secret) expect(zero(array), JSON.stringify([...array])).toBe(true);
  });
});

describe("the decoders leave nothing behind when they refuse", () => {
  it("decodeBase64: no decoded prefix", () => {
    for (const text of [thenJunk("foobar and more"), b64("foob") + b64("a"), b64("fooba").slice(0, -2) + "Z="]) {
      made.length = 0;
      expect(decodeBase64(bytes(text)), text).toBeUndefined();
      expect(made.every(zero), text).toBe(true);
    }
  });

  it("decodeResponse: no decoded prefix", () => {
    expect(decodeResponse(bytes(thenJunk("wonderland")), false)).toBe("malformed");
    expect(made.every(zero)).toBe(true);
  });

  it("decodePlain and decodeCramMd5 make no copy of what they refuse", () => {
    for (const text of ["root\0alice\0wonderland", "\0alice\0", "alice"]) expect(typeof decodePlain(bytes(text))).toBe("string");
    for (const text of [`t\0m ${DIGEST}`, `tim ${DIGEST.toUpperCase()}`]) expect(decodeCramMd5(bytes(text))).toBe("malformed");
    expect(made).toEqual([]);
  });
});

describe("the SASL decoders and the session", () => {
  it("make byte arrays only through bytes.ts (a typed array made otherwise may leave a copy behind)", () => {
    for (const name of ["base64.ts", "sasl.ts", "session.ts"]) {
      const source = readFileSync(new URL(`../../src/core/${name}`, import.meta.url), "latin1");
      expect(source, name).not.toMatch(/new Uint8Array|Uint8Array\.(from|of)\b|\.slice\(/);
    }
  });
});
