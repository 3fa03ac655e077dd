/**
 * Configuration from environment variables (and the accounts of CONFIG_FILE). Every
 * variable is documented in README.md; a bad value stops the start with a message that
 * names it. Run as a script, this module prints the permission flags of `deno task start`.
 *
 * @module
 */

import { isEncodingAesKey } from "../channels/wx_official/crypto.ts";
import { type AgentAccount, isPasswordHash } from "../agents/auth/passwords.ts";
import { parsePcHookConfig, type PcHookOptions } from "../channels/pc_hook/config.ts";
import { parseWxbotConfig, type WxbotConfig } from "../channels/wxbot/config.ts";
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

/** What the start log says about one account: where its webhook is and how it works, never a secret. */
export interface AccountSummary {
  /** {@link accountId}: the AppID, or the webhook path of a token-only account. */
  account: string;
  path: string;
  /** `plaintext`: no EncodingAESKey; `safe`: encrypted messages too (compatible and safe mode). */
  mode: "plaintext" | "safe";
  reply_mode: WechatAccount["replyMode"];
}

/** The active accounts and their webhook paths, for the start log. */
export function describeAccounts(accounts: readonly WechatAccount[]): AccountSummary[] {
  return accounts.map((a) => ({
    account: accountId(a),
    path: a.path,
    mode: a.encodingAesKey === "" ? "plaintext" : "safe",
    reply_mode: a.replyMode,
  }));
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
  /** Where replies to users who came over the HTTP push are POSTed; undefined: nowhere (no_route). */
  pushReplyUrl?: string;
  /** Bearer token the push endpoints require; undefined: they are open. */
  pushToken?: string;
  /** `AGENT_SECRET`: turns agent sign-in on (never logged); undefined: off. */
  agentSecret?: string;
  /** Life of an agent's token. */
  authTokenSeconds: number;
  /** A seed 003 token request whose timestamp is further from now is refused. */
  authMaxSkewSeconds: number;
  /** Agents who sign in on the agent page with a password (`CONFIG_FILE` `agents`). */
  agents: AgentAccount[];
  /** ffmpeg for converting users' voice notes: `FFMPEG_PATH`, else `ffmpeg` on PATH. */
  ffmpegPath: string;
  /** Longest the work on one user's file may take before the message is delivered without it. */
  mediaTimeoutSeconds: number;
  /** Largest user file kept (voice: at most 2 MiB, WeChat's own limit, whatever this says). */
  mediaMaxBytes: number;
  /** Hosts users' files may be fetched from, besides the accounts' API bases. */
  mediaAllowedHosts: string[];
  /** Where agents reach kefu (`https://kefu.example.com`): media URLs are absolute under it; undefined: paths. */
  publicUrl?: string;
  /** Life of a signed link to a media file. */
  mediaUrlSeconds: number;
  /** The PC-hook channel (`HOOK_*`, CONFIG_FILE `pc_hook`); undefined: off. */
  pcHook?: PcHookOptions;
  /** The WXBot channel (`WXBOT_*`, CONFIG_FILE `wxbot`); undefined: off. */
  wxbot?: WxbotConfig;
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
  pushReplyUrl: undefined,
  pushToken: undefined,
  agentSecret: undefined,
  authTokenSeconds: 86400,
  authMaxSkewSeconds: 300,
  agents: [],
  ffmpegPath: "ffmpeg",
  mediaTimeoutSeconds: 30,
  mediaMaxBytes: 10 << 20,
  mediaAllowedHosts: ["mmbiz.qpic.cn", "*.qpic.cn", "*.qlogo.cn", "*.weixin.qq.com", "*.video.qq.com"],
  publicUrl: undefined,
  mediaUrlSeconds: 3600,
  pcHook: undefined,
  wxbot: undefined,
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
  const file: ConfigFile = env.CONFIG_FILE ? readConfigFile(env.CONFIG_FILE, readFile) : { accounts: [], agents: [] };
  const accounts = file.accounts;
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
    dataDir: dataDirOf(env),
    groupCommitMs: readInt(env, "GROUP_COMMIT_MS", DEFAULTS.groupCommitMs, 0, 1000),
    storeSync: readChoice(env.STORE_SYNC, "STORE_SYNC", ["NORMAL", "FULL"] as const, DEFAULTS.storeSync, true),
    retentionDays: readInt(env, "RETENTION_DAYS", DEFAULTS.retentionDays, 1, 36500),
    redeliverPage: readInt(env, "REDELIVER_PAGE", DEFAULTS.redeliverPage, 1, 1_000_000),
    maxBufferedBytes: readInt(env, "MAX_BUFFERED_BYTES", DEFAULTS.maxBufferedBytes, 64 * 1024, 1 << 30),
    reassignAfterSeconds: readInt(env, "REASSIGN_AFTER_SECONDS", DEFAULTS.reassignAfterSeconds, 0, 86400 * 365),
    pushReplyUrl: readUrl(env.PUSH_REPLY_URL, "PUSH_REPLY_URL"),
    pushToken: readSecret(env.PUSH_TOKEN, "PUSH_TOKEN"),
    agentSecret: readSecret(env.AGENT_SECRET, "AGENT_SECRET"),
    authTokenSeconds: readInt(env, "AUTH_TOKEN_SECONDS", DEFAULTS.authTokenSeconds, 60, 86400 * 365),
    authMaxSkewSeconds: readInt(env, "AUTH_MAX_SKEW_SECONDS", DEFAULTS.authMaxSkewSeconds, 1, 86400),
    agents: file.agents,
    ffmpegPath: env.FFMPEG_PATH?.trim() || DEFAULTS.ffmpegPath,
    mediaTimeoutSeconds: readInt(env, "MEDIA_TIMEOUT_SECONDS", DEFAULTS.mediaTimeoutSeconds, 1, 3600),
    mediaMaxBytes: readInt(env, "MEDIA_MAX_BYTES", DEFAULTS.mediaMaxBytes, 1024, 1 << 30),
    mediaAllowedHosts: env.MEDIA_ALLOWED_HOSTS === undefined
      ? DEFAULTS.mediaAllowedHosts
      : env.MEDIA_ALLOWED_HOSTS.split(",").map((h) => h.trim()).filter((h) => h !== ""),
    publicUrl: readUrl(env.PUBLIC_URL, "PUBLIC_URL")?.replace(/\/+$/, ""),
    mediaUrlSeconds: readInt(env, "MEDIA_URL_SECONDS", DEFAULTS.mediaUrlSeconds, 10, 86400 * 30),
    pcHook: parsePcHookConfig(env, file.pcHook),
    wxbot: parseWxbotConfig(env, file.wxbot),
  };
}

/** A secret of at least 16 characters, or undefined when unset or blank; the error never quotes it. */
export function readSecret(value: string | undefined, where: string): string | undefined {
  const v = value?.trim();
  if (v === undefined || v === "") return undefined;
  if (v.length < 16) {
    throw new ConfigError(`cannot read ${where}: a secret of at least 16 characters is required (got ${v.length})`);
  }
  return v;
}

/** DATA_DIR, `./data` when unset or blank. */
export function dataDirOf(env: Record<string, string | undefined>): string {
  return env.DATA_DIR?.trim() || DEFAULTS.dataDir;
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
  if (v !== "" && !isEncodingAesKey(v)) {
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

/** The keys CONFIG_FILE knows at its top level; any other key is refused. */
export const FILE_KEYS = ["accounts", "agents", "pc_hook", "wxbot"] as const;
/** The keys CONFIG_FILE knows in each agent; any other key is refused. */
export const AGENT_KEYS = ["id", "name", "password_hash"] as const;
/** The keys CONFIG_FILE knows in each account; any other key is refused. */
export const ACCOUNT_KEYS = [
  "appid",
  "appsecret",
  "token",
  "encoding_aes_key",
  "company_id",
  "api_base",
  "token_mode",
  "max_skew_seconds",
  "auto_reply",
  "reply_mode",
  "passive_hold_ms",
  "path",
] as const;

/** Whether `v` is a plain object (not null, not an array). */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Refuse the first key of `obj` that is not in `known`, naming it and the nearest known key. */
export function refuseUnknownKeys(obj: Record<string, unknown>, known: readonly string[], where: string): void {
  for (const key of Object.keys(obj)) {
    if (known.includes(key)) continue;
    const near = nearestKey(key, known);
    const hint = near === undefined ? `known keys: ${known.join(", ")}` : `did you mean ${near}?`;
    throw new ConfigError(`cannot read ${where}: unknown key ${JSON.stringify(key)} (${hint})`);
  }
}

/**
 * The known key an unknown one most likely meant, or undefined when none is close. Keys are compared without case,
 * `_` and `-` (`app_secret`, `appSecret` → `appsecret`); a key contained in a known one counts as one edit
 * (`aes_key` → `encoding_aes_key`).
 */
export function nearestKey(key: string, known: readonly string[]): string | undefined {
  const squash = (s: string) => s.toLowerCase().replace(/[_-]/g, "");
  const k = squash(key);
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(k.length / 3)) + 1;
  for (const candidate of known) {
    const c = squash(candidate);
    let d = editDistance(k, c);
    if (k.length >= 3 && (c.includes(k) || k.includes(c))) d = Math.min(d, 1);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best;
}

/** Levenshtein distance: the fewest insertions, deletions and substitutions that turn `a` into `b`. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length];
}

function readConfigFile(
  path: string,
  readFile: (path: string) => string,
): ConfigFile {
  const file = `CONFIG_FILE=${JSON.stringify(path)}`;
  let doc: unknown;
  try {
    doc = JSON.parse(readFile(path));
  } catch (e) {
    throw new ConfigError(`cannot read ${file}: ${(e as Error).message}`);
  }
  if (isObject(doc)) refuseUnknownKeys(doc, FILE_KEYS, file);
  const accounts = isObject(doc) ? doc.accounts ?? [] : undefined;
  const agents = isObject(doc) ? doc.agents ?? [] : undefined;
  if (!Array.isArray(accounts) || !Array.isArray(agents)) {
    throw new ConfigError(
      `cannot read ${file}: expected {"accounts":[{…}],"agents":[{…}],"pc_hook":{…},"wxbot":{…}} (any may be left out)`,
    );
  }
  return {
    accounts: accountsFromFile(accounts),
    agents: agentsFromFile(agents),
    pcHook: isObject(doc) ? doc.pc_hook : undefined,
    wxbot: isObject(doc) ? doc.wxbot : undefined,
  };
}

/** What CONFIG_FILE holds; the channels' sections are read by their own parsers. */
interface ConfigFile {
  accounts: WechatAccount[];
  agents: AgentAccount[];
  pcHook?: unknown;
  wxbot?: unknown;
}

function agentsFromFile(list: unknown[]): AgentAccount[] {
  const seen = new Set<string>();
  return list.map((a, i) => {
    const where = `CONFIG_FILE agents[${i}]`;
    if (!isObject(a)) throw new ConfigError(`cannot read ${where}: expected {"id","name","password_hash"}`);
    refuseUnknownKeys(a, AGENT_KEYS, where);
    const { id, name, password_hash: hash } = a;
    if (typeof id !== "string" || id.trim() === "" || typeof hash !== "string") {
      throw new ConfigError(`cannot read ${where}: id and password_hash (from kefu hash-password) are required`);
    }
    if (!isPasswordHash(hash)) {
      throw new ConfigError(`cannot read ${where}.password_hash: not a hash from kefu hash-password`);
    }
    if (name !== undefined && typeof name !== "string") {
      throw new ConfigError(`cannot read ${where}.name: expected a string`);
    }
    if (seen.has(id.trim())) throw new ConfigError(`cannot read ${where}: agent ${JSON.stringify(id)} is listed twice`);
    seen.add(id.trim());
    return { id: id.trim(), name: name?.trim() || id.trim(), passwordHash: hash };
  });
}

function accountsFromFile(list: unknown[]): WechatAccount[] {
  return list.map((a, i) => {
    const where = `CONFIG_FILE accounts[${i}]`;
    if (!isObject(a)) throw new ConfigError(`cannot read ${where}: expected an object {"appid":…,"token":…}`);
    refuseUnknownKeys(a, ACCOUNT_KEYS, where);
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

/** An http(s) URL, or undefined when unset or blank; throws `ConfigError` naming `where`. */
export function readUrl(value: string | undefined, where: string): string | undefined {
  const v = value?.trim();
  if (v === undefined || v === "") return undefined;
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw new ConfigError(`cannot read ${where}=${JSON.stringify(value)}: expected an http:// or https:// URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigError(`cannot read ${where}=${JSON.stringify(value)}: expected an http:// or https:// URL`);
  }
  return url.href;
}
