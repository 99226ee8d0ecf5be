import { bytesOf } from "./core/bytes.ts";
import type { Platform } from "./platform/types.ts";
import { RUNTIME_FAILURE_STATUS, serve } from "./serve.ts";

/**
 * Runs one session. Anything unexpected is reported on fd 2 (tcpserver's
 * log), never on fd 1: the network sees no stack trace; the front answers
 * the client `-ERR [SYS/TEMP] …` for a runtime that fails.
 */
export function main(platform: Platform): void {
  const fail = (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    platform.write(2, bytesOf(`qmail-popup: fatal: ${message}\n`), platform.nowMs() + 1000).finally(() => platform.exit(RUNTIME_FAILURE_STATUS));
  };
  serve(platform).catch(fail);
}
