// Property-based tests of the core (issue #6): the line reader, the session
// state machine, the fd-3 encoding and the fd-5 log line, on inputs fast-check
// makes up. Each property runs FUZZ_RUNS cases (default 1000, about a second in all, so
// that `make test` stays fast); `FUZZ_RUNS=200000 vitest run test/property`
// is the long run. FUZZ_SEED=N replays a run (fast-check prints the seed and
// the shrunk counterexample of a failure).

import fc from "fast-check";
import { RUNS, TIMEOUT, check } from "./runs.ts";
import { describe, expect, test } from "vitest";
import { readConfig, type Config, type Environment } from "../../src/core/config.ts";
import { encodeCheckpasswordInput } from "../../src/core/checkpassword.ts";
import { COMMAND_LINE_LIMIT, LineReader, type LineEvent } from "../../src/core/line-reader.ts";
import { formatLogLine, type LogEntry } from "../../src/core/log.ts";
import { SASL_RESPONSE_LIMIT } from "../../src/core/sasl.ts";
import { handleLine, initialState, lineLimit, type Action, type SessionState } from "../../src/core/session.ts";
import { apopTimestamp } from "../../src/core/timestamp.ts";


const LF = 0x0a;
const CR = 0x0d;

// --- arbitraries -----------------------------------------------------------------

/** Any byte, with LF, CR, NUL, space and tab much more likely than chance would make them. */
const byte = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 255 }) },
  { weight: 4, arbitrary: fc.constantFrom(LF, CR, 0x00, 0x20, 0x09, 0x27, 0x5c, 0x7f, 0x80, 0xff) },
);
const bytes = (maxLength: number) => fc.array(byte, { maxLength }).map((list) => Uint8Array.from(list));

/**
 * A byte stream for the reader: random bytes mixed with the tokens that
 * matter (line ends with and without CR, several CRs, NULs, runs as long as
 * the limits), and the points at which it is cut into reads.
 */
const TOKENS = ["\r\n", "\n", "\r\r\n", "\r", "\0", "\0\r\n", " ", "\r\n\r\n"].map((text) => Uint8Array.from(Buffer.from(text, "latin1")));
const readerStream = (lineLimit: number) =>
  fc
    .array(
      fc.oneof(
        { weight: 4, arbitrary: bytes(16) },
        { weight: 3, arbitrary: fc.constantFrom(...TOKENS) },
        // Around the limit: a line of exactly limit-2, limit-1, limit bytes before its CRLF…
        { weight: 1, arbitrary: fc.integer({ min: Math.max(0, lineLimit - 3), max: lineLimit + 1 }).map((n) => new Uint8Array(n).fill(0x61)) },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: 3 * lineLimit }).map((n) => new Uint8Array(n).fill(0x62)) },
      ),
      { maxLength: 30 },
    )
    .map((parts) => Uint8Array.from(parts.flatMap((part) => [...part])));
const splitStream = (lineLimit: number) =>
  readerStream(lineLimit).chain((stream) =>
    fc.record({
      stream: fc.constant(stream),
      cuts: fc.uniqueArray(fc.integer({ min: 0, max: stream.length }), { maxLength: 40 }).map((cuts) => [...cuts].sort((a, b) => a - b)),
    }),
  );

function cutAt(stream: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const cut of [...cuts, stream.length]) {
    chunks.push(stream.subarray(start, cut));
    start = cut;
  }
  return chunks;
}

/** The reader's line limit: the real one, or a small one that makes over-long lines common. */
const limit = fc.oneof(fc.constant(COMMAND_LINE_LIMIT), fc.integer({ min: 1, max: 40 }));

const VERBS = ["USER", "PASS", "APOP", "QUIT", "NOOP", "CAPA", "STLS", "AUTH", "RETR", "TOP", "LIST", "UIDL", "STAT", "RSET", "DELE", ""];

/** A verb in random case (or random bytes), as a client might type it. */
const verb = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(fc.constantFrom(...VERBS), fc.array(fc.boolean(), { minLength: 4, maxLength: 4 })).map(([word, upper]) =>
    Uint8Array.from([...word].map((c, i) => (upper[i % 4] ? c.toUpperCase() : c.toLowerCase()).charCodeAt(0))),
  ) },
  { weight: 1, arbitrary: bytes(8) },
);

/** One command line as the client sends it: verb, separator, argument, ending (LF or CRLF, maybe with extra CRs). */
const commandLine = fc
  .tuple(
    verb,
    fc.constantFrom("", " ", "  ", "   ", "\t", " \t"),
    fc.oneof(
      { weight: 4, arbitrary: bytes(24) },
      { weight: 1, arbitrary: bytes(COMMAND_LINE_LIMIT + 40) },
      { weight: 2, arbitrary: fc.constantFrom("alice", "alice bob", "x", " sp ", "alice\r", "a\rb") .map((s) => Uint8Array.from(Buffer.from(s, "latin1"))) },
    ),
    fc.constantFrom("\r\n", "\n", "\r\r\n", "\r\n", "\r\n"),
  )
  .map(([v, separator, argument, ending]) => {
    // The argument's own LFs would end the line early: turn them into something else.
    const arg = argument.map((b) => (b === LF ? 0x2e : b));
    return Uint8Array.from([...v.map((b) => (b === LF ? 0x2e : b)), ...Buffer.from(separator, "latin1"), ...arg, ...Buffer.from(ending, "latin1")]);
  });

/** A whole client dialogue: lines, now and then junk without an end, cut into reads. */
const dialogue = fc
  .tuple(fc.array(fc.oneof({ weight: 8, arbitrary: commandLine }, { weight: 1, arbitrary: bytes(64) }), { maxLength: 12 }))
  .map(([lines]) => Uint8Array.from(lines.flatMap((line) => [...line])))
  .chain((stream) =>
    fc.record({
      stream: fc.constant(stream),
      cuts: fc.uniqueArray(fc.integer({ min: 0, max: stream.length }), { maxLength: 20 }).map((cuts) => [...cuts].sort((a, b) => a - b)),
    }),
  );

const latinBytes = (text: string) => [...Buffer.from(text, "latin1")];
/** Bytes for a name or a secret: anything but LF (which would end the line early), NUL and CR likely. */
const field = bytes(30).map((data) => [...data].map((b) => (b === LF ? 0x2e : b)));
const ending = fc.constantFrom("\r\n", "\n", "\r\n", "\r\r\n");
const spaces = fc.constantFrom(" ", " ", "  ");

/** USER name, then PASS secret, in any case, with one or more spaces. */
const userPass = fc
  .tuple(fc.constantFrom("USER", "user", "UsEr"), spaces, field, ending, fc.constantFrom("PASS", "pass"), spaces, field, ending)
  .map(([u, s1, name, e1, p, s2, secret, e2]) => Uint8Array.from([...latinBytes(u + s1), ...name, ...latinBytes(e1 + p + s2), ...secret, ...latinBytes(e2)]));

/** APOP name digest (the digest may hold spaces: only the first one separates). */
const apopLogin = fc
  .tuple(fc.constantFrom("APOP", "apop"), spaces, field.map((name) => name.filter((b) => b !== 0x20)), field, ending)
  .map(([verb, s1, name, digest, e]) => Uint8Array.from([...latinBytes(verb + s1), ...name, 0x20, ...digest, ...latinBytes(e)]));

/** Base64 the way a client would send it, now and then broken (a stray character, a missing pad). */
const base64Of = (data: number[]) =>
  fc.constantFrom("good", "good", "good", "good", "stray", "short").map((how) => {
    const text = Buffer.from(data).toString("base64");
    return latinBytes(how === "good" ? text : how === "stray" ? text + "!" : text.replace(/=+$/, ""));
  });

/** AUTH PLAIN / LOGIN / CRAM-MD5, with the response on the AUTH line or on lines of their own. */
const saslLogin = fc
  .tuple(
    fc.constantFrom("PLAIN", "plain", "LOGIN", "login", "CRAM-MD5"),
    fc.boolean(),
    fc.oneof({ weight: 3, arbitrary: fc.constant("empty" as const) }, { weight: 1, arbitrary: fc.constant("same" as const) }, { weight: 1, arbitrary: field }),
    fc.oneof({ weight: 3, arbitrary: field.map((name) => name.filter((b) => b !== 0)) }, { weight: 1, arbitrary: field }),
    fc.oneof({ weight: 3, arbitrary: field.map((secret) => secret.filter((b) => b !== 0)) }, { weight: 1, arbitrary: field }),
    fc.oneof(
      { weight: 4, arbitrary: fc.array(fc.constantFrom(..."0123456789abcdef"), { minLength: 32, maxLength: 32 }) },
      { weight: 1, arbitrary: fc.array(fc.constantFrom(..."0123456789abcdefABCDEF "), { minLength: 31, maxLength: 33 }) },
    ),
    ending,
  )
  .chain(([mechanism, initial, identity, name, secret, digest, e]) => {
    const authzid = identity === "empty" ? [] : identity === "same" ? name : identity;
    const upper = mechanism.toUpperCase();
    if (upper === "PLAIN") {
      return base64Of([...authzid, 0, ...name, 0, ...secret]).map((response) =>
        Uint8Array.from(initial ? [...latinBytes(`AUTH ${mechanism} `), ...response, ...latinBytes(e)] : [...latinBytes(`AUTH ${mechanism}${e}`), ...response, ...latinBytes(e)]),
      );
    }
    if (upper === "LOGIN") {
      return fc.tuple(base64Of(name), base64Of(secret)).map(([n, p]) =>
        Uint8Array.from(initial ? [...latinBytes(`AUTH ${mechanism} `), ...n, ...latinBytes(e), ...p, ...latinBytes(e)] : [...latinBytes(`AUTH ${mechanism}${e}`), ...n, ...latinBytes(e), ...p, ...latinBytes(e)]),
      );
    }
    return base64Of([...name, 0x20, ...latinBytes(digest.join(""))]).map((response) =>
      Uint8Array.from([...latinBytes(`AUTH ${mechanism}${e}`), ...response, ...latinBytes(e)]),
    );
  });

/** Environments qmail-popup might be started with: every POP3AUTH and UCSPITLS mode, port 995 or not. */
const environment: fc.Arbitrary<Environment> = fc.record(
  {
    POP3AUTH: fc.constantFrom("+apop", "apop", "APOP", "+APOP-x", "", "plain", "+apopx", "+apop+cram", "cram-md5"),
    UCSPITLS: fc.constantFrom("", "!", "-", "x"),
    SSLCTLFD: fc.constant("6"),
    SSLREADFD: fc.constant("7"),
    SSLWRITEFD: fc.constant("8"),
    TCPLOCALPORT: fc.constantFrom("110", "995"),
    TCPREMOTEIP: fc.string(),
    TCPREMOTEHOST: fc.string(),
    POP3TIMEOUT: fc.constantFrom("1", "2", "abc", "0"),
  },
  { requiredKeys: [] },
);

const hostname = fc.oneof(fc.constantFrom("mail.test", "a b c", "x".repeat(300)), fc.string({ unit: "binary-ascii", minLength: 1, maxLength: 40 }).filter((s) => !s.includes("\0")));

const config: fc.Arbitrary<Config> = fc.tuple(hostname, environment).map(([host, env]) => {
  const made = readConfig([host, "checkpassword", "pop3d", "Maildir"], env);
  if (made === undefined) throw new Error("readConfig refused valid arguments");
  return made;
});

// --- helpers ---------------------------------------------------------------------

type Plain = { kind: string; line?: number[] };
const plainEvent = (event: LineEvent): Plain => (event.kind === "line" ? { kind: "line", line: [...event.line] } : { kind: event.kind });

/**
 * Feeds every chunk to the end, as the session does (a read never goes past
 * an LF, but a chunk may hold several lines here), checking each feed's
 * contract and that the reader never holds more than its limit.
 */
function readAll(reader: LineReader, chunks: readonly Uint8Array[], onEvent: (event: LineEvent) => void = () => {}): Plain[] {
  const events: Plain[] = [];
  for (const chunk of chunks) {
    let rest = chunk;
    while (rest.length > 0) {
      const { consumed, event } = reader.feed(rest);
      if (consumed < 1 || consumed > rest.length) throw new Error(`consumed ${consumed} of ${rest.length}`);
      if (event !== undefined && rest[consumed - 1] !== LF) throw new Error("an event without its LF");
      if (event === undefined && consumed !== rest.length) throw new Error("stopped before the end without an event");
      if (reader.pending > reader.limit - 1 && reader.pending > 0) throw new Error(`pending ${reader.pending} over limit ${reader.limit}`);
      if (event !== undefined) {
        if (reader.pending !== 0) throw new Error("bytes held after a complete line");
        events.push(plainEvent(event));
        onEvent(event);
      }
      rest = rest.subarray(consumed);
    }
  }
  return events;
}

/** The spec's rule, written independently of the reader: what each LF-ended line of a stream is. */
function specEvents(stream: Uint8Array, lineLimit: number): Plain[] {
  const events: Plain[] = [];
  let start = 0;
  for (let i = 0; i < stream.length; i++) {
    if (stream[i] !== LF) continue;
    const body = stream.subarray(start, i);
    start = i + 1;
    // The limit counts the whole line, its LF (and CR) included.
    if (body.length + 1 > lineLimit) events.push({ kind: "too-long" });
    else if (body.includes(0)) events.push({ kind: "nul" });
    else events.push({ kind: "line", line: [...(body.at(-1) === CR ? body.subarray(0, -1) : body)] });
  }
  return events;
}

const latin1 = (data: Uint8Array) => Buffer.from(data).toString("latin1");

/** A reply from the session: one `+OK`/`-ERR` line, or the CAPA list; printable ASCII between CRLFs. */
const STATUS_LINE = /^(?:\+OK|-ERR)(?:[ \x21-\x7e][\x20-\x7e]*)?\r\n$/;
const CAPA_LIST = /^\+OK capability list follows\r\n(?:[A-Z0-9][A-Z0-9-]*(?: [\x20-\x7e]+)?\r\n)*\.\r\n$/;
/** Another multi-line answer (AUTH's list of mechanisms): a status line, items that do not start with a dot, `.`. */
const LIST = /^\+OK(?: [\x20-\x7e]*)?\r\n(?:[\x21-\x2d\x2f-\x7e][\x20-\x7e]*\r\n)*\.\r\n$/;
/** An RFC 5034 SASL continuation (`+ base64`), where AUTH is offered. */
const SASL_CONTINUATION = /^\+ [A-Za-z0-9+/]*={0,2}\r\n$/;

function checkReply(text: string): void {
  const wellFormed = text.startsWith("+OK capability list follows\r\n")
    ? CAPA_LIST.test(text)
    : STATUS_LINE.test(text) || LIST.test(text) || SASL_CONTINUATION.test(text);
  if (!wellFormed) {
    throw new Error(`malformed reply ${JSON.stringify(text)}`);
  }
  if (text.includes("\0")) throw new Error(`NUL in reply ${JSON.stringify(text)}`);
  if (/\r(?!\n)|(?<!\r)\n/.test(text)) throw new Error(`bare CR or LF in reply ${JSON.stringify(text)}`);
}

/** What the client typed after the verb and its spaces (the spec's rule, on the line as the client sent it). */
function modelCommand(line: Uint8Array): { verb: string; argument: Uint8Array } {
  const text = latin1(line);
  const space = text.indexOf(" ");
  if (space < 0) return { verb: text.replace(/[a-z]/g, (c) => c.toUpperCase()), argument: new Uint8Array(0) };
  let start = space;
  while (text[start] === " ") start++;
  return { verb: text.slice(0, space).replace(/[a-z]/g, (c) => c.toUpperCase()), argument: line.slice(start) };
}

const fromBase64 = (data: Uint8Array) => new Uint8Array(Buffer.from(latin1(data), "base64"));

/** A SASL response as the client sent it: the AUTH line's initial response, or a line of its own. */
function saslResponse(line: Uint8Array): Uint8Array {
  const { verb, argument } = modelCommand(line);
  return verb === "AUTH" ? modelCommand(argument).argument : line;
}

type SpawnAuth = Extract<Action, { kind: "spawnAuth" }>;
type Credentials = { name: Uint8Array; secret: Uint8Array };

interface Transcript {
  replies: string[];
  spawns: { action: SpawnAuth; expected: Credentials | undefined }[];
}

/**
 * What the client meant to log in with, from its own lines (copies taken
 * before the session saw them) and the replies each got: the model the
 * spawnAuth's name and secret are checked against.
 */
function modelCredentials(method: string, history: readonly { line: Uint8Array; replies: string[] }[]): Credentials | undefined {
  const current = history.at(-1)!.line;
  switch (method) {
    case "User": {
      // The argument of the last accepted USER (an accepted STLS forgets it), and PASS's argument.
      for (let i = history.length - 2; i >= 0; i--) {
        const { line, replies } = history[i]!;
        const { verb, argument } = modelCommand(line);
        if (verb === "STLS" && replies[0]?.startsWith("+OK")) return undefined;
        if (verb === "USER" && replies.length === 1 && replies[0] === "+OK \r\n") {
          return { name: argument, secret: modelCommand(current).argument };
        }
      }
      return undefined;
    }
    case "Apop": {
      // Only the first space separates: the digest is everything after it.
      const { argument } = modelCommand(current);
      const space = argument.indexOf(0x20);
      return { name: argument.slice(0, space), secret: argument.slice(space + 1) };
    }
    case "Plain": {
      // authzid NUL authcid NUL password.
      const fields = splitNul(fromBase64(saslResponse(current)));
      return fields.length === 3 ? { name: fields[1]!, secret: fields[2]! } : undefined;
    }
    case "Login": {
      const previous = history.at(-2);
      return previous === undefined ? undefined : { name: fromBase64(saslResponse(previous.line)), secret: fromBase64(current) };
    }
    case "Cram-md5": {
      const response = fromBase64(current);
      const space = response.lastIndexOf(0x20);
      return { name: response.slice(0, space), secret: response.slice(space + 1) };
    }
  }
  return undefined;
}

/** The reader's buffer in serve.ts: the longest line any state allows (a SASL response's). */
const readerLimit = SASL_RESPONSE_LIMIT;

/**
 * Runs a client's byte stream through the reader and the session as serve.ts
 * does (the session ends at quit or at the first spawnAuth), checks that
 * handleLine wipes every line it is given, and keeps what the client sent.
 */
function runSession(cfg: Config, chunks: readonly Uint8Array[], timestamp: Uint8Array = apopTimestamp(1, 2, cfg.hostname)): Transcript {
  const transcript: Transcript = { replies: [], spawns: [] };
  let state: SessionState = initialState(cfg, timestamp);
  const history: { line: Uint8Array; replies: string[] }[] = [];
  const reader = new LineReader(readerLimit);
  outer: for (const chunk of chunks) {
    let rest = chunk;
    while (rest.length > 0) {
      const { consumed, event } = reader.feed(rest, lineLimit(state));
      if (consumed < 1 || consumed > rest.length) throw new Error(`consumed ${consumed} of ${rest.length}`);
      if (reader.pending > readerLimit) throw new Error(`pending ${reader.pending} over ${readerLimit}`);
      rest = rest.subarray(consumed);
      if (event === undefined) continue;
      // What the client sent, copied before the session sees (and wipes) it.
      const entry = { line: event.kind === "line" ? event.line.slice() : new Uint8Array(0), replies: [] as string[] };
      const step = handleLine(cfg, state, event);
      if (event.kind === "line" && !event.line.every((byte) => byte === 0)) throw new Error("handleLine left the line unwiped");
      state = step.state;
      history.push(entry);
      let ended = false;
      for (const action of step.actions) {
        if (action.kind === "reply") {
          transcript.replies.push(action.text);
          entry.replies.push(action.text);
        } else if (action.kind === "quit") ended = true;
        else if (action.kind === "spawnAuth") {
          transcript.spawns.push({ action, expected: modelCredentials(action.method, history) });
          ended = true;
        }
      }
      if (ended) break outer;
    }
  }
  return transcript;
}

function splitNul(data: Uint8Array): Uint8Array[] {
  const fields: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i <= data.length; i++) {
    if (i === data.length || data[i] === 0) {
      fields.push(data.subarray(start, i));
      start = i + 1;
    }
  }
  return fields;
}

// --- the properties -------------------------------------------------------------

describe("LineReader", () => {
  test("a stream cut anywhere into reads gives the same events as in one read, as a byte at a time, and as the spec says", () => {
    check(
      fc.property(limit.chain((lineLimit) => fc.tuple(fc.constant(lineLimit), splitStream(lineLimit))), ([lineLimit, { stream, cuts }]) => {
        const whole = readAll(new LineReader(lineLimit), [stream]);
        const cut = readAll(new LineReader(lineLimit), cutAt(stream, cuts));
        const bytewise = readAll(new LineReader(lineLimit), Array.from(stream, (b) => Uint8Array.of(b)));
        expect(cut).toEqual(whole);
        expect(bytewise).toEqual(whole);
        expect(whole).toEqual(specEvents(stream, lineLimit));
      }),
    );
  }, TIMEOUT);

  test("never holds more than its limit, whatever arrives, and holds nothing after a line", () => {
    check(
      fc.property(
        limit,
        fc.array(fc.oneof(bytes(64), fc.integer({ min: 0, max: 5000 }).map((n) => new Uint8Array(n).fill(0x61)), fc.constant(Uint8Array.of(LF))), { maxLength: 30 }),
        (lineLimit, chunks) => {
          const reader = new LineReader(lineLimit);
          // readAll checks pending after every feed.
          readAll(reader, chunks);
          expect(reader.pending).toBeLessThanOrEqual(lineLimit);
          // The buffer itself never grows.
          expect((reader as unknown as { buffer: Uint8Array }).buffer.length).toBe(lineLimit);
        },
      ),
    );
  }, TIMEOUT);
});

describe("session", () => {
  test("no dialogue makes the reader or handleLine throw; every reply is one well-formed line or a CAPA list", () => {
    check(
      fc.property(config, dialogue, (cfg, { stream, cuts }) => {
        const { replies } = runSession(cfg, cutAt(stream, cuts));
        for (const text of replies) checkReply(text);
      }),
    );
  }, TIMEOUT);

  test("handleLine does not throw on any event, even lines the reader would never give", () => {
    check(
      fc.property(
        config,
        fc.array(
          fc.oneof(
            { weight: 8, arbitrary: fc.tuple(verb, fc.constantFrom("", " ", "   "), bytes(40)).map(([v, s, a]): LineEvent => ({ kind: "line", line: Uint8Array.from([...v, ...Buffer.from(s), ...a]) })) },
            { weight: 1, arbitrary: fc.constantFrom<LineEvent>({ kind: "too-long" }, { kind: "nul" }) },
          ),
          { maxLength: 12 },
        ),
        (cfg, events) => {
          let state = initialState(cfg);
          for (const event of events) {
            const step = handleLine(cfg, state, event);
            state = step.state;
            for (const action of step.actions) if (action.kind === "reply") checkReply(action.text);
            if (step.actions.some((action) => action.kind === "quit" || action.kind === "spawnAuth")) break;
          }
        },
      ),
    );
  }, TIMEOUT);

  test("the credentials reaching a spawnAuth are the client's bytes: exactly three NUL-terminated fields on fd 3", () => {
    // Dialogues that log in more often than chance would: USER/PASS, APOP, and the SASL exchanges.
    const login = fc.oneof(
      { weight: 3, arbitrary: userPass },
      { weight: 1, arbitrary: apopLogin },
      { weight: 3, arbitrary: saslLogin },
      { weight: 1, arbitrary: dialogue.map(({ stream }) => stream) },
    );
    let spawned = 0;
    check(
      fc.property(
        config.filter((cfg) => cfg.stls !== "required"),
        login,
        fc.nat({ max: 4_000_000 }),
        fc.nat({ max: 2 ** 31 }),
        fc.uniqueArray(fc.nat({ max: 200 }), { maxLength: 10 }),
        (cfg, stream, pid, seconds, cuts) => {
          const timestamp = apopTimestamp(pid, seconds, cfg.hostname);
          const { spawns } = runSession(cfg, cutAt(stream, [...cuts].filter((c) => c <= stream.length).sort((a, b) => a - b)));
          for (const { action, expected } of spawns) {
            spawned++;
            expect(action.name.includes(0)).toBe(false);
            expect(action.secret.includes(0)).toBe(false);
            const encoded = encodeCheckpasswordInput(action.name, action.secret, timestamp);
            expect(encoded.at(-1)).toBe(0);
            const fields = splitNul(encoded);
            expect(fields).toHaveLength(4);
            expect(fields[3]!.length).toBe(0);
            expect(latin1(fields[0]!)).toBe(latin1(action.name));
            expect(latin1(fields[1]!)).toBe(latin1(action.secret));
            expect(latin1(fields[2]!)).toBe(latin1(timestamp));
            // Every method: the bytes the client sent, though the lines were wiped since.
            expect(expected, `no model for ${action.method}`).toBeDefined();
            expect(latin1(fields[0]!)).toBe(latin1(expected!.name));
            expect(latin1(fields[1]!)).toBe(latin1(expected!.secret));
          }
        },
      ),
    );
    // The generators must actually reach logins.
    expect(spawned).toBeGreaterThan(RUNS / 10);
  }, TIMEOUT);
});

describe("formatLogLine", () => {
  const unescape = (field: string): string => field.replace(/\\x([0-9a-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));

  test("is exactly one line of printable ASCII ending in \\n, and the user field decodes to the client's bytes", () => {
    check(
      fc.property(
        bytes(300),
        fc.string({ unit: "grapheme", maxLength: 20 }),
        fc.string({ unit: "binary", maxLength: 20 }),
        fc.nat({ max: 2 ** 22 }),
        fc.constantFrom<LogEntry["result"]>("Accept", "Reject"),
        fc.constantFrom("AUTH::User", "AUTH::Apop", "AUTH::Plain", "AUTH::Login", "STLS::Any"),
        fc.constantFrom<LogEntry["proto"]>("POP3", "POP3S"),
        (user, remoteIp, remoteHost, pid, result, what, proto) => {
          const line = formatLogLine({ pid, result, what, proto, remoteIp, remoteHost, user });
          expect(line).toMatch(/^[\x20-\x7e]*\n$/);
          const match = /^qmail-popup: pid (\d+) (Accept|Reject)::([A-Za-z:]+) P:(POP3S?) S:(.*) \?= '([^']*)'\n$/.exec(line);
          expect(match, line).not.toBeNull();
          expect(Number(match![1])).toBe(pid);
          expect(unescape(match![6]!)).toBe(latin1(user));
        },
      ),
    );
  }, TIMEOUT);
});
