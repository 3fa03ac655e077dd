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
  /** Where lines go (without a newline); default stdout, one write per line. */
  write?: (line: string) => void;
}

/** Whether `value` names a log level. */
export function isLogLevel(value: string): value is LogLevel {
  return value in RANK;
}

const encoder = new TextEncoder();
let out = new Uint8Array(4096);

// One write(2) of the whole line, as console.log does, without its formatting of arguments
// and through one reused buffer. A line that cannot be written (stdout closed) is dropped:
// logging never fails a request.
function writeStdout(line: string): void {
  // UTF-8 takes at most 3 bytes per UTF-16 code unit, plus the newline.
  if (out.length < line.length * 3 + 1) out = new Uint8Array(line.length * 3 + 1);
  const { written } = encoder.encodeInto(line, out);
  out[written] = 10; // \n
  const bytes = out.subarray(0, written + 1);
  try {
    for (let n = 0; n < bytes.length;) {
      const w = Deno.stdout.writeSync(bytes.subarray(n));
      if (w <= 0) return;
      n += w;
    }
  } catch {
    // stdout is gone: nowhere left to say so.
  }
}

// new Date().toISOString() costs about half a microsecond; lines within one millisecond share it.
let isoMs = -1;
let iso = "";
function isoNow(): string {
  const ms = Date.now();
  if (ms !== isoMs) {
    iso = new Date(ms).toISOString();
    isoMs = ms;
  }
  return iso;
}

function off(): void {}

/**
 * Create a logger writing JSON lines `{"time","level","event",…fields}`. The methods of
 * levels below `level` do nothing at all; callers that build costly fields per request
 * check {@link Logger.enabled} first, so that nothing is allocated for a dropped line.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const min = RANK[options.level ?? "info"];
  const write = options.write ?? writeStdout;
  const at = (level: LogLevel) =>
    RANK[level] < min ? off : (event: string, fields?: LogFields) => {
      write(JSON.stringify({ time: isoNow(), level, event, ...fields }));
    };
  return {
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    enabled: (level) => RANK[level] >= min,
  };
}

/** A logger that writes nothing (tests, and parts built without one). */
export const silentLogger: Logger = createLogger({ level: "silent" });
