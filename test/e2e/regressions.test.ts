// Hostile cases that found bugs (issue #6), now fixed, in every variant:
// the front waits for the login program, whatever the runtime.

import { describe, test } from "vitest";
import { variants } from "./harness.ts";
import { fd5BrokenPipe, fd5FullPipe, hangUpDuringFailingChild, highExitStatus, passwordNotInMemory, replyToStuckClient } from "./hostile-cases.ts";

const modes = variants();

describe.each(modes)("$name", (variant) => {
  test.concurrent("fd 5 a pipe whose reader is gone: EPIPE neither kills nor hangs the session", () => fd5BrokenPipe(variant));
  test.concurrent("fd 5 a full pipe: the reply still arrives and the session ends at the write timeout", () => fd5FullPipe(variant), 30_000);
  test.concurrent("RST while a refusing checkpassword still runs: the Reject log line is written, status 1", () => hangUpDuringFailingChild(variant, "RST"));
  test.concurrent.each([129, 255])("a checkpassword that exits %i has failed (authorization failed), not crashed", (status) => highExitStatus(variant, status));
  test.concurrent("the password is not in qmail-popup's memory while the child runs", () => passwordNotInMemory(variant));
  test.concurrent("a refusal to a client that does not read: the reply write is bounded by POP3TIMEOUT", () => replyToStuckClient(variant), 30_000);
});
