// The descriptor-level operations a runtime must supply. Everything else
// (the session loop, the line reading rule, what to log, the plan for the
// front) is shared. Starting the login program is the front's job
// (src/front/qmail-popup.c), not the runtime's.

export interface Platform {
  /** The control socket to the front: the number the front put in our argv, if any. */
  readonly controlFd: number | undefined;
  unixSeconds(): number;
  /** Milliseconds, for deadlines. */
  nowMs(): number;
  /**
   * Reads at most buffer.length bytes and never past the first LF: what
   * follows PASS belongs to the login program, and what follows STLS must
   * not be read in clear. 0 at end of file or on a read error, "timeout"
   * when nothing arrived before the deadline.
   */
  readLinePart(fd: number, buffer: Uint8Array, deadlineMs: number): Promise<number | "timeout">;
  /** Reads at most buffer.length bytes (some may be past an LF). 0 at end of file or on error. */
  read(fd: number, buffer: Uint8Array, deadlineMs: number): Promise<number | "timeout">;
  /**
   * Reads at most buffer.length bytes of the control socket, waiting as
   * long as it takes: the front always answers. 0 at end of file or on error.
   */
  readControl(fd: number, buffer: Uint8Array): number;
  /** Writes all of bytes to the control socket; the front always reads. False if it is gone. */
  writeControl(fd: number, bytes: Uint8Array): boolean;
  /** Writes all of bytes. False when the peer is gone or the deadline passed. */
  write(fd: number, bytes: Uint8Array, deadlineMs: number): Promise<boolean>;
  /**
   * Makes this process undumpable (no core file, no ptrace) where the
   * runtime can: called before the first line is read, so before any
   * credential is held.
   */
  forbidDumps(): void;
  /**
   * Ends this process when the front (frontPid, our parent) is gone: the
   * front's confinement made our exec "secure", which cleared the
   * parent-death signal it had set. At once if it is gone already.
   */
  endWithFront(frontPid: number): void;
  exit(status: number): never;
}
