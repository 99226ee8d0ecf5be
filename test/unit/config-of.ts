import { readConfig, type Config, type Environment } from "../../src/core/config.ts";

/** The UCSPI-TLS descriptors are given, as sslserver -n does, unless a test says otherwise. */
export const SSL_FDS = { SSLCTLFD: "6", SSLREADFD: "7", SSLWRITEFD: "8" };

/** The configuration qmail-popup would read from env, with SSL_FDS under it. */
export function configOf(env: Environment = {}, subprogram: readonly string[] = ["checkpassword"]): Config {
  const config = readConfig(["mail.example.org", ...subprogram], { ...SSL_FDS, ...env });
  if (config === undefined) throw new Error("readConfig refused valid arguments");
  return config;
}
