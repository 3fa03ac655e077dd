/**
 * How kefu refuses: one `kefu: …` line on standard error and an exit code, never a backtrace.
 * Exit codes: 0 done; 1 something went wrong that the operator did not set; 2 refused for something the operator
 * sets (a variable, CONFIG_FILE, DATA_DIR and its lock, Deno's permissions, the address to listen on, a command).
 *
 * @module
 */

import { ConfigError } from "../config/config.ts";

/** Exit code of a start refused for something the operator sets. */
export const EXIT_REFUSED = 2;
/** Exit code of anything else that went wrong. */
export const EXIT_FAILED = 1;

/** Where a command listens, for the message when it cannot. */
export interface Listen {
  host: string;
  port: number;
  /** The variables that set it, e.g. "HOST, PORT". */
  vars: string;
}

/** The one line (without `kefu: `) and the exit code for an error that stopped a command. */
export function refusal(e: unknown, listen?: Listen): { line: string; code: number } {
  const message = oneLine(e instanceof Error ? e.message : String(e));
  if (e instanceof ConfigError) {
    const more = e.problems.length - 1;
    const tail = more > 0 ? ` (and ${more} more problem${more === 1 ? "" : "s"}: kefu check-config lists them)` : "";
    return { line: `${oneLine(e.problems[0])}${tail}`, code: EXIT_REFUSED };
  }
  const where = listen && `${listen.host.includes(":") ? `[${listen.host}]` : listen.host}:${listen.port}`;
  if (listen && e instanceof Deno.errors.AddrInUse) {
    return { line: `cannot listen on ${where} (${listen.vars}): address already in use`, code: EXIT_REFUSED };
  }
  if (listen && (e instanceof Deno.errors.AddrNotAvailable || e instanceof Deno.errors.PermissionDenied)) {
    return { line: `cannot listen on ${where} (${listen.vars}): ${message}`, code: EXIT_REFUSED };
  }
  if (e instanceof Deno.errors.NotCapable) return { line: `missing a Deno permission: ${message}`, code: EXIT_REFUSED };
  return { line: `cannot start: ${message}`, code: EXIT_FAILED };
}

/** Say why on one line and exit. */
export function exitWith(line: string, code: number): never {
  console.error(`kefu: ${line}`);
  Deno.exit(code);
}

/** A message on one line: Deno's errors may span several (a hint, a cause). */
export function oneLine(text: string): string {
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "").join(" ");
}
