import { describe, expect, it } from "vitest";
import { OUTCOMES, OUTCOME_KINDS } from "../../src/core/outcome.ts";

describe("OUTCOMES", () => {
  it("accept: no reply (qmail-pop3d has said +OK), Accept, status 0", () => {
    expect(OUTCOMES.accept).toEqual({ reply: undefined, result: "Accept", status: 0 });
  });

  it("fail: `-ERR [AUTH] authorization failed\\r\\n`, Reject, status 1", () => {
    expect(OUTCOMES.fail).toEqual({ reply: "-ERR [AUTH] authorization failed\r\n", result: "Reject", status: 1 });
  });

  it("temporary (exit 111) and unrunnable: `-ERR [SYS/TEMP] authorization failed\\r\\n`", () => {
    for (const kind of ["temporary", "unrunnable"] as const) {
      expect(OUTCOMES[kind]).toEqual({ reply: "-ERR [SYS/TEMP] authorization failed\r\n", result: "Reject", status: 1 });
    }
  });

  it("crash: `-ERR [SYS/TEMP] aack, child crashed\\r\\n`, Reject (not Accept), status 1", () => {
    expect(OUTCOMES.crash).toEqual({ reply: "-ERR [SYS/TEMP] aack, child crashed\r\n", result: "Reject", status: 1 });
  });

  it("OUTCOME_KINDS names every row", () => {
    expect([...OUTCOME_KINDS].sort()).toEqual(["accept", "crash", "fail", "temporary", "unrunnable"]);
  });
});
