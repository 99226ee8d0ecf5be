import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { configOf } from "./config-of.ts";
import { decodeBase64, encodeBase64 } from "../../src/core/base64.ts";
import { type Config } from "../../src/core/config.ts";
import { COMMAND_LINE_LIMIT } from "../../src/core/line-reader.ts";
import { SASL_RESPONSE_LIMIT, decodeCramMd5, decodePlain } from "../../src/core/sasl.ts";
import { handleLine, initialState, lineLimit, type Action, type SessionState } from "../../src/core/session.ts";
import { apopTimestamp } from "../../src/core/timestamp.ts";

const bytes = (text: string) => new Uint8Array(Buffer.from(text, "latin1"));
const b64 = (text: string) => Buffer.from(text, "latin1").toString("base64");


/** Runs lines through the session; collects reply text and the actions. */
function run(config: Config, lines: string[], state: SessionState = initialState(config, bytes("<1.2@mail.example.org>"))) {
  const actions: Action[] = [];
  for (const line of lines) {
    const step = handleLine(config, state, { kind: "line", line: bytes(line) });
    state = step.state;
    actions.push(...step.actions);
  }
  const replies = actions.map((action) => (action.kind === "reply" ? action.text : "")).join("");
  const auth = actions.find((action) => action.kind === "spawnAuth");
  return { state, actions, replies, auth: auth?.kind === "spawnAuth" ? auth : undefined };
}

describe("base64 (RFC 4648 section 10 vectors)", () => {
  const vectors: [string, string][] = [["", ""], ["f", "Zg=="], ["fo", "Zm8="], ["foo", "Zm9v"], ["foob", "Zm9vYg=="], ["fooba", "Zm9vYmE="], ["foobar", "Zm9vYmFy"]];
  it.each(vectors)("%j <-> %j", (plain, encoded) => {
    expect(encodeBase64(bytes(plain))).toBe(encoded);
    expect(decodeBase64(bytes(encoded))).toEqual(bytes(plain));
  });
  it("round-trips every byte value", () => {
    const all = new Uint8Array(256).map((_, i) => i);
    expect(decodeBase64(bytes(encodeBase64(all)))).toEqual(all);
    expect(encodeBase64(all)).toBe(Buffer.from(all).toString("base64"));
  });
  it.each(["Zg", "Zg=", "Z===", "Zm9v!", "Zm 9v", "Zg==Zg==", "Zh==", "=Zg="])("refuses %j", (text) => {
    expect(decodeBase64(bytes(text))).toBeUndefined();
  });
});

describe("PLAIN (RFC 4616)", () => {
  it("takes authcid and password, with an empty authzid", () => {
    expect(decodePlain(bytes("\0tim\0tanstaaftanstaaf"))).toEqual({ name: bytes("tim"), password: bytes("tanstaaftanstaaf") });
  });
  it("takes an authzid equal to the authcid", () => {
    expect(decodePlain(bytes("tim\0tim\0secret"))).toEqual({ name: bytes("tim"), password: bytes("secret") });
  });
  it("refuses an authzid that differs (RFC 4616's Ursel/Kurt example): never mapped", () => {
    expect(decodePlain(bytes("Ursel\0Kurt\0xipj3plmq"))).toBe("authzid");
  });
  it.each(["tim\0secret", "\0tim\0pass\0word", "\0\0secret", "\0tim\0", ""])("refuses malformed %j", (text) => {
    expect(decodePlain(bytes(text))).toBe("malformed");
  });
  it("keeps 8-bit bytes and spaces in the password", () => {
    expect(decodePlain(bytes("\0latin\0p\xe4ss w\xf6rd "))).toEqual({ name: bytes("latin"), password: bytes("p\xe4ss w\xf6rd ") });
  });
});

describe("CRAM-MD5 (RFC 2195)", () => {
  it("decodes RFC 2195's example response", () => {
    const response = Buffer.from("dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw", "base64");
    expect(decodeCramMd5(new Uint8Array(response))).toEqual({ name: bytes("tim"), digest: bytes("b913a602c7eda7a495b4e6e7334d3890") });
    // The digest is HMAC-MD5(secret, challenge): what a CRAM-capable checkpassword checks.
    const digest = createHmac("md5", "tanstaaftanstaaf").update("<1896.697170952@postoffice.reston.mci.net>").digest("hex");
    expect(digest).toBe("b913a602c7eda7a495b4e6e7334d3890");
  });
  it.each(["tim", "tim b913", "tim B913A602C7EDA7A495B4E6E7334D3890", " b913a602c7eda7a495b4e6e7334d3890"])("refuses %j", (text) => {
    expect(decodeCramMd5(bytes(text))).toBe("malformed");
  });
});

describe("AUTH in the session", () => {
  const config = configOf();

  it("AUTH with no argument lists the mechanisms", () => {
    expect(run(config, ["AUTH"]).replies).toBe("+OK SASL mechanisms follow\r\nPLAIN\r\nLOGIN\r\n.\r\n");
    expect(run(configOf({ POP3AUTH: "+apop+cram" }), ["auth"]).replies).toBe("+OK SASL mechanisms follow\r\nPLAIN\r\nLOGIN\r\nCRAM-MD5\r\n.\r\n");
  });

  it("AUTH PLAIN with an initial response authenticates as method Plain", () => {
    const { auth, replies } = run(config, [`AUTH PLAIN ${b64("\0alice\0wonderland")}`]);
    expect(replies).toBe("");
    expect(auth).toEqual({ kind: "spawnAuth", method: "Plain", name: bytes("alice"), secret: bytes("wonderland") });
  });

  it("AUTH PLAIN without one: an empty challenge, then the response", () => {
    const { auth, replies } = run(config, ["auth plain", b64("alice\0alice\0wonderland")]);
    expect(replies).toBe("+ \r\n");
    expect(auth?.name).toEqual(bytes("alice"));
  });

  it("`=` is an empty initial response: malformed for PLAIN", () => {
    expect(run(config, ["AUTH PLAIN ="]).replies).toBe("-ERR malformed SASL response\r\n");
  });

  it("`*` cancels, with no authentication attempt, and the session goes on", () => {
    const { replies, auth, state } = run(config, ["AUTH PLAIN", "*", "NOOP"]);
    expect(replies).toBe("+ \r\n-ERR authentication cancelled\r\n+OK \r\n");
    expect(auth).toBeUndefined();
    expect(state.sasl).toBeUndefined();
  });

  it("bad base64 is answered with -ERR and no authentication attempt", () => {
    const { replies, auth } = run(config, ["AUTH PLAIN", "not base64!", `AUTH PLAIN ${b64("\0alice")}=`]);
    expect(replies).toBe("+ \r\n-ERR malformed SASL response\r\n-ERR malformed SASL response\r\n");
    expect(auth).toBeUndefined();
  });

  it("an authzid mismatch is refused", () => {
    const { replies, auth } = run(config, [`AUTH PLAIN ${b64("root\0alice\0wonderland")}`]);
    expect(replies).toBe("-ERR [AUTH] authorization identity not allowed\r\n");
    expect(auth).toBeUndefined();
  });

  it("AUTH LOGIN prompts for the name and the password", () => {
    const { replies, auth } = run(config, ["AUTH LOGIN", b64("alice"), b64("wonder land ")]);
    expect(replies).toBe("+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\n");
    expect(auth).toEqual({ kind: "spawnAuth", method: "Login", name: bytes("alice"), secret: bytes("wonder land ") });
  });

  it("AUTH LOGIN with the name as initial response asks only for the password", () => {
    const { replies, auth } = run(config, [`AUTH LOGIN ${b64("alice")}`, b64("wonderland")]);
    expect(replies).toBe("+ UGFzc3dvcmQ6\r\n");
    expect(auth?.secret).toEqual(bytes("wonderland"));
  });

  it("AUTH LOGIN refuses a NUL in the name or password (fd 3's separator)", () => {
    expect(run(config, ["AUTH LOGIN", b64("al\0ice")]).replies).toBe("+ VXNlcm5hbWU6\r\n-ERR malformed SASL response\r\n");
    expect(run(config, ["AUTH LOGIN", b64("alice"), b64("pa\0ss")]).auth).toBeUndefined();
  });

  it.each(["al\nice=LD_PRELOAD", "alice\r\nX", "alice\r", "\nalice"])(
    "refuses a name holding CR or LF (%j) as a malformed response, in PLAIN, LOGIN and CRAM-MD5",
    (name) => {
      const malformed = "-ERR malformed SASL response\r\n";
      const cram = configOf({ POP3AUTH: "+apop+cram" });
      const cases = [
        run(config, [`AUTH PLAIN ${b64(`\0${name}\0wonderland`)}`]),
        run(config, ["AUTH PLAIN", b64(`${name}\0${name}\0wonderland`)]),
        run(config, [`AUTH LOGIN ${b64(name)}`]),
        run(config, ["AUTH LOGIN", b64(name)]),
        run(cram, ["AUTH CRAM-MD5", b64(`${name} ${"0".repeat(32)}`)]),
      ];
      for (const { replies, auth } of cases) {
        expect(replies.endsWith(malformed), replies).toBe(true);
        expect(auth).toBeUndefined();
      }
    },
  );

  it("refuses an authorization identity holding CR or LF as a malformed response, not as a mismatch", () => {
    expect(run(config, [`AUTH PLAIN ${b64("ali\nce\0alice\0wonderland")}`]).replies).toBe("-ERR malformed SASL response\r\n");
  });

  it("passes a name's other bytes as s/qmail does: control bytes, = and 8-bit", () => {
    const name = "a\x01l\tice=\xe9\x7f";
    expect(run(config, [`AUTH PLAIN ${b64(`\0${name}\0wonderland`)}`]).auth?.name).toEqual(bytes(name));
    expect(run(config, ["AUTH LOGIN", b64(name), b64("wonderland")]).auth?.name).toEqual(bytes(name));
  });

  it("CRAM-MD5 is offered only where POP3AUTH names it; its challenge is the timestamp", () => {
    expect(run(config, ["AUTH CRAM-MD5"]).replies).toBe("-ERR unrecognized authentication type\r\n");
    const cram = configOf({ POP3AUTH: "cram" });
    const timestamp = apopTimestamp(1896, 697170952, "postoffice.reston.mci.net");
    const { replies, auth } = run(cram, ["AUTH CRAM-MD5", "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw"], initialState(cram, timestamp));
    expect(replies).toBe(`+ ${b64("<1896.697170952@postoffice.reston.mci.net>")}\r\n`);
    expect(auth).toEqual({ kind: "spawnAuth", method: "Cram-md5", name: bytes("tim"), secret: bytes("b913a602c7eda7a495b4e6e7334d3890") });
  });

  it("an unknown mechanism is refused", () => {
    expect(run(config, ["AUTH GSSAPI"]).replies).toBe("-ERR unrecognized authentication type\r\n");
  });

  it("is not offered in APOP-only mode", () => {
    expect(run(configOf({ POP3AUTH: "apop" }), ["AUTH PLAIN"]).replies).toBe("-ERR AUTH not available, use APOP\r\n");
  });

  it("UCSPITLS=!: AUTH before STLS is refused and ends the session", () => {
    const { actions } = run(configOf({ UCSPITLS: "!" }), ["AUTH PLAIN"]);
    expect(actions).toContainEqual({ kind: "reply", text: "-ERR TLS required but not negotiated\r\n" });
    expect(actions).toContainEqual({ kind: "quit", status: 1 });
  });

  it("a response line may be longer than a command line", () => {
    const exchanging = run(config, ["AUTH PLAIN"]).state;
    expect(lineLimit(exchanging)).toBe(SASL_RESPONSE_LIMIT);
    expect(lineLimit(initialState(config))).toBe(COMMAND_LINE_LIMIT);
    // base64 of a 1024-byte password and a name fits.
    const long = b64(`\0alice\0${"x".repeat(1024)}`);
    expect(long.length + 2).toBeLessThanOrEqual(SASL_RESPONSE_LIMIT);
    expect(run(config, ["AUTH PLAIN", long]).auth?.secret.length).toBe(1024);
  });

  it("a too-long or NUL response ends the exchange with -ERR", () => {
    const exchanging = run(config, ["AUTH PLAIN"]).state;
    const step = handleLine(config, exchanging, { kind: "too-long" });
    expect(step.actions).toEqual([{ kind: "reply", text: "-ERR malformed SASL response\r\n" }]);
    expect(step.state.sasl).toBeUndefined();
  });
});
