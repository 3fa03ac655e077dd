/**
 * CONFIG_FILE's `automatic` section: per channel account, business hours and the messages kefu sends by itself
 * (welcome, closed reply, please-wait, auto-resolve). Read at start and by `check-config`; a bad time zone, time,
 * date or text stops the start with a `ConfigError` naming its place in the file. docs/configuration.md has an
 * example of every key.
 *
 * @module
 */

import { ConfigError, isObject, refuseUnknownKeys } from "../config/config.ts";
import type { IdleScope } from "../store/store.ts";
import { BusinessHours, type Day, DAYS, type OpenRange } from "./hours.ts";

/** The time zone when a rule names none: China's, where WeChat's users are. */
export const DEFAULT_TIME_ZONE = "Asia/Shanghai";
/** Longest automatic text: WeChat's customer-service text limit is 2048 bytes, about 680 Chinese characters. */
export const MAX_TEXT = 600;

const RULE_KEYS = [
  "channel",
  "account",
  "time_zone",
  "hours",
  "closed_dates",
  "closed_reply",
  "welcome",
  "please_wait",
  "auto_resolve",
] as const;
const RANGE_KEYS = ["days", "from", "to"] as const;
const WAIT_KEYS = ["after_seconds", "text"] as const;
const RESOLVE_KEYS = ["after_minutes", "text"] as const;

/** After how long waiting in the queue a user is told, once, to wait; `{position}` in the text is their place. */
export interface PleaseWait {
  afterMs: number;
  text: string;
}

/** After how long without a message either way a conversation is resolved, with an optional closing text. */
export interface AutoResolve {
  afterMs: number;
  /** "" sends nothing. */
  text: string;
}

/** What kefu sends by itself to the users of one channel account (or of every account matched). */
export interface AutomaticRule {
  /** The channel matched (`wx_official_account`, `pc_hook`, `wxbot`, `http_push`); undefined: every channel. */
  channel?: string;
  /** The account matched (an AppID, a wxid; "" the push channel's); undefined: every account. */
  account?: string;
  /** Opening hours; undefined: always open (no closed reply). */
  hours?: BusinessHours;
  /** Sent once per user per closed period to a user who writes outside the hours; "" none. */
  closedReply: string;
  /** Sent on an Official Account's follow, and to a new contact's first message on other channels; "" none. */
  welcome: string;
  pleaseWait?: PleaseWait;
  autoResolve?: AutoResolve;
}

/** Every rule, and which one a contact's account goes by. */
export class AutomaticConfig {
  /** The rules as configured. */
  readonly rules: readonly AutomaticRule[];

  constructor(rules: readonly AutomaticRule[]) {
    this.rules = rules;
  }

  /** The most specific rule for a contact's (channel, account): both named, then the account, the channel, none. */
  ruleFor(channel: string, account: string): AutomaticRule | undefined {
    const score = (r: AutomaticRule) =>
      (r.channel !== undefined && r.channel !== channel) || (r.account !== undefined && r.account !== account)
        ? -1
        : specificity(r);
    let best: AutomaticRule | undefined;
    let bestScore = -1;
    for (const r of this.rules) {
      const s = score(r);
      if (s > bestScore) [best, bestScore] = [r, s];
    }
    return best;
  }

  /**
   * The rules with an auto-resolve, each with the conversations it governs as a store scope: its own pattern, less
   * the more specific rules' (those go by their own rule, auto-resolve or not). Every contact falls in at most one.
   */
  resolveScopes(): { rule: AutomaticRule; autoResolve: AutoResolve; scope: IdleScope }[] {
    return this.rules.flatMap((rule) => {
      if (rule.autoResolve === undefined) return [];
      const except = this.rules
        .filter((r) => specificity(r) > specificity(rule))
        .map((r) => ({ channel: r.channel, account: r.account }));
      return [{ rule, autoResolve: rule.autoResolve, scope: { channel: rule.channel, account: rule.account, except } }];
    });
  }

  /** Whether any rule has time-based work (please-wait or auto-resolve): the job runs only then. */
  get timed(): boolean {
    return this.rules.some((r) => r.pleaseWait !== undefined || r.autoResolve !== undefined);
  }
}

// How specific a rule is: both named, then the account, the channel, none (no two rules match alike: refused).
function specificity(r: AutomaticRule): number {
  return (r.account !== undefined ? 2 : 0) + (r.channel !== undefined ? 1 : 0);
}

/**
 * Read the `automatic` section (an array of rules; undefined: none). `channels`: the channel names kefu has, so that a
 * misspelt one is refused. Throws `ConfigError` listing every problem.
 */
export function parseAutomaticConfig(section: unknown, channels: readonly string[]): AutomaticConfig {
  if (section === undefined) return new AutomaticConfig([]);
  const where = "CONFIG_FILE automatic";
  if (!Array.isArray(section)) {
    throw new ConfigError(`cannot read ${where}: expected an array of rules [{"account","hours",…}]`);
  }
  const problems: string[] = [];
  const rules: AutomaticRule[] = [];
  const seen = new Set<string>();
  section.forEach((raw, i) => {
    try {
      const rule = parseRule(raw, `${where}[${i}]`, channels);
      const key = `${rule.channel ?? "*"}\n${rule.account ?? "*"}`;
      if (seen.has(key)) {
        throw new ConfigError(
          `cannot read ${where}[${i}]: another rule has the same channel ${JSON.stringify(rule.channel ?? "(any)")} ` +
            `and account ${JSON.stringify(rule.account ?? "(any)")}`,
        );
      }
      seen.add(key);
      rules.push(rule);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      problems.push(...e.problems);
    }
  });
  if (problems.length > 0) throw new ConfigError(problems[0], problems);
  return new AutomaticConfig(rules);
}

function parseRule(raw: unknown, where: string, channels: readonly string[]): AutomaticRule {
  if (!isObject(raw)) throw new ConfigError(`cannot read ${where}: expected an object {"account","hours",…}`);
  refuseUnknownKeys(raw, RULE_KEYS, where);
  const channel = optionalString(raw.channel, `${where}.channel`);
  if (channel !== undefined && !channels.includes(channel)) {
    throw new ConfigError(
      `cannot read ${where}.channel=${JSON.stringify(channel)}: expected one of ${channels.join(", ")}`,
    );
  }
  const account = raw.account === undefined ? undefined : text(raw.account, `${where}.account`, 128, true);
  const timeZone = raw.time_zone === undefined ? DEFAULT_TIME_ZONE : readTimeZone(raw.time_zone, `${where}.time_zone`);
  const ranges = raw.hours === undefined ? undefined : readRanges(raw.hours, `${where}.hours`);
  const closedDates = readDates(raw.closed_dates, `${where}.closed_dates`);
  const closedReply = text(raw.closed_reply ?? "", `${where}.closed_reply`, MAX_TEXT, true);
  if (closedReply !== "" && ranges === undefined) {
    throw new ConfigError(`cannot read ${where}.closed_reply: it needs "hours" (when is the team open?)`);
  }
  return {
    channel,
    account,
    hours: ranges === undefined ? undefined : new BusinessHours({ timeZone, ranges, closedDates }),
    closedReply,
    welcome: text(raw.welcome ?? "", `${where}.welcome`, MAX_TEXT, true),
    pleaseWait: raw.please_wait === undefined ? undefined : readPleaseWait(raw.please_wait, `${where}.please_wait`),
    autoResolve: raw.auto_resolve === undefined
      ? undefined
      : readAutoResolve(raw.auto_resolve, `${where}.auto_resolve`),
  };
}

/** An IANA time zone name Temporal knows; throws `ConfigError` naming `where`. */
export function readTimeZone(value: unknown, where: string): string {
  if (typeof value !== "string" || value.trim() === "") {
    throw new ConfigError(`cannot read ${where}=${JSON.stringify(value)}: expected an IANA time zone (Asia/Shanghai)`);
  }
  try {
    Temporal.Now.zonedDateTimeISO(value.trim());
  } catch {
    throw new ConfigError(
      `cannot read ${where}=${JSON.stringify(value)}: not a time zone this system knows; expected an IANA name ` +
        "such as Asia/Shanghai or Europe/Berlin",
    );
  }
  return value.trim();
}

function readRanges(value: unknown, where: string): OpenRange[] {
  if (!Array.isArray(value)) {
    throw new ConfigError(`cannot read ${where}: expected [{"days":["mon-fri"],"from":"09:00","to":"18:00"}, …]`);
  }
  return value.map((r, i) => {
    const at = `${where}[${i}]`;
    if (!isObject(r)) throw new ConfigError(`cannot read ${at}: expected {"days","from","to"}`);
    refuseUnknownKeys(r, RANGE_KEYS, at);
    const days = readDays(r.days, `${at}.days`);
    const from = readTime(r.from, `${at}.from`, false);
    const to = readTime(r.to, `${at}.to`, true);
    if (to <= from) {
      throw new ConfigError(
        `cannot read ${at}: "to" (${JSON.stringify(r.to)}) must be after "from" (${JSON.stringify(r.from)}); ` +
          'for hours past midnight give two ranges (…"to":"24:00" and the next day\'s "from":"00:00")',
      );
    }
    return { days, from, to };
  });
}

// `mon`, or a range `mon-fri` (wrapping past Sunday: `sat-mon`).
function readDays(value: unknown, where: string): Day[] {
  const names = typeof value === "string" ? [value] : value;
  if (!Array.isArray(names) || names.length === 0) {
    throw new ConfigError(`cannot read ${where}=${JSON.stringify(value)}: expected days such as ["mon-fri","sat"]`);
  }
  const days = new Set<Day>();
  for (const name of names) {
    const [a, b = a] = typeof name === "string" ? name.trim().toLowerCase().split("-") : [];
    const i = DAYS.indexOf(a as Day);
    const j = DAYS.indexOf(b as Day);
    if (i < 0 || j < 0) {
      throw new ConfigError(
        `cannot read ${where}: ${JSON.stringify(name)} is not a day; expected ${DAYS.join(", ")} or a range (mon-fri)`,
      );
    }
    for (let k = i;; k = (k + 1) % 7) {
      days.add(DAYS[k]);
      if (k === j) break;
    }
  }
  return DAYS.filter((d) => days.has(d));
}

// `HH:MM`, 00:00–23:59 (24:00 only as an end). Minutes since midnight.
function readTime(value: unknown, where: string, end: boolean): number {
  const m = typeof value === "string" ? /^(\d{2}):(\d{2})$/.exec(value.trim()) : null;
  const minutes = m === null ? NaN : Number(m[1]) * 60 + Number(m[2]);
  const ok = m !== null && Number(m[2]) < 60 && (minutes < 1440 || (end && minutes === 1440));
  if (!ok) {
    throw new ConfigError(
      `cannot read ${where}=${JSON.stringify(value)}: expected a time HH:MM from 00:00 to ${end ? "24:00" : "23:59"}`,
    );
  }
  return minutes;
}

function readDates(value: unknown, where: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new ConfigError(`cannot read ${where}: expected ["2026-10-01", …]`);
  return value.map((d, i) => {
    try {
      if (typeof d !== "string" || !/^\d{4}-\d{2}-\d{2}$/.test(d)) throw new Error("not YYYY-MM-DD");
      // Temporal refuses a date that does not exist (2026-02-30) rather than moving it.
      return Temporal.PlainDate.from(d, { overflow: "reject" }).toString();
    } catch {
      throw new ConfigError(`cannot read ${where}[${i}]=${JSON.stringify(d)}: expected a date YYYY-MM-DD`);
    }
  });
}

function readPleaseWait(value: unknown, where: string): PleaseWait {
  if (!isObject(value)) throw new ConfigError(`cannot read ${where}: expected {"after_seconds":120,"text":"…"}`);
  refuseUnknownKeys(value, WAIT_KEYS, where);
  return {
    afterMs: count(value.after_seconds, `${where}.after_seconds`, 1, 86_400) * 1000,
    text: text(value.text, `${where}.text`, MAX_TEXT, false),
  };
}

function readAutoResolve(value: unknown, where: string): AutoResolve {
  if (!isObject(value)) throw new ConfigError(`cannot read ${where}: expected {"after_minutes":30,"text":"…"}`);
  refuseUnknownKeys(value, RESOLVE_KEYS, where);
  return {
    afterMs: count(value.after_minutes, `${where}.after_minutes`, 1, 30 * 1440) * 60_000,
    text: text(value.text ?? "", `${where}.text`, MAX_TEXT, true),
  };
}

function count(value: unknown, where: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`cannot read ${where}=${JSON.stringify(value)}: expected an integer from ${min} to ${max}`);
  }
  return value;
}

function optionalString(value: unknown, where: string): string | undefined {
  return value === undefined ? undefined : text(value, where, 64, false);
}

function text(value: unknown, where: string, max: number, emptyOk: boolean): string {
  if (typeof value !== "string" || (!emptyOk && value.trim() === "")) {
    throw new ConfigError(
      `cannot read ${where}=${JSON.stringify(value)}: expected ${emptyOk ? "a" : "a non-empty"} string`,
    );
  }
  if ([...value].length > max) {
    throw new ConfigError(`cannot read ${where}: ${[...value].length} characters; at most ${max}`);
  }
  return value.trim();
}
