// The two sides of the control protocol agree: the front's bounds
// (src/front/qmail-popup.c) against the runtime's own limits, the names a
// PROXY header may change against proxyEnvironment, the usage line against
// replies.ts, and doc/control-protocol.md names every key either side uses.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DEFAULT_TIMEOUT_SECONDS } from "../../src/core/config.ts";
import { ALIVE, IntroductionReader, MAXIMUM_TIMEOUT_SECONDS, encodeEnd, encodeOutputNotice, encodePlan, encodeVersion } from "../../src/core/front.ts";
import { COMMAND_LINE_LIMIT } from "../../src/core/line-reader.ts";
import { encodeNetstring } from "../../src/core/netstring.ts";
import { OUTCOME_KINDS } from "../../src/core/outcome.ts";
import { proxyEnvironment, type ProxyHeader } from "../../src/core/proxy-protocol.ts";
import { usage } from "../../src/core/replies.ts";
import { SASL_RESPONSE_LIMIT } from "../../src/core/sasl.ts";
import { TLS_ANSWER_LIMIT } from "../../src/core/tls-environment.ts";
import { VERSION } from "../../src/version.ts";

const ROOT = join(__dirname, "../..");
const FRONT = readFileSync(join(ROOT, "src/front/qmail-popup.c"), "latin1");
const DOC = readFileSync(join(ROOT, "doc/control-protocol.md"), "latin1");

/** A `#define NAME VALUE` of the front, evaluated (numbers and products only). */
function defined(name: string): number {
  const found = new RegExp(`^#define ${name} (.+)$`, "m").exec(FRONT);
  if (found === null) throw new Error(`no #define ${name}`);
  const expression = found[1]!.trim();
  if (!/^[0-9 ()*]+$/.test(expression)) throw new Error(`#define ${name} is not a number: ${expression}`);
  return Function(`return ${expression}`)() as number;
}

const keys = (bytes: Uint8Array): string[] => {
  const text = Buffer.from(bytes).toString("latin1");
  const found: string[] = [];
  for (let at = 0; at < text.length; ) {
    const colon = text.indexOf(":", at);
    const length = Number(text.slice(at, colon));
    const body = text.slice(colon + 1, colon + 1 + length);
    found.push(body.slice(0, body.indexOf("=")));
    at = colon + 1 + length + 1;
  }
  return found;
};

describe("the front's bounds are the runtime's limits", () => {
  it("a credentials field: one client line at most, the SASL response limit (the longest line the runtime reads)", () => {
    expect(defined("CREDENTIAL_FIELD_LIMIT")).toBe(SASL_RESPONSE_LIMIT);
    expect(SASL_RESPONSE_LIMIT).toBeGreaterThanOrEqual(COMMAND_LINE_LIMIT);
  });

  it("an SSL_* value fits sslserver's answer; a log line the name escaped (4 bytes for 1) and the rest", () => {
    expect(defined("VARIABLE_VALUE_LIMIT")).toBeGreaterThanOrEqual(TLS_ANSWER_LIMIT);
    expect(defined("LOG_LINE_LIMIT")).toBeGreaterThanOrEqual(4 * SASL_RESPONSE_LIMIT + 1024);
    expect(defined("MESSAGE_LIMIT")).toBeGreaterThan(TLS_ANSWER_LIMIT + 2 * defined("CREDENTIAL_FIELD_LIMIT") + OUTCOME_KINDS.length * (defined("REPLY_LIMIT") + defined("LOG_LINE_LIMIT")));
  });

  it("POP3TIMEOUT: the same default and maximum on both sides; the maximum's milliseconds fit 31 bits", () => {
    expect(defined("DEFAULT_TIMEOUT")).toBe(DEFAULT_TIMEOUT_SECONDS);
    expect(defined("MAXIMUM_TIMEOUT")).toBe(MAXIMUM_TIMEOUT_SECONDS);
    expect(MAXIMUM_TIMEOUT_SECONDS * 1000).toBeLessThanOrEqual(2 ** 31 - 1);
    expect((MAXIMUM_TIMEOUT_SECONDS + 1) * 1000).toBeGreaterThan(2 ** 31 - 1);
  });

  it("the usage line the front writes is replies.ts's", () => {
    const line = /static const char USAGE\[\] = "(.*)" VERSION "(.*)";/.exec(FRONT);
    expect(line).not.toBeNull();
    expect(`${line![1]}${VERSION}${line![2]}`.replace(/\\r\\n$/, "\r\n")).toBe(usage(VERSION));
  });

  it("the names a PROXY header may change are proxyEnvironment's, set and unset", () => {
    const list = /PROXY_NAMES\[\] = \{([^}]*)\}/.exec(FRONT)![1]!.match(/"[A-Z0-9]+"/g)!.map((name) => name.slice(1, -1));
    const settable = list.slice(0, defined("PROXY_SETTABLE"));
    const header: ProxyHeader = { kind: "proxied", family: "tcp6", source: { ip: "2001:db8::1", port: 1 }, destination: { ip: "2001:db8::2", port: 110 } };
    const env = proxyEnvironment(header);
    const set = Object.keys(env).filter((name) => env[name] !== undefined);
    const unset = Object.keys(env).filter((name) => env[name] === undefined);
    expect(set.every((name) => settable.includes(name))).toBe(true);
    expect([...set, ...unset].every((name) => list.includes(name))).toBe(true);
    const four = proxyEnvironment({ kind: "proxied", family: "tcp4", source: { ip: "192.0.2.1", port: 1 }, destination: { ip: "192.0.2.2", port: 110 } });
    expect(Object.keys(four).every((name) => list.includes(name))).toBe(true);
  });
});

describe("doc/control-protocol.md names every key", () => {
  it("of the runtime's messages and the front's introduction", () => {
    const plan = encodePlan({ input: 0, output: 1, credentials: new Uint8Array([0, 0, 0]), environment: { A: "b", C: undefined }, lines: Object.fromEntries(OUTCOME_KINDS.map((kind) => [kind, "x\n"])) as never });
    const said = new Set([...keys(plan), ...keys(encodeEnd(0)), ...keys(encodeOutputNotice(8)), ...keys(encodeVersion(VERSION)), ...keys(ALIVE)]);
    const introduction = FRONT.match(/netstring\((?:b|&query), "([a-z]+)"/g)!.map((call) => /"([a-z]+)"/.exec(call)![1]!);
    for (const key of [...said, ...introduction]) expect(DOC, key).toContain(`\`${key.replace(/-(accept|fail|temporary|crash|unrunnable)$/, "-OUTCOME")}`);
    expect(introduction).toEqual(["version", "timeout", "pid", "open", "arg", "env", "end", "version", "query"]);
  });
});

describe("IntroductionReader", () => {
  const read = (...items: Uint8Array[]) => {
    const reader = new IntroductionReader();
    let taken: ReturnType<IntroductionReader["take"]> = "more";
    for (const bytes of items) {
      const text = Buffer.from(bytes).toString("latin1");
      const body = text.slice(text.indexOf(":") + 1, -1);
      taken = reader.take({ key: body.slice(0, body.indexOf("=")), value: new Uint8Array(Buffer.from(body.slice(body.indexOf("=") + 1), "latin1")) });
      if (taken !== "more") return taken;
    }
    return taken;
  };

  it("takes the version first and the timeout the front read", () => {
    expect(read(encodeNetstring("version", "0.0.1"), encodeNetstring("timeout", "2147483"), encodeNetstring("pid", "7"), encodeNetstring("end"))).toMatchObject({ version: "0.0.1", timeoutSeconds: 2147483, pid: 7 });
  });

  it("a version query", () => {
    expect(read(encodeNetstring("version", "0.0.1"), encodeNetstring("query", "version"))).toEqual({ query: "version", version: "0.0.1" });
  });

  it.each(["0", "2147484", "4294968", "9999999999", "", "-1", "1e3"])("refuses timeout=%j", (value) => {
    expect(read(encodeNetstring("version", VERSION), encodeNetstring("timeout", value), encodeNetstring("pid", "7"), encodeNetstring("end"))).toBe("malformed");
  });

  it("anything before the version: unversioned", () => {
    expect(read(encodeNetstring("pid", "7"), encodeNetstring("end"))).toBe("unversioned");
  });
});
