import { describe, expect, it } from "vitest";
import { parseTlsEnvironment, tlsAnswerComplete } from "../../src/core/tls-environment.ts";

const bytes = (text: string) => Buffer.from(text, "latin1");

describe("sslserver's SSLCTLFD answer", () => {
  it("is complete only once the empty pair ends it", () => {
    expect(tlsAnswerComplete(bytes("SSL_PROTOCOL=TLSv1.3\0"))).toBe(false);
    expect(tlsAnswerComplete(bytes("SSL_PROTOCOL=TLSv1.3\0\0"))).toBe(true);
    expect(tlsAnswerComplete(bytes("SSL_EMPTY=\0\0"))).toBe(true);
    expect(tlsAnswerComplete(bytes("\0"))).toBe(true);
    expect(tlsAnswerComplete(bytes(""))).toBe(false);
  });

  it("gives its SSL_* variables and leaves other variables out", () => {
    const answer = bytes("SSL_PROTOCOL=TLSv1.3\0SSL_CIPHER=TLS_AES_256_GCM_SHA384\0PATH=/evil\0SSL_EMPTY=\0\0");
    expect(parseTlsEnvironment(answer)).toEqual({
      variables: { SSL_PROTOCOL: "TLSv1.3", SSL_CIPHER: "TLS_AES_256_GCM_SHA384", SSL_EMPTY: "" },
    });
  });

  it("keeps an = inside a value", () => {
    expect(parseTlsEnvironment(bytes("SSL_CLIENT_S_DN=CN=a=b\0\0"))).toEqual({ variables: { SSL_CLIENT_S_DN: "CN=a=b" } });
  });

  it("refuses an answer that does not fit ucspi-ssl's framing: a DN holding NUL bytes makes no variables", () => {
    // What the issue saw: the DN's NULs cut it into "variables" of the client's making.
    expect(parseTlsEnvironment(bytes("SSL_PROTOCOL=TLSv1.3\0SSL_CLIENT_S_DN=CN=x\0SSL_CLIENT_VERIFY=SUCCESS\0SSL_X\0\0"))).toEqual({
      refused: "a pair that is not NAME=value",
    });
    expect(parseTlsEnvironment(bytes("SSL_CLIENT_S_DN=CN=x\0\0SSL_CLIENT_VERIFY=SUCCESS\0\0"))).toEqual({ refused: "27 bytes after its end" });
    expect(parseTlsEnvironment(bytes("SSL_PROTOCOL=TLSv1.3\0SSL_PROTOCOL=SSLv3\0\0"))).toEqual({ refused: "SSL_PROTOCOL given twice" });
    expect(parseTlsEnvironment(bytes("=x\0\0"))).toEqual({ refused: "a pair that is not NAME=value" });
    expect(parseTlsEnvironment(bytes("SSL PROTOCOL=x\0\0"))).toEqual({ refused: "a pair that is not NAME=value" });
    expect(parseTlsEnvironment(bytes("SSL_PROTOCOL=TLSv1.3\0"))).toEqual({ refused: "no end" });
  });
});
