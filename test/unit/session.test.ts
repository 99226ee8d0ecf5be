import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { configOf as configOfWith } from "./config-of.ts";
import { type Config, type Environment } from "../../src/core/config.ts";
import type { LineEvent } from "../../src/core/line-reader.ts";
import {
  greeting,
  handleLine,
  initialState,
  parseCommand,
  protocolLabel,
  type Action,
  type SessionState,
} from "../../src/core/session.ts";
import { apopTimestamp } from "../../src/core/timestamp.ts";

/** The bytes of a string, one byte per character (latin1): `\xe9` is the byte 0xe9. */
const bin = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "latin1"));

const configOf = (env: Environment = {}): Config => configOfWith(env, ["checkpassword", "qmail-pop3d", "Maildir"]);

type Input = string | Uint8Array | LineEvent;

const eventOf = (input: Input): LineEvent =>
  typeof input === "string" ? { kind: "line", line: bin(input) } : input instanceof Uint8Array ? { kind: "line", line: input } : input;

interface Run {
  readonly state: SessionState;
  readonly actions: Action[];
  /** Every reply, concatenated, as the client would read it. */
  readonly replies: string;
  /** The actions other than replies. */
  readonly others: Action[];
}

/** Runs lines (without their CRLF) through handleLine, from the initial state unless one is given. */
function run(config: Config, inputs: readonly Input[], from: SessionState = initialState(config)): Run {
  let state = from;
  const actions: Action[] = [];
  for (const input of inputs) {
    const step = handleLine(config, state, eventOf(input));
    state = step.state;
    actions.push(...step.actions);
  }
  const replies = actions.map((action) => (action.kind === "reply" ? action.text : "")).join("");
  return { state, actions, replies, others: actions.filter((action) => action.kind !== "reply") };
}

function spawnOf(result: Run): Extract<Action, { kind: "spawnAuth" }> {
  const spawns = result.actions.filter((action): action is Extract<Action, { kind: "spawnAuth" }> => action.kind === "spawnAuth");
  expect(spawns).toHaveLength(1);
  return spawns[0]!;
}

const plain = configOf();
const apopAlso = configOf({ POP3AUTH: "+apop" });
const apopOnly = configOf({ POP3AUTH: "apop" });
const stlsOffered = configOf({ UCSPITLS: "" });
const stlsRequired = configOf({ UCSPITLS: "!" });

describe("USER", () => {
  it("answers `+OK \\r\\n` (with the space) and remembers the name", () => {
    const result = run(plain, ["USER alice"]);
    expect(result.replies).toBe("+OK \r\n");
    expect(result.others).toEqual([]);
    expect(result.state.user).toEqual(bin("alice"));
  });

  it("refuses an empty name with `-ERR syntax error\\r\\n`", () => {
    for (const line of ["USER", "USER ", "USER    "]) {
      const result = run(plain, [line]);
      expect(result.replies, JSON.stringify(line)).toBe("-ERR syntax error\r\n");
      expect(result.state.user).toBeUndefined();
    }
  });

  it("takes the verb in any case", () => {
    for (const verb of ["user", "uSeR", "USER", "User"]) {
      const result = run(plain, [`${verb} alice`]);
      expect(result.replies, verb).toBe("+OK \r\n");
      expect(result.state.user).toEqual(bin("alice"));
    }
  });

  it("skips all spaces after the verb and keeps trailing spaces", () => {
    expect(run(plain, ["USER   alice  "]).state.user).toEqual(bin("alice  "));
  });

  it("does not take a tab as a separator: `USER\\talice` is an unknown command", () => {
    const result = run(plain, ["USER\talice"]);
    expect(result.replies).toBe("-ERR authorization first\r\n");
    expect(result.state.user).toBeUndefined();
  });

  it("keeps a tab inside the argument", () => {
    expect(run(plain, ["USER \talice"]).state.user).toEqual(bin("\talice"));
  });

  it("lets a later USER replace the earlier one", () => {
    const result = run(plain, ["USER alice", "USER bob", "PASS secret"]);
    expect(result.replies).toBe("+OK \r\n+OK \r\n");
    const spawn = spawnOf(result);
    expect(spawn.name).toEqual(bin("bob"));
  });

  it("is refused in APOP-only mode", () => {
    const result = run(apopOnly, ["USER alice"]);
    expect(result.replies).toMatch(/^-ERR [^\r\n]*\r\n$/);
    expect(result.state.user).toBeUndefined();
    // And PASS has no USER to go with.
    expect(run(apopOnly, ["USER alice", "PASS secret"]).replies).toMatch(/\r\n-ERR USER first\r\n$/);
  });

  it("is accepted where APOP is offered as well", () => {
    expect(run(apopAlso, ["USER alice"]).replies).toBe("+OK \r\n");
  });
});

describe("PASS", () => {
  it("without USER: `-ERR USER first\\r\\n`", () => {
    const result = run(plain, ["PASS secret"]);
    expect(result.replies).toBe("-ERR USER first\r\n");
    expect(result.others).toEqual([]);
  });

  it("empty: `-ERR syntax error\\r\\n`, and the USER is kept", () => {
    const result = run(plain, ["USER alice", "PASS"]);
    expect(result.replies).toBe("+OK \r\n-ERR syntax error\r\n");
    expect(result.others).toEqual([]);
    expect(result.state.user).toEqual(bin("alice"));
    expect(run(plain, ["USER alice", "PASS   "]).replies).toBe("+OK \r\n-ERR syntax error\r\n");
  });

  it("with USER: a spawnAuth action, method User, with the exact name and secret, and no reply", () => {
    const result = run(plain, ["USER alice", "PASS secret"]);
    expect(result.replies).toBe("+OK \r\n");
    expect(result.others).toEqual([{ kind: "spawnAuth", method: "User", name: bin("alice"), secret: bin("secret") }]);
    expect(result.state.user).toBeUndefined();
  });

  it("keeps inner and trailing spaces: `PASS  se cret ` gives `se cret `", () => {
    const spawn = spawnOf(run(plain, ["USER alice", "PASS  se cret "]));
    expect(spawn.secret).toEqual(bin("se cret "));
  });

  it("takes the verb in any case", () => {
    expect(spawnOf(run(plain, ["user alice", "pAsS secret"])).secret).toEqual(bin("secret"));
  });

  it("passes Latin-1 bytes through unchanged", () => {
    const spawn = spawnOf(run(plain, ["USER j\xfcrgen", "PASS p\xe4ss\xdf\xa7"]));
    expect(spawn.name).toEqual(new Uint8Array([0x6a, 0xfc, 0x72, 0x67, 0x65, 0x6e]));
    expect(spawn.secret).toEqual(new Uint8Array([0x70, 0xe4, 0x73, 0x73, 0xdf, 0xa7]));
  });

  it("passes invalid UTF-8 through unchanged", () => {
    // A lone continuation byte, an overlong `/`, a truncated sequence, 0xff.
    const secret = new Uint8Array([0x80, 0xc0, 0xaf, 0xe2, 0x82, 0xff, 0x41]);
    const line = new Uint8Array([...bin("PASS "), ...secret]);
    const spawn = spawnOf(run(plain, ["USER alice", line]));
    expect(spawn.secret).toEqual(secret);
  });

  it("hands over copies, not views of the line (the caller wipes the line)", () => {
    const userLine = bin("USER alice");
    const passLine = bin("PASS secret");
    const spawn = spawnOf(run(plain, [userLine, passLine]));
    userLine.fill(0);
    passLine.fill(0);
    expect(spawn.name).toEqual(bin("alice"));
    expect(spawn.secret).toEqual(bin("secret"));
  });
});

describe("APOP", () => {
  it("splits name and digest at the first space only", () => {
    const result = run(apopAlso, ["APOP mrose c4c9 334b"]);
    expect(result.replies).toBe("");
    expect(result.others).toEqual([{ kind: "spawnAuth", method: "Apop", name: bin("mrose"), secret: bin("c4c9 334b") }]);
  });

  it("takes the RFC 1939 example as is", () => {
    const spawn = spawnOf(run(apopOnly, ["APOP mrose c4c9334bac560ecc979e58001b3e22fb"]));
    expect(spawn).toEqual({ kind: "spawnAuth", method: "Apop", name: bin("mrose"), secret: bin("c4c9334bac560ecc979e58001b3e22fb") });
  });

  it("takes the verb in any case", () => {
    expect(spawnOf(run(apopAlso, ["apop mrose digest"])).name).toEqual(bin("mrose"));
  });

  it("without a space after the name: `-ERR syntax error\\r\\n`", () => {
    for (const line of ["APOP mrose", "APOP", "APOP   "]) {
      const result = run(apopAlso, [line]);
      expect(result.replies, JSON.stringify(line)).toBe("-ERR syntax error\r\n");
      expect(result.others).toEqual([]);
    }
  });

  it("is refused with `-ERR` when POP3AUTH is unset", () => {
    const result = run(plain, ["APOP mrose c4c9334bac560ecc979e58001b3e22fb"]);
    expect(result.replies).toMatch(/^-ERR [^\r\n]*\r\n$/);
    expect(result.others).toEqual([]);
  });
});

describe("other commands", () => {
  it("QUIT: `+OK \\r\\n` and quit with status 0", () => {
    const result = run(plain, ["QUIT"]);
    expect(result.actions).toEqual([
      { kind: "reply", text: "+OK \r\n" },
      { kind: "quit", status: 0 },
    ]);
    expect(run(plain, ["quit"]).others).toEqual([{ kind: "quit", status: 0 }]);
  });

  it("NOOP: `+OK \\r\\n` and nothing else", () => {
    const result = run(plain, ["USER alice", "NOOP"]);
    expect(result.actions).toEqual([
      { kind: "reply", text: "+OK \r\n" },
      { kind: "reply", text: "+OK \r\n" },
    ]);
    expect(result.state.user).toEqual(bin("alice"));
  });

  it.each(["STAT", "LIST", "RETR 1", "USERX alice", "", " USER alice", "AUTHX PLAIN", "X\xff"])(
    "answers the unknown or out-of-state %j with `-ERR authorization first\\r\\n`",
    (line) => {
      const result = run(plain, [line]);
      expect(result.actions).toEqual([{ kind: "reply", text: "-ERR authorization first\r\n" }]);
    },
  );

  it("answers a too-long line with one `-ERR` and keeps the state", () => {
    const before = run(plain, ["USER alice"]).state;
    const result = run(plain, [{ kind: "too-long" }], before);
    expect(result.actions).toHaveLength(1);
    expect(result.replies).toMatch(/^-ERR [^\r\n]*\r\n$/);
    expect(result.state.user).toEqual(bin("alice"));
  });

  it("answers a NUL line with one `-ERR` and starts nothing", () => {
    const before = run(plain, ["USER alice"]).state;
    const result = run(plain, [{ kind: "nul" }], before);
    expect(result.actions).toHaveLength(1);
    expect(result.replies).toMatch(/^-ERR [^\r\n]*\r\n$/);
  });
});

describe("parseCommand", () => {
  it("splits at the first space and skips all spaces after it", () => {
    const { verb, argument } = parseCommand(bin("PASS   a b  "));
    expect(verb).toEqual(bin("PASS"));
    expect(argument).toEqual(bin("a b  "));
  });

  it("gives an empty argument when there is no space", () => {
    const { verb, argument } = parseCommand(bin("NOOP"));
    expect(verb).toEqual(bin("NOOP"));
    expect(argument).toEqual(new Uint8Array(0));
  });
});

describe("STLS", () => {
  it("not offered: `-ERR STLS not available\\r\\n`", () => {
    const result = run(plain, ["STLS"]);
    expect(result.actions).toEqual([{ kind: "reply", text: "-ERR STLS not available\r\n" }]);
    expect(result.state.tls).toBe(false);
  });

  it("UCSPITLS=- does not offer it", () => {
    expect(run(configOf({ UCSPITLS: "-" }), ["STLS"]).replies).toBe("-ERR STLS not available\r\n");
  });

  it("offered: `+OK starting TLS negotiation\\r\\n`, then startTls", () => {
    const result = run(stlsOffered, ["STLS"]);
    expect(result.actions).toEqual([{ kind: "reply", text: "+OK starting TLS negotiation\r\n" }, { kind: "startTls" }]);
    expect(result.state.tls).toBe(true);
  });

  it("forgets a USER given before it", () => {
    const result = run(stlsOffered, ["USER mallory", "STLS"]);
    expect(result.state).toEqual({ user: undefined, tls: true });
    expect(run(stlsOffered, ["USER mallory", "STLS", "PASS secret"]).replies).toBe(
      "+OK \r\n+OK starting TLS negotiation\r\n-ERR USER first\r\n",
    );
  });

  it("is refused the second time", () => {
    const result = run(stlsOffered, ["STLS", "STLS"]);
    expect(result.actions).toEqual([
      { kind: "reply", text: "+OK starting TLS negotiation\r\n" },
      { kind: "startTls" },
      { kind: "reply", text: "-ERR STLS not available\r\n" },
    ]);
  });

  it("is not offered on implicit TLS (port 995)", () => {
    const config = configOf({ UCSPITLS: "", TCPLOCALPORT: "995" });
    expect(initialState(config).tls).toBe(true);
    expect(run(config, ["STLS"]).replies).toBe("-ERR STLS not available\r\n");
  });

  it("USER works after it, and the login goes ahead", () => {
    const result = run(stlsOffered, ["STLS", "USER alice", "PASS secret"]);
    expect(result.replies).toBe("+OK starting TLS negotiation\r\n+OK \r\n");
    expect(spawnOf(result)).toEqual({ kind: "spawnAuth", method: "User", name: bin("alice"), secret: bin("secret") });
  });
});

describe("UCSPITLS=! (TLS required)", () => {
  const refusal = (proto: "POP3" | "POP3S"): Action[] => [
    { kind: "reply", text: "-ERR TLS required but not negotiated\r\n" },
    {
      kind: "log",
      entry: { result: "Reject", what: "STLS::Any", proto, remoteIp: "192.0.2.7", remoteHost: "client.example", user: "unknown" },
    },
    { kind: "quit", status: 1 },
  ];
  const required = configOf({ UCSPITLS: "!", TCPREMOTEIP: "192.0.2.7", TCPREMOTEHOST: "client.example" });

  it("refuses USER before TLS, logs `Reject::STLS::Any` with user `unknown`, quits with 1", () => {
    const result = run(required, ["USER alice"]);
    expect(result.actions).toEqual(refusal("POP3"));
    expect(result.state.user).toBeUndefined();
  });

  it("refuses APOP before TLS the same way", () => {
    const config = configOf({ UCSPITLS: "!", POP3AUTH: "+apop", TCPREMOTEIP: "192.0.2.7", TCPREMOTEHOST: "client.example" });
    expect(run(config, ["APOP mrose c4c9334bac560ecc979e58001b3e22fb"]).actions).toEqual(refusal("POP3"));
  });

  it("refuses APOP before TLS even where APOP is not enabled (credentials in clear)", () => {
    expect(run(required, ["APOP mrose digest"]).actions).toEqual(refusal("POP3"));
  });

  it("lets CAPA, NOOP and STLS through before TLS", () => {
    const result = run(stlsRequired, ["NOOP", "CAPA", "STLS"]);
    expect(result.others).toEqual([{ kind: "startTls" }]);
    expect(result.replies.startsWith("+OK \r\n+OK capability list follows\r\n")).toBe(true);
    expect(result.replies.endsWith(".\r\n+OK starting TLS negotiation\r\n")).toBe(true);
  });

  it("answers PASS before TLS with `-ERR USER first`: no USER has passed the gate, and PASS has none of its own", () => {
    expect(run(required, ["PASS secret"]).actions).toEqual([{ kind: "reply", text: "-ERR USER first\r\n" }]);
    expect(run(required, ["USER alice", "PASS secret"]).others).toEqual(refusal("POP3").slice(1));
  });

  it("lets commands without credentials through: an unknown one, QUIT", () => {
    expect(run(required, ["RETR 1"]).replies).toBe("-ERR authorization first\r\n");
    expect(run(required, ["QUIT"]).others).toEqual([{ kind: "quit", status: 0 }]);
  });

  it("accepts USER and PASS after STLS", () => {
    const result = run(stlsRequired, ["STLS", "USER alice", "PASS secret"]);
    expect(result.replies).toBe("+OK starting TLS negotiation\r\n+OK \r\n");
    expect(spawnOf(result)).toEqual({ kind: "spawnAuth", method: "User", name: bin("alice"), secret: bin("secret") });
  });

  it("accepts USER on implicit TLS (port 995) without STLS", () => {
    const config = configOf({ UCSPITLS: "!", TCPLOCALPORT: "995" });
    expect(run(config, ["USER alice"]).replies).toBe("+OK \r\n");
  });
});

describe("protocolLabel", () => {
  it("is POP3 in clear, POP3S after STLS or on port 995", () => {
    expect(protocolLabel(plain, initialState(plain))).toBe("POP3");
    expect(protocolLabel(stlsOffered, run(stlsOffered, ["STLS"]).state)).toBe("POP3S");
    const implicit = configOf({ TCPLOCALPORT: "995" });
    expect(protocolLabel(implicit, initialState(implicit))).toBe("POP3S");
  });
});

describe("greeting()", () => {
  const timestamp = apopTimestamp(1896, 697170952, "mail.example.org");

  it("is `+OK\\r\\n` when APOP is off: no timestamp anywhere", () => {
    expect(greeting(plain, timestamp)).toEqual(bin("+OK\r\n"));
  });

  it.each([
    ["apop", "apop"],
    ["+apop", "+apop"],
    ["APOP", "APOP"],
  ])("is `+OK <PID.TIME@HOST>\\r\\n` when POP3AUTH=%s", (_name, pop3auth) => {
    expect(greeting(configOf({ POP3AUTH: pop3auth }), timestamp)).toEqual(bin("+OK <1896.697170952@mail.example.org>\r\n"));
  });
});


describe("the APOP timestamp is what a checkpassword hashes", () => {
  it("matches RFC 1939's example digest", () => {
    const timestamp = apopTimestamp(1896, 697170952, "dbc.mtview.ca.us");
    const digest = createHash("md5").update(timestamp).update("tanstaaf").digest("hex");
    expect(digest).toBe("c4c9334bac560ecc979e58001b3e22fb");
    // And the digest a client sends for it reaches the subprogram unchanged.
    expect(spawnOf(run(apopOnly, [`APOP mrose ${digest}`])).secret).toEqual(bin(digest));
  });
});

describe("a name replaced or dropped is wiped (users type passwords into the name field)", () => {
  it("USER replaced by another USER, and dropped by STLS", () => {
    const first = run(plain, ["USER hunter2secret"]);
    const held = first.state.user!;
    run(plain, ["USER alice"], first.state);
    expect(held.every((byte) => byte === 0)).toBe(true);
    const before = run(stlsOffered, ["USER hunter2secret"]);
    const name = before.state.user!;
    run(stlsOffered, ["STLS"], before.state);
    expect(name.every((byte) => byte === 0)).toBe(true);
  });

  it.each([
    ["cancelled", "*"],
    ["answered with bad base64", "not base64!"],
    ["answered with a NUL in the password", Buffer.from("pa\0ss", "latin1").toString("base64")],
  ])("AUTH LOGIN's name, the exchange %s", (_what, answer) => {
    const asked = run(plain, ["AUTH LOGIN", Buffer.from("hunter2secret").toString("base64")]);
    const sasl = asked.state.sasl as { mechanism: "LOGIN"; name: Uint8Array };
    expect(sasl.name).toEqual(bin("hunter2secret"));
    const after = run(plain, [answer], asked.state);
    expect(after.state.sasl).toBeUndefined();
    expect(sasl.name.every((byte) => byte === 0)).toBe(true);
  });

  it("AUTH LOGIN's name, the password line too long", () => {
    const asked = run(plain, ["AUTH LOGIN", Buffer.from("hunter2secret").toString("base64")]);
    const sasl = asked.state.sasl as { mechanism: "LOGIN"; name: Uint8Array };
    run(plain, [{ kind: "too-long" }], asked.state);
    expect(sasl.name.every((byte) => byte === 0)).toBe(true);
  });
});
