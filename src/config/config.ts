/**
 * Configuration from environment variables. Every variable is documented in
 * README.md; a bad value stops the start with a message that names it.
 *
 * @module
 */

import { isLogLevel, type LogLevel } from "../core/log.ts";

/** One WeChat Official Account. Secrets (appSecret, token, encodingAesKey) are never logged. */
export interface WechatAccount {
  /** AppID; "" for a token-only account (plaintext webhook, no outbound API). */
  appId: string;
  appSecret: string;
  /** The Token set in the account's server configuration (signatures). */
  token: string;
  /** EncodingAESKey (43 characters) for compatible and safe mode; "" for plaintext only. */
  encodingAesKey: string;
  /** `company_id` put on this account's messages. */
  companyId: string;
  apiBase: string;
  tokenMode: "token" | "stable_token";
  /** Webhook path: `/wechat` for the account from the environment, `/wechat/{appid}` from CONFIG_FILE. */
  path: string;
  /** Requests whose timestamp is further from now are refused (replays). */
  maxSkewSeconds: number;
  /** Passive reply sent when no agent is online to take the message; "" for none. */
  autoReply: string;
  /**
   * `custom`: agents' replies go through the customer-service API (needs AppID and AppSecret);
   * `passive`: WeChat's request is held and the reply goes in its answer (accounts without that API).
   */
  replyMode: "custom" | "passive";
  /** How long a passive-mode request (and WeChat's retries) is held for an agent's reply. */
  passiveHoldMs: number;
  /** How long WeChat waits for one answer before it drops the request and retries (5 s; tests shorten it). */
  passiveAttemptMs: number;
}

/** The id kefu gives an account: its AppID, or its webhook path for a token-only account. */
export function accountId(a: WechatAccount): string {
  return a.appId || a.path;
}

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
  accounts: WechatAccount[];
  /** `sqlite`: a file under dataDir; `memory`: nothing survives a restart (tests, measurements). */
  store: "sqlite" | "memory";
  dataDir: string;
  /** Longest wait for a group commit to fill; 0 commits each message alone. */
  groupCommitMs: number;
  /** SQLite's `synchronous`: NORMAL survives a crash, FULL a power loss too. */
  storeSync: "NORMAL" | "FULL";
  /** Messages older than this are swept (unacknowledged ones are kept). */
  retentionDays: number;
  /** Unacknowledged messages read per page when an agent connects (every page is sent). */
  redeliverPage: number;
  /** A socket with more unsent bytes than this is closed with 4001. */
  maxBufferedBytes: number;
  /** A user whose agent has been offline this long goes to an online agent. */
  reassignAfterSeconds: number;
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
  accounts: [],
  store: "sqlite",
  dataDir: "./data",
  groupCommitMs: 2,
  storeSync: "NORMAL",
  retentionDays: 30,
  redeliverPage: 1000,
  maxBufferedBytes: 4 << 20,
  reassignAfterSeconds: 30,
};

const API_BASE = "https://api.weixin.qq.com";

/** Raised for a bad environment variable. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** An integer variable from `min` to `max`; `fallback` when unset or blank. Throws `ConfigError` naming it. */
export function readInt(
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

/** LOG_LEVEL, `info` when unset. Throws `ConfigError` naming it. */
export function readLogLevel(env: Record<string, string | undefined>): LogLevel {
  const level = (env.LOG_LEVEL?.trim() || DEFAULTS.logLevel).toLowerCase();
  if (!isLogLevel(level)) {
    throw new ConfigError(
      `cannot read LOG_LEVEL=${JSON.stringify(env.LOG_LEVEL)}: expected debug, info, warn, error or silent`,
    );
  }
  return level;
}

/** Read the configuration from an environment (`Deno.env.toObject()`); `readFile` reads CONFIG_FILE. */
export function parseConfig(
  env: Record<string, string | undefined>,
  readFile: (path: string) => string = (path) => Deno.readTextFileSync(path),
): Config {
  const level = readLogLevel(env);
  const accounts = env.CONFIG_FILE ? accountsFromFile(env.CONFIG_FILE, readFile) : [];
  if (env.WECHAT_TOKEN) accounts.unshift(accountFromEnv(env));
  const paths = new Set<string>();
  for (const a of accounts) {
    if (a.encodingAesKey !== "" && a.appId === "") {
      throw new ConfigError(`cannot use the EncodingAESKey of the account on ${a.path}: its AppID is required too`);
    }
    if (paths.has(a.path)) throw new ConfigError(`cannot configure two accounts on the webhook path ${a.path}`);
    paths.add(a.path);
  }
  return {
    port: readInt(env, "PORT", DEFAULTS.port, 0, 65535),
    host: env.HOST?.trim() || DEFAULTS.host,
    heartbeatSeconds: readInt(env, "HEARTBEAT_SECONDS", DEFAULTS.heartbeatSeconds, 1, 86400),
    idleTimeoutSeconds: readInt(env, "IDLE_TIMEOUT_SECONDS", DEFAULTS.idleTimeoutSeconds, 1, 86400),
    maxBodyBytes: readInt(env, "MAX_BODY_BYTES", DEFAULTS.maxBodyBytes, 1024, 64 * 1024 * 1024),
    maxWsMessageBytes: readInt(env, "MAX_WS_MESSAGE_BYTES", DEFAULTS.maxWsMessageBytes, 1024, 16 * 1024 * 1024),
    maxHeldPerAgent: readInt(env, "MAX_HELD_PER_AGENT", DEFAULTS.maxHeldPerAgent, 1, 10_000_000),
    maxHeldTotal: readInt(env, "MAX_HELD_TOTAL", DEFAULTS.maxHeldTotal, 1, 100_000_000),
    maxSocketsPerAgent: readInt(env, "MAX_SOCKETS_PER_AGENT", DEFAULTS.maxSocketsPerAgent, 1, 1000),
    dedupeWindow: readInt(env, "DEDUPE_WINDOW", DEFAULTS.dedupeWindow, 0, 100_000_000),
    logLevel: level,
    accounts,
    store: readChoice(env.STORE, "STORE", ["sqlite", "memory"] as const, DEFAULTS.store, true),
    dataDir: env.DATA_DIR?.trim() || DEFAULTS.dataDir,
    groupCommitMs: readInt(env, "GROUP_COMMIT_MS", DEFAULTS.groupCommitMs, 0, 1000),
    storeSync: readChoice(env.STORE_SYNC, "STORE_SYNC", ["NORMAL", "FULL"] as const, DEFAULTS.storeSync, true),
    retentionDays: readInt(env, "RETENTION_DAYS", DEFAULTS.retentionDays, 1, 36500),
    redeliverPage: readInt(env, "REDELIVER_PAGE", DEFAULTS.redeliverPage, 1, 1_000_000),
    maxBufferedBytes: readInt(env, "MAX_BUFFERED_BYTES", DEFAULTS.maxBufferedBytes, 64 * 1024, 1 << 30),
    reassignAfterSeconds: readInt(env, "REASSIGN_AFTER_SECONDS", DEFAULTS.reassignAfterSeconds, 0, 86400 * 365),
  };
}

/**
 * One of `values` (`fallback` when unset or blank), exactly or, with `ignoreCase`, in any case; throws
 * `ConfigError` naming `where` (the variable, or the place in CONFIG_FILE).
 */
export function readChoice<T extends string>(
  value: string | undefined,
  where: string,
  values: readonly T[],
  fallback: T,
  ignoreCase = false,
): T {
  const raw = value?.trim();
  if (raw === undefined || raw === "") return fallback;
  const v = values.find((x) => ignoreCase ? x.toLowerCase() === raw.toLowerCase() : x === raw);
  if (v === undefined) {
    throw new ConfigError(`cannot read ${where}=${JSON.stringify(value)}: expected ${values.join(" or ")}`);
  }
  return v;
}

const TOKEN_MODES = ["token", "stable_token"] as const;
const REPLY_MODES = ["custom", "passive"] as const;

/** An EncodingAESKey (43 letters and digits) or ""; the error never quotes the key, a secret. */
export function readAesKey(value: string | undefined, where: string): string {
  const v = value?.trim() ?? "";
  // The key itself is never quoted: it is a secret.
  if (v !== "" && !/^[A-Za-z0-9]{43}$/.test(v)) {
    throw new ConfigError(
      `cannot read ${where}: an EncodingAESKey is 43 letters and digits (got ${v.length} characters)`,
    );
  }
  return v;
}

function accountFromEnv(env: Record<string, string | undefined>): WechatAccount {
  return {
    appId: env.WECHAT_APPID?.trim() ?? "",
    appSecret: env.WECHAT_APPSECRET?.trim() ?? "",
    token: env.WECHAT_TOKEN!.trim(),
    encodingAesKey: readAesKey(env.WECHAT_ENCODING_AES_KEY, "WECHAT_ENCODING_AES_KEY"),
    companyId: env.WECHAT_COMPANY_ID?.trim() ?? "",
    apiBase: (env.WECHAT_API_BASE?.trim() || API_BASE).replace(/\/+$/, ""),
    tokenMode: readChoice(env.WECHAT_TOKEN_MODE, "WECHAT_TOKEN_MODE", TOKEN_MODES, "token"),
    path: "/wechat",
    maxSkewSeconds: readInt(env, "WECHAT_MAX_SKEW_SECONDS", 300, 1, 86400 * 365 * 100),
    autoReply: env.WECHAT_AUTO_REPLY ?? "",
    replyMode: readChoice(env.WECHAT_REPLY_MODE, "WECHAT_REPLY_MODE", REPLY_MODES, "custom"),
    passiveHoldMs: readInt(env, "WECHAT_PASSIVE_HOLD_MS", 14_000, 100, 60_000),
    passiveAttemptMs: readInt(env, "WECHAT_PASSIVE_ATTEMPT_MS", 4_500, 50, 60_000),
  };
}

function accountsFromFile(path: string, readFile: (path: string) => string): WechatAccount[] {
  let doc: unknown;
  try {
    doc = JSON.parse(readFile(path));
  } catch (e) {
    throw new ConfigError(`cannot read CONFIG_FILE=${JSON.stringify(path)}: ${(e as Error).message}`);
  }
  const list = (doc as { accounts?: unknown })?.accounts;
  if (!Array.isArray(list)) {
    throw new ConfigError(`cannot read CONFIG_FILE=${JSON.stringify(path)}: expected {"accounts":[{…}]}`);
  }
  return list.map((raw, i) => {
    const where = `CONFIG_FILE accounts[${i}]`;
    const a = (raw ?? {}) as Record<string, unknown>;
    const str = (key: string): string => {
      const v = a[key];
      if (v === undefined || v === null) return "";
      if (typeof v !== "string") throw new ConfigError(`cannot read ${where}.${key}: expected a string`);
      return v.trim();
    };
    const appId = str("appid");
    const token = str("token");
    if (appId === "" || token === "") throw new ConfigError(`cannot read ${where}: appid and token are required`);
    const skew = a.max_skew_seconds ?? 300;
    const hold = a.passive_hold_ms ?? 14_000;
    if (!Number.isInteger(hold) || (hold as number) < 100 || (hold as number) > 60_000) {
      throw new ConfigError(`cannot read ${where}.passive_hold_ms: expected an integer from 100 to 60000`);
    }
    if (!Number.isInteger(skew) || (skew as number) < 1) {
      throw new ConfigError(`cannot read ${where}.max_skew_seconds: expected a positive integer`);
    }
    return {
      appId,
      appSecret: str("appsecret"),
      token,
      encodingAesKey: readAesKey(str("encoding_aes_key"), `${where}.encoding_aes_key`),
      companyId: str("company_id"),
      apiBase: (str("api_base") || API_BASE).replace(/\/+$/, ""),
      tokenMode: readChoice(str("token_mode"), `${where}.token_mode`, TOKEN_MODES, "token"),
      path: str("path") || `/wechat/${appId}`,
      maxSkewSeconds: skew as number,
      autoReply: str("auto_reply"),
      replyMode: readChoice(str("reply_mode"), `${where}.reply_mode`, REPLY_MODES, "custom"),
      passiveHoldMs: hold as number,
      passiveAttemptMs: 4_500,
    };
  });
}
