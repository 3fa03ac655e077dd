/**
 * Configuration from environment variables. Every variable is documented in
 * README.md; a bad value stops the start with a message that names it.
 *
 * @module
 */

import { isLogLevel, type LogLevel } from "./log.ts";

/** The service's settings. */
export interface Config {
  port: number;
  host: string;
  heartbeatSeconds: number;
  idleTimeoutSeconds: number;
  maxBodyBytes: number;
  maxWsMessageBytes: number;
  maxHeldPerAgent: number;
  maxHeldTotal: number;
  maxSocketsPerAgent: number;
  dedupeWindow: number;
  logLevel: LogLevel;
}

/** Defaults, as the README's configuration table lists them. */
export const DEFAULTS: Config = {
  port: 1234,
  host: "0.0.0.0",
  heartbeatSeconds: 30,
  idleTimeoutSeconds: 60,
  maxBodyBytes: 256 * 1024,
  maxWsMessageBytes: 64 * 1024,
  maxHeldPerAgent: 1000,
  maxHeldTotal: 100_000,
  maxSocketsPerAgent: 8,
  dedupeWindow: 100_000,
  logLevel: "info",
};

/** Raised for a bad environment variable. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

function int(
  env: Record<string, string | undefined>,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const n = Number(raw.trim());
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`cannot read ${name}=${JSON.stringify(raw)}: expected an integer from ${min} to ${max}`);
  }
  return n;
}

/** Read the configuration from an environment (`Deno.env.toObject()`). */
export function parseConfig(env: Record<string, string | undefined>): Config {
  const level = (env.LOG_LEVEL ?? DEFAULTS.logLevel).trim().toLowerCase();
  if (!isLogLevel(level)) {
    throw new ConfigError(
      `cannot read LOG_LEVEL=${JSON.stringify(env.LOG_LEVEL)}: expected debug, info, warn, error or silent`,
    );
  }
  return {
    port: int(env, "PORT", DEFAULTS.port, 0, 65535),
    host: env.HOST?.trim() || DEFAULTS.host,
    heartbeatSeconds: int(env, "HEARTBEAT_SECONDS", DEFAULTS.heartbeatSeconds, 1, 86400),
    idleTimeoutSeconds: int(env, "IDLE_TIMEOUT_SECONDS", DEFAULTS.idleTimeoutSeconds, 1, 86400),
    maxBodyBytes: int(env, "MAX_BODY_BYTES", DEFAULTS.maxBodyBytes, 1024, 64 * 1024 * 1024),
    maxWsMessageBytes: int(env, "MAX_WS_MESSAGE_BYTES", DEFAULTS.maxWsMessageBytes, 1024, 16 * 1024 * 1024),
    maxHeldPerAgent: int(env, "MAX_HELD_PER_AGENT", DEFAULTS.maxHeldPerAgent, 1, 10_000_000),
    maxHeldTotal: int(env, "MAX_HELD_TOTAL", DEFAULTS.maxHeldTotal, 1, 100_000_000),
    maxSocketsPerAgent: int(env, "MAX_SOCKETS_PER_AGENT", DEFAULTS.maxSocketsPerAgent, 1, 1000),
    dedupeWindow: int(env, "DEDUPE_WINDOW", DEFAULTS.dedupeWindow, 0, 100_000_000),
    logLevel: level,
  };
}
