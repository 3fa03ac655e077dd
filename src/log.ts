/**
 * Structured logging: one JSON line per event on stdout.
 *
 * @module
 */

/** Log levels, lowest first; `silent` logs nothing. */
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/** Fields of one log line. */
export type LogFields = Record<string, unknown>;

/** A logger: one method per level, each taking an event name and fields. */
export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
  /** Whether lines of this level are written (to skip building fields that would be dropped). */
  enabled(level: LogLevel): boolean;
}

/** Options for {@link createLogger}. */
export interface LoggerOptions {
  level?: LogLevel;
  /** Where lines go; default `console.log`. */
  write?: (line: string) => void;
}

/** Whether `value` names a log level. */
export function isLogLevel(value: string): value is LogLevel {
  return value in RANK;
}

/** Create a logger writing JSON lines `{"time","level","event",…fields}`. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const min = RANK[options.level ?? "info"];
  const write = options.write ?? ((line: string) => console.log(line));
  const at = (level: LogLevel) => (event: string, fields?: LogFields) => {
    if (RANK[level] < min) return;
    write(JSON.stringify({ time: new Date().toISOString(), level, event, ...fields }));
  };
  return {
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    enabled: (level) => RANK[level] >= min,
  };
}
