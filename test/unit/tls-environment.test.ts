import { describe, expect, it } from "vitest";
import { parseTlsEnvironment, tlsAnswerComplete } from "../../src/core/tls-environment.ts";

const bytes = (text: string) => Buffer.from(text, "latin1");

describe("sslserver's SSLCTLFD answer", () => {
  it("is complete only once the empty pair ends it", () => {
    expect(tlsAnswerComplete(bytes("SSL_PROTOCOL=TLSv1.3\0"))).toBe(false);
    expect(tlsAnswerComplete(bytes("SSL_PROTOCOL=TLSv1.3\0\0"))).toBe(true);
    expect(tlsAnswerComplete(bytes("\0"))).toBe(true);
    expect(tlsAnswerComplete(bytes(""))).toBe(false);
  });

  it("gives its SSL_* variables and ignores anything else", () => {
    const answer = bytes("SSL_PROTOCOL=TLSv1.3\0SSL_CIPHER=TLS_AES_256_GCM_SHA384\0PATH=/evil\0junk\0SSL_EMPTY=\0\0");
    expect(parseTlsEnvironment(answer)).toEqual({
      SSL_PROTOCOL: "TLSv1.3",
      SSL_CIPHER: "TLS_AES_256_GCM_SHA384",
      SSL_EMPTY: "",
    });
  });

  it("keeps an = inside a value", () => {
    expect(parseTlsEnvironment(bytes("SSL_CLIENT_S_DN=CN=a=b\0\0"))).toEqual({ SSL_CLIENT_S_DN: "CN=a=b" });
  });
});
