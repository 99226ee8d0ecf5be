// @ts-check
// scripts/bench.mjs: the POP3 client side, timed with process.hrtime.bigint().

import { connect } from "node:net";
import { Waiters } from "../lib/tcpserver.mjs";
import { config } from "./config.mjs";

/** @typedef {import("node:net").Socket} Socket */

/** Every socket open, for the end of the run (an error, a signal). */
const sockets = /** @type {Set<Socket>} */ (new Set());

export function destroySockets() {
  for (const socket of sockets) socket.destroy();
}

/** @param {bigint} ns */
const nsToMs = (ns) => Number(ns) / 1e6;

/**
 * An error's message (a system error's code), for the report.
 * @param {unknown} error
 */
export function errorText(error) {
  return error instanceof Error ? (/** @type {NodeJS.ErrnoException} */ (error).code ?? error.message) : String(error);
}

/** A client connection that reads CRLF lines; nothing is timed here. */
export class LineClient {
  buffer = "";
  /** @type {string[]} */
  lines = [];
  closed = false;
  /** @type {Error | undefined} */
  error;
  /** The pid tcpserver started for it, once asked. */
  pid = 0;
  #waiters = new Waiters();

  /** @param {Socket} socket */
  constructor(socket) {
    this.socket = socket;
    socket.setEncoding("latin1");
    socket.on("data", (/** @type {string} */ chunk) => {
      this.buffer += chunk;
      let newline;
      while ((newline = this.buffer.indexOf("\n")) >= 0) {
        this.lines.push(this.buffer.slice(0, newline + 1));
        this.buffer = this.buffer.slice(newline + 1);
      }
      this.#waiters.wake();
    });
    socket.on("close", () => {
      this.closed = true;
      sockets.delete(socket);
      this.#waiters.wake();
    });
    socket.on("error", (error) => {
      this.error ??= error;
    });
  }

  /**
   * @param {number} port
   * @returns {Promise<LineClient>}
   */
  static connect(port) {
    return new Promise((done, reject) => {
      const socket = connect({ port, host: "127.0.0.1", noDelay: true });
      sockets.add(socket);
      /** @param {Error} error */
      const fail = (error) => {
        clearTimeout(deadline);
        socket.destroy();
        reject(error);
      };
      const deadline = setTimeout(() => fail(new Error("connect timed out")), config.connectionTimeoutMs);
      socket.once("error", fail);
      socket.once("connect", () => {
        clearTimeout(deadline);
        socket.off("error", fail);
        done(new LineClient(socket));
      });
    });
  }

  get localPort() {
    return this.socket.localPort ?? 0;
  }

  /**
   * @param {() => boolean} predicate
   * @param {string} what
   */
  async until(predicate, what) {
    if (!(await this.#waiters.until(predicate, config.connectionTimeoutMs))) throw new Error(`timed out waiting for ${what}; pending ${JSON.stringify(this.buffer)}`);
  }

  /** @param {string} what */
  async line(what) {
    await this.until(() => this.lines.length > 0 || this.closed, what);
    const line = this.lines.shift();
    if (line === undefined) throw new Error(`connection closed before ${what}${this.error ? ` (${errorText(this.error)})` : ""}; pending ${JSON.stringify(this.buffer)}`);
    return line;
  }

  /**
   * The next line, which must be +OK.
   * @param {string} what
   */
  async ok(what) {
    const line = await this.line(`the ${what} reply`);
    if (!line.startsWith("+OK")) throw new Error(`${what}: ${JSON.stringify(line)}`);
    return line;
  }

  /** @param {string} text */
  send(text) {
    if (!this.socket.destroyed) this.socket.write(text, "latin1");
  }

  /** Greeting, USER, PASS: the fixtures' checkpassword takes anyone. */
  async logIn() {
    await this.ok("greeting");
    this.send("USER bench\r\n");
    await this.ok("USER");
    this.send("PASS secret\r\n");
    await this.ok("PASS");
  }

  whenClosed() {
    return this.until(() => this.closed, "the server to close");
  }

  destroy() {
    this.socket.destroy();
  }
}

/**
 * connect -> first CRLF, timed; then QUIT (or, with halfClose, for a program
 * that reads nothing, a half-close) and the server's close.
 * @param {number} port
 * @param {boolean} halfClose
 * @returns {Promise<number>} ms
 */
export function greetingOnce(port, halfClose) {
  return new Promise((done, reject) => {
    /** @type {bigint | undefined} */
    let greetedNs;
    let buffer = "";
    const start = process.hrtime.bigint();
    const socket = connect({ port, host: "127.0.0.1", noDelay: true });
    sockets.add(socket);
    const deadline = setTimeout(() => {
      socket.destroy();
      reject(new Error(greetedNs === undefined ? "no greeting in time" : "no close in time"));
    }, config.connectionTimeoutMs);
    socket.setEncoding("latin1");
    socket.on("data", (/** @type {string} */ chunk) => {
      if (greetedNs !== undefined) return;
      buffer += chunk;
      if (!buffer.includes("\r\n")) return;
      greetedNs = process.hrtime.bigint() - start;
      if (!buffer.startsWith("+OK")) {
        clearTimeout(deadline);
        socket.destroy();
        reject(new Error(`greeting ${JSON.stringify(buffer)}`));
        return;
      }
      if (halfClose) socket.end();
      else socket.write("QUIT\r\n");
    });
    socket.on("error", (error) => {
      // After the greeting a reset (a floor gone before our half-close) is no failure.
      if (greetedNs !== undefined) return;
      clearTimeout(deadline);
      socket.destroy();
      reject(error);
    });
    socket.on("close", () => {
      sockets.delete(socket);
      clearTimeout(deadline);
      if (greetedNs === undefined) reject(new Error(`closed before the greeting: ${JSON.stringify(buffer)}`));
      else done(nsToMs(greetedNs));
    });
  });
}

/**
 * connect -> greeting, USER, PASS, STAT, QUIT -> "+OK " of the QUIT, timed; then the server's close.
 * @param {number} port
 * @returns {Promise<number>} ms
 */
export async function sessionOnce(port) {
  const start = process.hrtime.bigint();
  const client = await LineClient.connect(port);
  try {
    await client.logIn();
    client.send("STAT\r\n");
    const stat = await client.line("the STAT reply");
    if (stat !== "+OK 0 0\r\n") throw new Error(`STAT: ${JSON.stringify(stat)}`);
    client.send("QUIT\r\n");
    await client.ok("QUIT");
    const elapsed = process.hrtime.bigint() - start;
    await client.whenClosed();
    return nsToMs(elapsed);
  } finally {
    client.destroy();
  }
}
