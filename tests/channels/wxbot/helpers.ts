/**
 * What the WXBot tests share: a simulated platform on a free port of
 * 127.0.0.1, the channel's settings pointing at it, a memory log, and a wait.
 *
 * @module
 */

import { parseWxbotConfig, type WxbotConfig } from "../../../src/channels/wxbot/config.ts";
import type { Logger, LogLevel } from "../../../src/core/log.ts";
import { type RunningWxbotSim, startWxbotSim } from "../../../src/simulator/wxbot.ts";

/** The platform key the tests sign in with. */
export const KEY = "test-platform-key";
/** The two accounts under that key, with their Tokens. */
export const BOT = "wxid_bot_one";
export const BOT2 = "wxid_bot_two";
export const TOKENS: Record<string, string> = { [BOT]: "token-one", [BOT2]: "token-two" };

/** A simulated platform for one test; `await using` stops it. */
export function startSim(): RunningWxbotSim & AsyncDisposable {
  const running = startWxbotSim({ port: 0, host: "127.0.0.1", key: KEY, tokens: TOKENS, logLevel: "silent" });
  return Object.assign(running, { [Symbol.asyncDispose]: () => running.shutdown() });
}

/** The channel's settings for `sim`, with short waits; `env` overrides. */
export function configFor(sim: RunningWxbotSim, env: Record<string, string> = {}): WxbotConfig {
  const accounts = Object.entries(TOKENS).map(([wxid, token]) => ({ wxid, token }));
  return parseWxbotConfig({
    WXBOT_KEY: KEY,
    WXBOT_WS_URL: sim.wsUrl,
    WXBOT_API_BASE: sim.apiBase,
    WXBOT_RECONNECT_MS: "50",
    WXBOT_AUTH_TIMEOUT_MS: "2000",
    WXBOT_RETRY_MIN_MS: "5",
    WXBOT_RETRY_MAX_MS: "10",
    WXBOT_TIMEOUT_MS: "2000",
    ...env,
  }, { accounts })!;
}

/** One line a {@link MemoryLog} kept. */
export interface Line {
  level: LogLevel;
  event: string;
  fields: Record<string, unknown>;
}

/** A logger that keeps its lines. */
export class MemoryLog implements Logger {
  readonly lines: Line[] = [];
  debug(event: string, fields: Record<string, unknown> = {}) {
    this.lines.push({ level: "debug", event, fields });
  }
  info(event: string, fields: Record<string, unknown> = {}) {
    this.lines.push({ level: "info", event, fields });
  }
  warn(event: string, fields: Record<string, unknown> = {}) {
    this.lines.push({ level: "warn", event, fields });
  }
  error(event: string, fields: Record<string, unknown> = {}) {
    this.lines.push({ level: "error", event, fields });
  }
  enabled(): boolean {
    return true;
  }
  /** The lines of one event. */
  of(event: string): Line[] {
    return this.lines.filter((l) => l.event === event);
  }
}

/** Wait until `check` is true, polling every 10 ms; throws after `ms`, naming `what`. */
export async function until(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** Wait `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
